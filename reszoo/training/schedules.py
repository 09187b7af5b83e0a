"""Learning-rate schedules as one table: name -> class.

Every schedule warms up linearly over its first ``warmup_steps`` (the step-0 rate is
``lr / warmup_steps``), then follows its own formula, ``decayed``. Adding a schedule is one
subclass and one entry in SCHEDULES: the recipes validate ``schedule`` against the table and
the command line lists it (reszoo.training.choices).

The formulas receive TensorFlow as an argument, so that reading the table (the command line does,
before TensorFlow starts) imports nothing heavy.
"""

from __future__ import annotations

import math


class Schedule:
    """The base of the table's schedules: the warm-up and the arguments every formula may use.
    An instance is a Keras learning-rate schedule's ``__call__`` (see keras_schedule)."""

    def __init__(self, lr, total_steps, warmup_steps=0, boundaries=(), decay=0.1, min_lr=0.0):
        self.lr = float(lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.boundaries = [int(b) for b in boundaries]
        self.decay = float(decay)
        self.min_lr = float(min_lr)

    def decayed(self, tf, step):
        """The rate at ``step`` (a float32 tensor) once warm-up is over."""
        raise NotImplementedError

    def progress(self, tf, step):
        """How far past warm-up the run is: 0 at the end of warm-up, 1 at total_steps."""
        span = float(max(1, self.total_steps - self.warmup_steps))
        return tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)

    def __call__(self, step):
        import tensorflow as tf

        step = tf.cast(tf.convert_to_tensor(step), tf.float32)
        lr = self.decayed(tf, step)
        if self.warmup_steps > 0:
            warm = self.lr * (step + 1.0) / self.warmup_steps
            lr = tf.where(step < self.warmup_steps, warm, lr)
        return lr

    def get_config(self):
        return dict(
            lr=self.lr,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            kind=self.kind,
            boundaries=self.boundaries,
            decay=self.decay,
            min_lr=self.min_lr,
        )

    @property
    def kind(self) -> str:
        return next(name for name, cls in SCHEDULES.items() if cls is type(self))


class Constant(Schedule):
    """``lr`` throughout."""

    def decayed(self, tf, step):
        return tf.constant(self.lr, tf.float32)


class Cosine(Schedule):
    """Half a cosine from ``lr`` down to ``min_lr`` at total_steps."""

    def decayed(self, tf, step):
        cosine = 0.5 * (1.0 + tf.cos(math.pi * self.progress(tf, step)))
        return self.min_lr + (self.lr - self.min_lr) * cosine


class Steps(Schedule):
    """``lr`` times ``decay`` once per boundary step passed (He et al. 2016)."""

    def decayed(self, tf, step):
        lr = tf.constant(self.lr, tf.float32)
        if not self.boundaries:
            return lr
        passed = tf.add_n([tf.cast(step >= b, tf.float32) for b in self.boundaries])
        return lr * tf.pow(self.decay, passed)


class Linear(Schedule):
    """A straight line from ``lr`` at the end of warm-up down to ``min_lr`` (0 by default) at
    total_steps."""

    def decayed(self, tf, step):
        return self.lr + (self.min_lr - self.lr) * self.progress(tf, step)


SCHEDULES = {"cosine": Cosine, "steps": Steps, "constant": Constant, "linear": Linear}


def LRSchedule(  # noqa: N802 - the name fit's schedule has always had
    lr, total_steps, warmup_steps=0, kind="cosine", boundaries=(), decay=0.1, min_lr=0.0
):
    """The table's schedule ``kind`` (the constructor earlier versions of fit exposed)."""
    return SCHEDULES[kind](lr, total_steps, warmup_steps, boundaries, decay, min_lr)


def keras_schedule(schedule):
    """``schedule`` as a keras LearningRateSchedule (what a Keras optimizer accepts)."""
    import keras

    class _Adapter(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return schedule(step)

        def get_config(self):
            return schedule.get_config()

    return _Adapter()
