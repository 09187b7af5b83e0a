"""The run directory: config.json, checkpoints/, history.csv, tensorboard/, learning_curves.png,
summary.json and model.keras, owned by one RunDirectory object per worker.

Every write goes to a temporary file renamed into place, so a full disk or a kill leaves the
previous file or none, never a truncated one. Only the chief writes the directory; another worker
of a multi-worker run writes its checkpoints into a temporary directory removed at the end.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil
import sys
import tempfile

import keras
import numpy as np
import tensorflow as tf

from reszoo.errors import CheckpointWriteError, TrainingError
from reszoo.paths import remove_quietly
from reszoo.training.checkpoints import Checkpoints
from reszoo.training.recipes import check_output_dir, jsonable


def write_json(path, value):
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(jsonable(value), f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:  # a full disk leaves the old file, never a truncated one
        remove_quietly(tmp)
        raise


def save_model_atomically(model, path):
    """model.save into a temporary .keras file renamed over ``path``: a full disk leaves no
    truncated model.keras."""
    tmp = os.path.join(os.path.dirname(path), ".model-tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except (OSError, tf.errors.OpError) as e:
        remove_quietly(tmp)
        raise CheckpointWriteError(f"cannot write {path}: {e}") from e


def read_history(path, upto_epoch):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for row in csv.DictReader(f):
                try:
                    if int(row["epoch"]) <= upto_epoch:
                        rows.append(
                            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
                        )
                except (KeyError, ValueError):
                    continue
    for r in rows:
        r["epoch"] = int(r["epoch"])
    return rows


HISTORY_FIELDS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "images_per_sec",
    "epoch_time",
]


def write_history(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in HISTORY_FIELDS})
    os.replace(tmp, path)


def plot_history(rows, path) -> str | None:
    """Write learning curves to path; returns None, or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib) - learning_curves.png skipped"
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [r.get(key) for r in rows], label=f"train {key}")
        if any(r.get(f"val_{key}") is not None for r in rows):
            ax.plot(epochs, [r.get(f"val_{key}") for r in rows], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def package_versions():
    out = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    try:
        import reszoo

        out["reszoo"] = getattr(reszoo, "__version__", None)
    except Exception:  # noqa: BLE001
        pass
    return out


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = "scalars"  # what TensorBoard's scalar dashboard reads
    return meta.SerializeToString()


def summary_scalar(writer, tag, value, step):
    """A TensorBoard scalar without needing the tensorboard package (tf.summary.scalar does)."""
    if writer is None or value is None:
        return
    with writer.as_default():
        tf.summary.write(
            tag, tf.constant(float(value), tf.float32), step=step, metadata=_scalar_metadata()
        )


class RunDirectory:
    """One worker's view of the run directory (``output_dir`` None: nothing is written and
    nothing checkpointed). It owns the checkpoints, history.csv, the TensorBoard writers,
    summary.json, the plot and model.keras."""

    def __init__(self, output_dir, chief):
        self.output_dir = output_dir
        self.chief = chief
        self.writes = chief and output_dir is not None  # config, history, summary, plot
        self.write_dir = None  # where checkpoints and model.keras go
        self.checkpoints = None
        self._worker_tmp = None
        self._tensorboard = {}

    @classmethod
    def open(cls, output_dir, chief, record, model, optimizer):
        """Check the directory against the run's full config (a directory of another config is
        refused before anything is written), create it, write config.json and set up the
        checkpoints of ``model`` and its built ``optimizer``."""
        check_output_dir(output_dir, record)
        run = cls(output_dir, chief)
        run._create(record)
        ckpt_dir = os.path.join(run.write_dir, "checkpoints") if run.write_dir else None
        run.checkpoints = Checkpoints(model, optimizer, ckpt_dir, record["keep_checkpoints"])
        return run

    def _create(self, record):
        if self.output_dir is None:
            return
        if not self.chief:
            self._worker_tmp = self.write_dir = tempfile.mkdtemp(prefix="reszoo-worker-")
            return
        self.write_dir = self.output_dir
        try:
            os.makedirs(self.output_dir, exist_ok=True)
        except OSError as e:
            raise TrainingError(
                f"cannot create output directory {self.output_dir}: "
                f"{e.strerror or e}; choose another --output"
            ) from e
        # also on resume: epochs may have grown, and config.json stays the truth
        write_json(os.path.join(self.output_dir, "config.json"), record)

    def path(self, name):
        return os.path.join(self.output_dir, name)

    def restore(self):
        """(global step, checkpoint) of the chief's latest checkpoint, restored; (0, None)."""
        directory = self.path("checkpoints") if self.output_dir is not None else None
        return self.checkpoints.restore_latest(directory)

    def latest_checkpoint(self):
        if self.output_dir is None:
            return None
        return tf.train.latest_checkpoint(self.path("checkpoints"))

    def read_history(self, upto_epoch):
        """The history rows of the epochs completed before a resume ([] for a new run)."""
        return read_history(self.path("history.csv"), upto_epoch) if self.writes else []

    def open_tensorboard(self):
        if self.writes:
            self._tensorboard = {
                k: tf.summary.create_file_writer(self.path(os.path.join("tensorboard", k)))
                for k in ("train", "validation")
            }

    def write_epoch(self, rows):
        """history.csv with every row so far, and the last row's TensorBoard scalars."""
        if not self.writes:
            return
        write_history(self.path("history.csv"), rows)
        row, tb = rows[-1], self._tensorboard
        epoch = row["epoch"]
        for key in ("loss", "accuracy"):
            summary_scalar(tb.get("train"), key, row.get(key), epoch)
            summary_scalar(tb.get("validation"), key, row.get(f"val_{key}"), epoch)
        summary_scalar(tb.get("train"), "learning_rate", row["lr"], epoch)
        summary_scalar(tb.get("train"), "images_per_sec", row["images_per_sec"], epoch)
        for w in tb.values():
            w.flush()

    def save_model(self, model):
        if self.write_dir is not None:
            save_model_atomically(model, os.path.join(self.write_dir, "model.keras"))

    def write_summary(self, summary, rows, verbose):
        """learning_curves.png (not for a diverged run) and summary.json. A failed write raises
        CheckpointWriteError for a completed run; a failing run keeps its own error."""
        if not self.writes:
            return
        try:
            if rows and summary["status"] != "diverged":
                note = plot_history(rows, self.path("learning_curves.png"))
                if note:
                    summary["plot"] = note
                    if verbose:
                        print(f"reszoo.fit: {note}", flush=True)
            write_json(self.path("summary.json"), summary)
        except OSError as e:
            if summary["status"] == "completed":
                raise CheckpointWriteError(f"cannot write {self.output_dir}: {e}") from e
            # already failing: keep the original error, not this one
            print(f"reszoo.fit: could not write summary.json ({e})", file=sys.stderr, flush=True)
        for w in self._tensorboard.values():
            w.close()

    def cleanup(self):
        """Remove a non-chief worker's temporary checkpoint directory."""
        if self._worker_tmp:
            shutil.rmtree(self._worker_tmp, ignore_errors=True)
