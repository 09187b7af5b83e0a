"""What fit sets up before the loop: where it runs (strategy, precision), the data, the model,
and the facts about the run these decide (RunFacts, written to config.json)."""

from __future__ import annotations

import dataclasses

import keras
import tensorflow as tf

from reszoo.errors import ConfigError, ReszooError
from reszoo.training import pretrained
from reszoo.training.config import RunFacts
from reszoo.training.devices import is_chief, select_precision, select_strategy


@dataclasses.dataclass(frozen=True)
class Placement:
    """The strategy the run uses and the precision policy it builds under, with reasons."""

    strategy: tf.distribute.Strategy
    strategy_name: str
    precision: str
    precision_reason: str
    chief: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync


@dataclasses.dataclass(frozen=True)
class Request:
    """fit's arguments that are not training options (those are in the TrainConfig)."""

    model: keras.Model | None  # a model object, or None for a zoo name
    model_name: str
    model_config: dict | None
    train: object  # a dataset name or a tf.data.Dataset
    validation: tf.data.Dataset | None
    class_names: list | None
    callbacks: list
    output_dir: str | None
    verbose: int
    started_at: float


@dataclasses.dataclass(frozen=True)
class Data:
    """The pipelines and what they tell about the run."""

    train: tf.data.Dataset
    validation: tf.data.Dataset | None
    num_classes: int
    class_names: tuple
    input_shape: list
    steps_per_epoch: int


# --------------------------------------------------------------------------- placement


def place(config, strategy_obj, model_obj) -> Placement:
    """Select the strategy, then the precision policy (before anything is built)."""
    # A strategy object is used as the caller built it (collective_timeout is theirs to set).
    strategy, name = select_strategy(
        strategy_obj if strategy_obj is not None else config.strategy, config.collective_timeout
    )
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ConfigError(
            f"batch_size {config.batch_size} is not divisible by the {replicas} "
            f"replicas of the {name} strategy; use a multiple of {replicas}"
        )
    if model_obj is None:
        policy, reason = select_precision(config.precision, strategy)
    else:
        _check_model_in_scope(model_obj, strategy, name)
        policy, reason = _model_precision(model_obj, config.precision, strategy)
    return Placement(strategy, name, policy, reason, is_chief(strategy))


def _check_model_in_scope(model, strategy, name):
    if (
        name != "default"
        and model.weights
        and not strategy.extended.variable_created_in_scope(model.weights[0])
    ):
        raise ConfigError(
            f"the model was not built inside {name} strategy's scope(): "
            "pass the model's name, or build it under strategy.scope()"
        )


def _model_precision(model, requested, strategy):
    """A model object fixes the policy: "auto" follows it, anything else must equal it."""
    model_policy = model.dtype_policy.name
    if requested == "auto":
        return model_policy, "the model's dtype policy"
    policy, reason = select_precision(requested, strategy)
    if policy != model_policy:
        raise ConfigError(
            f"precision {policy} differs from the model's dtype policy "
            f"{model_policy}; build the model under the policy, or pass "
            "its name"
        )
    return policy, reason


# --------------------------------------------------------------------------- data


def load_data(request, config) -> Data:
    if isinstance(request.train, str):
        data = _named_data(request, config)
    else:
        data = _given_data(request, config)
    if len(data.class_names) != data.num_classes:
        raise ConfigError(f"{len(data.class_names)} class names for {data.num_classes} classes")
    return data


def _image_size(config, model_config):
    """The config's image size, else a weight tag's training size, else the model's."""
    name = (model_config or {}).get("name")
    size = config.image_size or (name and pretrained.tag_image_size(name, config))
    size = size or (model_config.get("input_shape") or [None, None])[:2]
    return None if size[0] is None else tuple(size)


def _named_data(request, config) -> Data:
    """reszoo.data.load's pipelines for a dataset name (a validation dataset given wins)."""
    from reszoo import data as rdata

    train_ds, val_ds, info = rdata.load(
        request.train,
        batch_size=config.batch_size,
        image_size=_image_size(config, request.model_config),
        augment=config.augment,
        data_dir=config.data_dir,
        validation_split=config.validation_split,
        seed=config.seed,
        cache=config.cache,
        num_classes=config.num_classes,
        examples=config.examples,
        drop_remainder=True,
        follow_links=config.follow_links,
    )
    steps = config.steps_per_epoch or max(1, int(info.train_examples) // config.batch_size)
    return Data(
        train_ds,
        request.validation if request.validation is not None else val_ds,
        int(info.num_classes),
        tuple(info.class_names),
        list(info.image_shape),
        steps,
    )


def _given_num_classes(request, config, label_shape):
    if config.num_classes:
        return config.num_classes
    if label_shape.rank == 2 and label_shape[-1]:
        return int(label_shape[-1])
    if request.model is not None:
        return int(request.model.outputs[0].shape[-1])
    return int(request.model_config.get("num_classes") or 10)


def _given_data(request, config) -> Data:
    """A tf.data.Dataset given by the caller: classes from the options, labels or model."""
    train_ds = request.train
    spec = train_ds.element_spec
    num_classes = _given_num_classes(request, config, spec[1].shape)
    names = request.class_names or range(num_classes)
    card = int(train_ds.cardinality())
    steps = config.steps_per_epoch or (card if card > 0 else None)
    if steps is None:
        raise ConfigError("the train dataset's length is unknown: pass steps_per_epoch")
    return Data(
        train_ds,
        request.validation,
        num_classes,
        tuple(str(c) for c in names),
        list(spec[0].shape[1:]),
        steps,
    )


# --------------------------------------------------------------------------- model


def build_model(request, config, data):
    """(model, build) where build is how config.json records a zoo model's construction (None
    for a model object). Call inside the strategy's scope."""
    if request.model is None:
        return _model_from_name(request.model_name, config, data, request.output_dir)
    out = int(request.model.outputs[0].shape[-1])
    if out != data.num_classes:
        raise ConfigError(
            f"the model has {out} outputs but the data has {data.num_classes} classes"
        )
    return request.model, None


def _model_from_name(name, config, data, output_dir):
    import reszoo

    build = {
        "name": name,
        "num_classes": int(data.num_classes),
        "input_shape": list(data.input_shape),
        "overrides": pretrained.build_overrides(name, config),
        **pretrained.record(name, config),
    }
    try:
        model = reszoo.build(
            name,
            num_classes=build["num_classes"],
            input_shape=tuple(build["input_shape"]),
            weights=pretrained.weights_to_load(config, output_dir),
            **build["overrides"],
        )
    except ReszooError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"cannot build {name} with num_classes={data.num_classes}, "
            f"input_shape={list(data.input_shape)}, overrides={dict(config.overrides)}: {e}"
        ) from e
    return model, build


def run_facts(config, placement, data, build) -> RunFacts:
    return RunFacts(
        precision=placement.precision,
        precision_reason=placement.precision_reason,
        strategy_name=placement.strategy_name,
        num_replicas=placement.replicas,
        class_names=data.class_names,
        steps_per_epoch_resolved=data.steps_per_epoch,
        total_steps=data.steps_per_epoch * config.epochs,
        build=build,
    )
