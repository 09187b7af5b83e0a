"""The optimizer a training config asks for, with its learning-rate schedule.

Weight decay: with SGD it is an L2 term in the loss (reszoo.training.steps); with adam/adamw it is
the optimizer's decoupled ``weight_decay``, BatchNorm gamma/beta and biases excluded.
"""

from __future__ import annotations

import keras

from reszoo.training.schedules import LRSchedule


def make_optimizer(cfg, steps_per_epoch, precision):
    total = cfg.epochs * steps_per_epoch
    schedule = LRSchedule(
        cfg.lr,
        total,
        warmup_steps=round(cfg.warmup_epochs * steps_per_epoch),
        kind=cfg.schedule,
        boundaries=[round(e * steps_per_epoch) for e in cfg.lr_steps],
        decay=cfg.lr_decay,
        min_lr=cfg.min_lr,
    )
    common = {}
    if cfg.ema_decay is not None:
        common.update(use_ema=True, ema_momentum=cfg.ema_decay)
    if cfg.optimizer == "sgd":
        opt = keras.optimizers.SGD(
            learning_rate=schedule, momentum=cfg.momentum, nesterov=cfg.nesterov, **common
        )
    else:
        cls = keras.optimizers.AdamW if cfg.optimizer == "adamw" else keras.optimizers.Adam
        kwargs = dict(common)
        if cfg.weight_decay:
            kwargs["weight_decay"] = cfg.weight_decay
        opt = cls(learning_rate=schedule, **kwargs)
        if cfg.weight_decay:
            opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    if precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt, schedule
