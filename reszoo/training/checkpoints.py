"""fit's checkpoints: what they hold, how a run saves them and resumes from them.

A checkpoint is TensorFlow's plain object-graph checkpoint
``tf.train.Checkpoint(model=..., optimizer=..., step=..., epoch=...)`` named ``ckpt-<step>`` in
the run directory's checkpoints/; checkpoints of earlier versions of fit have the same objects
and resume the same way.
"""

from __future__ import annotations

import os

import tensorflow as tf

from reszoo.errors import CheckpointWriteError, TrainingError, first_line
from reszoo.paths import remove_quietly
from reszoo.training import checkpoint_store


def make_checkpoint(model, optimizer=None, step=None, epoch=None) -> tf.train.Checkpoint:
    """The checkpoint fit writes: TensorFlow's plain object-graph checkpoint
    tf.train.Checkpoint(model=..., optimizer=..., step=..., epoch=...), the parts given as None
    left out. ``model`` saves every model variable (BatchNorm moving statistics included) under
    its attribute path (reszoo's layers keep their sublayers as named attributes), ``optimizer``
    its iterations and slot variables; step: the global step (int64); epoch: the number of
    completed epochs. Restore the optimizer part into a *built* optimizer so that its slot
    variables are restored at once."""
    parts = {"model": model, "optimizer": optimizer, "step": step, "epoch": epoch}
    return tf.train.Checkpoint(**{k: v for k, v in parts.items() if v is not None})


def load_checkpoint_weights(model, path) -> int:
    """Load the model weights of a fit checkpoint (a checkpoint prefix, a run directory or its
    checkpoints/ directory; the latest is taken) into ``model`` built with the run's
    config.json["build"]. The optimizer state is ignored; every model variable must be in the
    checkpoint (TrainingError otherwise). Returns the checkpoint's global step (0 without one)."""
    if os.path.isdir(path):
        sub = os.path.join(path, "checkpoints")
        path = checkpoint_store.newest_readable(sub if os.path.isdir(sub) else path)[0]
        if path is None:
            raise TrainingError("no checkpoint found there")
    try:
        tf.train.Checkpoint(model=model).read(
            path
        ).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise TrainingError(
            f"checkpoint {path} does not match the model {model.name!r} (built "
            f"with another config?): {str(e).splitlines()[0]}"
        ) from e
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(step=step).read(path).expect_partial()
    return int(step.numpy())


def checkpoint_failure(directory, step, error) -> str:
    """Remove what a failed save of checkpoint ``step`` left (partial data/index files, temp
    directories) unless it did become the latest, and say what happened."""
    latest = tf.train.latest_checkpoint(directory)
    prefix = os.path.join(directory, f"ckpt-{step}")
    if latest != prefix:
        for leftover in tf.io.gfile.glob(prefix + ".*") + tf.io.gfile.glob(prefix + "_temp*"):
            remove_quietly(leftover)
    reason = (
        f"{error.strerror} (errno {error.errno})"
        if isinstance(error, OSError) and error.strerror
        else first_line(error)
    )
    return (
        f"cannot write checkpoint ckpt-{step} in {directory}: {reason}; "
        + (f"the last good checkpoint {latest} is kept" if latest else "no checkpoint kept")
        + "; free space or fix the directory, then rerun the same command to resume"
    )


class Checkpoints:
    """The run's checkpoint (model, built optimizer, step, epoch) and, with a directory, its
    CheckpointManager, opened by ``restore_latest`` once the checkpoints on disk are sorted out
    (checkpoint_store.py): call it before the first save. Without a directory nothing is saved
    or restored."""

    def __init__(self, model, optimizer, directory=None, keep=3):
        self.step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.checkpoint = make_checkpoint(model, optimizer, self.step_var, self.epoch_var)
        self.directory, self.keep = directory, keep
        self.manager = None
        self.sync = None  # set by the loop: BatchNorm statistics are synced before a save

    @property
    def latest(self):
        return self.manager.latest_checkpoint if self.manager else None

    def restore_latest(self, directory) -> tuple[int, str | None]:
        """(global step, checkpoint path) of the newest checkpoint in ``directory`` that reads
        (corrupt or incomplete newer ones are reported and set aside), restored into the model
        and the built optimizer at once; (0, None) when there is none. Then opens the manager
        that writes this worker's directory."""
        if self.directory is None or directory is None:
            return 0, None
        self.manager = checkpoint_store.open_manager(
            self.checkpoint, self.directory, self.keep, resume_from=directory
        )
        latest = self.manager.resumed_from
        return (int(self.step_var.numpy()), latest) if latest else (0, None)

    def save(self, step, epochs_done):
        """Save ckpt-<step> (a no-op without a directory); a failed write removes its leftovers
        and raises CheckpointWriteError naming the last good checkpoint."""
        if self.manager is None:
            return
        if self.sync is not None:
            self.sync()
        self.step_var.assign(step)
        self.epoch_var.assign(epochs_done)
        try:
            self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:
            raise CheckpointWriteError(checkpoint_failure(self.manager.directory, step, e)) from e
