"""Learning-rate schedules: linear warm-up, then cosine decay, steps or constant."""

from __future__ import annotations

import math

import keras
import tensorflow as tf


class LRSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine decay to min_lr, step decay at given steps, or constant."""

    def __init__(
        self, lr, total_steps, warmup_steps=0, kind="cosine", boundaries=(), decay=0.1, min_lr=0.0
    ):
        self.lr = float(lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.boundaries = [int(b) for b in boundaries]
        self.decay = float(decay)
        self.min_lr = float(min_lr)

    def __call__(self, step):
        step = tf.cast(tf.convert_to_tensor(step), tf.float32)
        lr = tf.constant(self.lr, tf.float32)
        if self.kind == "cosine":
            span = float(max(1, self.total_steps - self.warmup_steps))
            progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
            lr = self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + tf.cos(math.pi * progress))
        elif self.kind == "steps" and self.boundaries:
            passed = tf.add_n([tf.cast(step >= b, tf.float32) for b in self.boundaries])
            lr = lr * tf.pow(self.decay, passed)
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
