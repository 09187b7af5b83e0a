"""The training loop: restore, then for each epoch train its steps and end it (evaluate,
checkpoint, history, callbacks), then finish (EMA weights, model.keras, summary.json).

Mid-epoch checkpoints every ``checkpoint_every`` global steps make a killed run resume where it
stopped; a NaN/inf loss or gradient stops the run without saving (the last good checkpoint is
named); under MultiWorkerMirroredStrategy a lost peer is reported as WorkerLostError.
"""

from __future__ import annotations

import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from reszoo.errors import DivergedError, WorkerLostError, first_line
from reszoo.training import preemption
from reszoo.training.config import record
from reszoo.training.state import RunState
from reszoo.training.steps import (
    evaluate,
    make_eval_function,
    make_sync_function,
    make_train_function,
)

# What a collective op raises when a peer is gone (TF's coordination service notices a dead or
# frozen worker within seconds and aborts the pending collectives with one of these).
PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
)


@dataclasses.dataclass(frozen=True)
class Job:
    """What the loop trains: the frozen config and facts, where (placement: strategy, chief),
    the model with its built optimizer and schedule, and the data."""

    config: object  # TrainConfig
    facts: object  # RunFacts
    placement: object  # devices.Placement
    model: keras.Model
    optimizer: object
    schedule: object
    train_ds: tf.data.Dataset
    val_ds: tf.data.Dataset | None


@dataclasses.dataclass
class _EpochTotals:
    """Sums over the steps of one epoch run by this call (a resumed epoch counts its rest)."""

    started: float = dataclasses.field(default_factory=time.time)
    steps: int = 0
    loss_sum: float = 0.0
    correct: float = 0.0
    count: float = 0.0

    def add(self, n, losses, correct, count):
        self.steps += n
        self.loss_sum += float(losses.sum())
        self.correct += float(correct)
        self.count += float(count)

    def logs(self) -> dict:
        return {
            "loss": self.loss_sum / max(self.steps, 1),
            "accuracy": self.correct / max(self.count, 1.0),
        }


class _Progress:
    """The per-epoch progress bar (verbose 1: interactive, 2: one line per epoch)."""

    def __init__(self, verbose, epochs, steps_per_epoch, global_batch):
        self.verbose, self.epochs = verbose, epochs
        self.steps_per_epoch, self.global_batch = steps_per_epoch, global_batch
        self.bar = None

    def begin(self, epoch, in_epoch):
        if not self.verbose:
            return
        resuming = f" (resuming at step {in_epoch})" if in_epoch else ""
        print(f"Epoch {epoch + 1}/{self.epochs}{resuming}", flush=True)
        interactive = self.verbose == 1 and sys.stdout.isatty()
        self.bar = keras.utils.Progbar(
            self.steps_per_epoch,
            verbose=1 if interactive else 2,
            stateful_metrics=["loss", "accuracy", "img/s"],
        )

    def update(self, in_epoch, totals):
        if self.bar is None:
            return
        elapsed = time.time() - totals.started
        self.bar.update(
            in_epoch,
            [
                ("loss", totals.loss_sum / totals.steps),
                ("accuracy", totals.correct / max(totals.count, 1.0)),
                ("img/s", totals.steps * self.global_batch / max(elapsed, 1e-9)),
            ],
        )

    def end(self, ips, logs):
        if not self.verbose:
            return
        extra = "  ".join(f"{k} {logs[k]:.4f}" for k in ("val_loss", "val_accuracy") if k in logs)
        print(f"  {ips:.0f} img/s  lr {logs['lr']:.4g}  {extra}", flush=True)


