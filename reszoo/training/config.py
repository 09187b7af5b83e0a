"""The typed training config: resolved once, frozen, written to config.json.

``TrainConfig`` holds every training option of recipes.json "defaults" plus what identifies the
run (model, dataset, recipe kind, config version); ``reszoo.fit`` builds it once from
``recipes.prepare`` and never changes it. ``RunFacts`` holds what the run learns while it sets
up (the precision and strategy chosen, the classes and steps the data gives, how the model was
built). config.json is ``record(config, facts)``: the options with the facts over them.

Pure Python (no TensorFlow): the command line resolves configs before TensorFlow starts.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any


def _frozen(value):
    """Lists as tuples; a mapping (overrides, build) as a private deep copy, passed on as the
    caller gave it (reszoo.build receives the override values as written)."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, Mapping):
        return copy.deepcopy(dict(value))
    return value


def _plain(value):
    """The JSON shape of a frozen value: tuples back to lists, mappings to new dicts."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


class _Record:
    """from_dict/to_dict shared by the frozen config records below."""

    @classmethod
    def from_dict(cls, values: Mapping):
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in values]
        if missing:
            raise KeyError(f"{cls.__name__} needs {', '.join(missing)}")
        return cls(**{n: _frozen(values[n]) for n in names})

    def to_dict(self) -> dict:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class TrainConfig(_Record):
    """Every training option (recipes.json "defaults", validated by recipes.validate) and the
    run's identity. Built by ``TrainConfig.from_dict(recipes.prepare(...))``."""

    epochs: int
    batch_size: int
    base_batch_size: int
    base_lr: float
    lr: float
    optimizer: str
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: str
    warmup_epochs: float
    lr_steps: tuple
    lr_decay: float
    min_lr: float
    label_smoothing: float
    grad_clip_norm: float | None
    ema_decay: float | None
    augment: Any
    image_size: tuple | None
    num_classes: int | None
    validation_split: float | int | None
    examples: int | None
    cache: bool | None
    data_dir: str | None
    follow_links: bool
    seed: int
    steps_per_epoch: int | None
    validation_steps: int | None
    steps_per_execution: int
    jit_compile: bool
    checkpoint_every: int
    keep_checkpoints: int
    precision: str
    strategy: str
    collective_timeout: float | None
    overrides: dict
    weights: str | None
    recipe: str | None
    # identity of the run
    kind: str
    model: str
    dataset: str
    reszoo_config_version: int


@dataclasses.dataclass(frozen=True)
class RunFacts(_Record):
    """What set-up decides: written to config.json next to the options (precision here is the
    policy chosen, where TrainConfig.precision is the one asked for)."""

    precision: str
    precision_reason: str
    strategy_name: str
    num_replicas: int
    class_names: tuple
    steps_per_epoch_resolved: int
    total_steps: int
    build: dict | None


IDENTITY_KEYS = ("kind", "model", "dataset", "reszoo_config_version")
# Keys config.json holds that are not options a user sets (derived from the records above).
RUN_KEYS = IDENTITY_KEYS + tuple(
    f.name for f in dataclasses.fields(RunFacts) if f.name != "precision"
)


def record(config: TrainConfig, facts: RunFacts) -> dict:
    """What config.json (and FitResult.config, summary.json "config") holds."""
    return {**config.to_dict(), **facts.to_dict()}
