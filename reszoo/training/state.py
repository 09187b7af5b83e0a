"""Where a run is: global step, history rows, last logs, status and timings, and the summary
(summary.json, FitResult.summary) they make."""

from __future__ import annotations

import dataclasses
import datetime
import time

from reszoo.training.devices import describe_device
from reszoo.training.rundir import HISTORY_FIELDS, package_versions

_FINAL_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")


@dataclasses.dataclass
class RunState:
    """What changes while fit runs. ``rows`` are the history rows (one per completed epoch,
    those before a resume read back from history.csv); ``logs`` the last epoch's logs."""

    steps_per_epoch: int
    total_steps: int
    started_at: float = dataclasses.field(default_factory=time.time)
    start_step: int = 0
    step: int = 0
    rows: list = dataclasses.field(default_factory=list)
    logs: dict = dataclasses.field(default_factory=dict)
    status: str = "completed"
    train_images: int = 0
    train_time: float = 0.0

    @property
    def epoch(self) -> int:
        """The epoch the next step belongs to (0-based) = epochs completed."""
        return self.step // self.steps_per_epoch

    @property
    def step_in_epoch(self) -> int:
        return self.step - self.epoch * self.steps_per_epoch

    @property
    def finished(self) -> bool:
        return self.step >= self.total_steps

    def resume_at(self, step):
        self.start_step = self.step = step

    def where(self) -> str:
        if self.finished:
            return "the run is already complete"
        return f"epoch {self.epoch + 1} step {self.step_in_epoch}"

    def fail(self):
        """Mark a run that raised (a divergence or a lost worker is marked before raising)."""
        if self.status == "completed":
            self.status = "failed"

    def history(self) -> dict:
        return {k: [r.get(k) for r in self.rows] for k in HISTORY_FIELDS}

    def final_logs(self) -> dict:
        if not self.logs and self.rows:
            self.logs = {k: self.rows[-1].get(k) for k in _FINAL_KEYS}
        return self.logs

    def best_val_accuracy(self):
        values = [r["val_accuracy"] for r in self.rows if r.get("val_accuracy") is not None]
        return max(values, default=None)

    def summary(self, record) -> dict:
        """summary.json; ``record`` is the run's config.json."""
        wall = time.time() - self.started_at
        return {
            "status": self.status,
            "model": record["model"],
            "dataset": record["dataset"],
            "config": record,
            "versions": package_versions(),
            "device": describe_device(),
            "precision": record["precision"],
            "precision_reason": record["precision_reason"],
            "strategy": record["strategy_name"],
            "num_replicas": record["num_replicas"],
            "final_metrics": {k: v for k, v in self.final_logs().items() if v is not None},
            "best_val_accuracy": self.best_val_accuracy(),
            "epochs_completed": self.epoch,
            "global_step": self.step,
            "total_steps": self.total_steps,
            "resumed_from_step": self.start_step if self.start_step else None,
            "images_per_sec": self.train_images / self.train_time if self.train_time else None,
            "train_time_sec": self.train_time,
            "wall_time_sec": wall,
            "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
        }