class Loop:
    """One run of a Job in a RunDirectory; ``run()`` returns (RunState, summary)."""

    def __init__(self, job, rundir, callbacks, verbose, started_at):
        self.job, self.rundir, self.verbose = job, rundir, verbose
        self.config, self.model = job.config, job.model
        self.strategy = job.placement.strategy
        self.talk = bool(verbose and job.placement.chief)
        spe = job.facts.steps_per_epoch_resolved
        self.state = RunState(spe, job.facts.total_steps, started_at=started_at)
        self.progress = _Progress(
            verbose if self.talk else 0, self.config.epochs, spe, self.config.batch_size
        )
        self.user_callbacks = callbacks

    # -- the loop, as it reads

    def run(self):
        self.restore()
        self.prepare()
        self.callbacks.on_train_begin()
        try:
            for epoch in range(self.state.epoch, self.config.epochs):
                if self.model.stop_training:
                    break
                totals = self.train_epoch(epoch)
                self.end_epoch(epoch, totals)
            self.finish()
        except PEER_ERRORS as e:
            self.state.status = "failed"
            if not isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy):
                raise
            raise self.worker_lost(e) from e
        except BaseException:
            self.state.fail()
            raise
        finally:
            summary = self.state.summary(record(self.config, self.job.facts))
            self.rundir.write_summary(summary, self.state.rows, self.talk)
        self.report(summary)
        return self.state, summary

    def restore(self):
        step, latest = self.rundir.restore()
        self.state.resume_at(step)
        if latest and self.talk:
            print(
                f"reszoo.fit: resuming from {latest} (global step {step}: {self.state.where()})",
                flush=True,
            )

    def prepare(self):
        """Distribute the data, trace the steps, read back the history, open TensorBoard and
        the callbacks."""
        job, strategy, num_classes = self.job, self.strategy, len(self.job.facts.class_names)
        self.iterator = iter(strategy.experimental_distribute_dataset(job.train_ds.repeat()))
        self.dist_val = (
            strategy.experimental_distribute_dataset(job.val_ds) if job.val_ds is not None else None
        )
        self.train_function = make_train_function(
            strategy, self.model, job.optimizer, self.config, self.config.batch_size, num_classes
        )
        self.eval_step = make_eval_function(strategy, self.model, num_classes)
        self.sync = self.rundir.checkpoints.sync = make_sync_function(strategy, self.model)
        self.state.rows = self.rundir.read_history(self.state.epoch)
        self.rundir.open_tensorboard()
        self.callbacks = keras.callbacks.CallbackList(
            self.user_callbacks,
            add_history=False,
            add_progbar=False,
            model=self.model,
            epochs=self.config.epochs,
            steps=self.state.steps_per_epoch,
            verbose=self.verbose,
        )
        self.model.stop_training = False

    # -- one epoch

    def train_epoch(self, epoch):
        """Run the epoch's remaining steps in chunks of steps_per_execution (cut at checkpoint
        steps), checking every loss."""
        self.callbacks.on_epoch_begin(epoch)
        spe, state = self.state.steps_per_epoch, self.state
        in_epoch = state.step_in_epoch
        self.progress.begin(epoch, in_epoch)
        totals = _EpochTotals()
        while in_epoch < spe:
            self._stop_if_signalled(epoch)
            n = self._chunk(in_epoch)
            losses, correct, count = self.train_function(self.iterator, tf.constant(n, tf.int32))
            losses = losses.numpy()
            self._check_finite(losses, epoch)
            state.step += n
            in_epoch += n
            totals.add(n, losses, correct, count)
            self.progress.update(in_epoch, totals)
            self.callbacks.on_train_batch_end(in_epoch - 1, {"loss": float(losses[-1])})
            every = self.config.checkpoint_every
            if every and state.step % every == 0 and in_epoch < spe:
                self.rundir.checkpoints.save(state.step, epoch)
        return totals

    def _stop_if_signalled(self, epoch):
        """At a step boundary: after SIGTERM/SIGINT (on any worker) save and raise
        PreemptedError (preemption.py)."""
        signum = preemption.agreed_signal(self.strategy)
        if signum:
            self.state.status = "preempted"
            self.rundir.checkpoints.save(self.state.step, epoch)
            raise preemption.stopped(signum, self.state.step, self.rundir.checkpoints.manager)

    def _chunk(self, in_epoch):
        n = min(self.config.steps_per_execution, self.state.steps_per_epoch - in_epoch)
        every = self.config.checkpoint_every
        if every:
            n = min(n, every - self.state.step % every)
        return n

    def _check_finite(self, losses, epoch):
        bad = np.flatnonzero(~np.isfinite(losses))
        if not bad.size:
            return
        self.state.status = "diverged"
        last = self.rundir.checkpoints.latest
        raise DivergedError(
            f"loss or gradients became {losses[bad[0]]} at global step "
            f"{self.state.step + int(bad[0]) + 1} "
            f"(epoch {epoch + 1}); stopped without saving"
            + (f"; the last good checkpoint is {last}" if last else "")
            + "; lower the learning rate or enable grad_clip_norm"
        )

    def end_epoch(self, epoch, totals):
        """Evaluate, checkpoint, write the history row, then the callbacks."""
        state = self.state
        epoch_time = time.time() - totals.started
        state.train_images += totals.steps * self.config.batch_size
        state.train_time += epoch_time
        state.logs = logs = totals.logs()
        if self.sync is not None:
            self.sync()
        logs.update(self.evaluate())
        logs["lr"] = float(self.job.schedule(state.step))
        ips = totals.steps * self.config.batch_size / max(epoch_time, 1e-9)
        self.rundir.checkpoints.save(state.step, epoch + 1)
        self.progress.end(ips, logs)
        state.rows.append(
            {"epoch": epoch + 1, **logs, "images_per_sec": ips, "epoch_time": epoch_time}
        )
        self.rundir.write_epoch(state.rows)
        self.callbacks.on_epoch_end(epoch, dict(logs))
        if self.model.stop_training:
            state.status = "stopped_early"

    def evaluate(self) -> dict:
        if self.dist_val is None:
            return {}
        return evaluate(self.strategy, self.eval_step, self.dist_val, self.config.validation_steps)

    # -- the end

    def finish(self):
        """Final weights (EMA averages swapped in and evaluated), callbacks, model.keras."""
        state = self.state
        if not state.finished and state.status == "completed":
            state.status = "stopped_early"
        if self.config.ema_decay is not None:
            with self.strategy.scope():
                self.job.optimizer.finalize_variable_values(self.model.trainable_variables)
            state.logs.update(self.evaluate())
        elif not state.logs:  # nothing left to train (a finished run rerun)
            state.logs = self.evaluate()
        self.callbacks.on_train_end(dict(state.logs))
        self.rundir.save_model(self.model)

    def worker_lost(self, error):
        last = self.rundir.latest_checkpoint()
        return WorkerLostError(
            f"another worker of the {self.job.facts.num_replicas}-replica multi-worker run died "
            f"or stopped answering near global step {self.state.step} ({type(error).__name__}: "
            f"{first_line(error)}); restart every worker with the same command to resume from "
            + (last or "the start (no checkpoint yet)")
        )

    def report(self, summary):
        if self.talk:
            final = "  ".join(f"{k} {v:.4f}" for k, v in summary["final_metrics"].items())
            print(
                f"reszoo.fit: {summary['status']} at step {self.state.step}/"
                f"{self.state.total_steps} in {summary['wall_time_sec']:.1f}s; {final}",
                flush=True,
            )
