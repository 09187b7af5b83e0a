"""Optimizers as one table: name -> how to build it and how it applies weight decay.

SGD takes weight decay as an L2 term in the loss (reszoo.training.steps adds it over the kernels:
PyTorch's ``SGD(weight_decay=...)``); adam/adamw take it as the optimizer's decoupled
``weight_decay`` with BatchNorm gamma/beta and biases excluded. Adding an optimizer is one
builder and one entry in OPTIMIZERS (the recipes validate ``optimizer`` against the table).

Keras is imported by the builders, so reading the table imports nothing heavy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from reszoo.training.schedules import SCHEDULES, keras_schedule


@dataclasses.dataclass(frozen=True)
class OptimizerKind:
    """build(cfg, learning_rate, ema_options) -> a Keras optimizer; l2_in_loss: whether the
    training step adds weight decay to the loss (else the optimizer applies it)."""

    build: Callable
    l2_in_loss: bool


def _sgd(cfg, learning_rate, ema):
    import keras

    return keras.optimizers.SGD(
        learning_rate=learning_rate, momentum=cfg.momentum, nesterov=cfg.nesterov, **ema
    )


def _decoupled(class_name):
    """A builder for a Keras optimizer taking a decoupled weight_decay (Adam, AdamW)."""

    def build(cfg, learning_rate, ema):
        import keras

        kwargs = dict(ema)
        if cfg.weight_decay:
            kwargs["weight_decay"] = cfg.weight_decay
        opt = getattr(keras.optimizers, class_name)(learning_rate=learning_rate, **kwargs)
        if cfg.weight_decay:
            opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
        return opt

    return build


OPTIMIZERS = {
    "sgd": OptimizerKind(_sgd, l2_in_loss=True),
    "adam": OptimizerKind(_decoupled("Adam"), l2_in_loss=False),
    "adamw": OptimizerKind(_decoupled("AdamW"), l2_in_loss=False),
}


def loss_weight_decay(cfg) -> float:
    """The L2 coefficient the training step adds to the loss (0 when the optimizer decays)."""
    return cfg.weight_decay if OPTIMIZERS[cfg.optimizer].l2_in_loss else 0.0


def make_schedule(cfg, steps_per_epoch):
    """The config's schedule, its epochs counted in steps."""
    return SCHEDULES[cfg.schedule](
        cfg.lr,
        cfg.epochs * steps_per_epoch,
        warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        boundaries=[round(e * steps_per_epoch) for e in cfg.lr_steps],
        decay=cfg.lr_decay,
        min_lr=cfg.min_lr,
    )


def make_optimizer(cfg, steps_per_epoch, precision):
    """(optimizer, schedule) for a TrainConfig; mixed_float16 wraps it in loss scaling."""
    import keras

    schedule = make_schedule(cfg, steps_per_epoch)
    ema = {} if cfg.ema_decay is None else {"use_ema": True, "ema_momentum": cfg.ema_decay}
    opt = OPTIMIZERS[cfg.optimizer].build(cfg, keras_schedule(schedule), ema)
    if precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt, schedule
