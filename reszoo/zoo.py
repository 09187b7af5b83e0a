"""The zoo's public functions: look a model up, build it, extend the zoo."""

from __future__ import annotations

from typing import Any

from reszoo.config import ModelConfig
from reszoo.errors import ConfigError
from reszoo.registry import REGISTRY


def list_models(pattern: str = "*") -> list[str]:
    """Registered model names matching a shell-style wildcard (`"resnet*"`, `"*wide*"`), sorted."""
    if not isinstance(pattern, str):
        raise ConfigError(f"pattern must be a string like 'resnet*'; got {pattern!r}")
    return REGISTRY.names(pattern)


def get_config(name: str) -> dict[str, Any]:
    """A copy of a model's full config (architecture, defaults and reference numbers)."""
    return REGISTRY.get(name).to_dict()


def resolve_config(name: str, **overrides: Any) -> ModelConfig:
    """The registered config with `overrides` applied and validated (unknown fields raise)."""
    model_config = REGISTRY.get(name)
    if not overrides:
        return model_config
    return REGISTRY.check_blocks(model_config.replace(**overrides))


def register_model(name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Add a model. `config` is a registry entry (it may `"extends": "resnet50"`).

    Raises ConfigError for an invalid entry and DuplicateRegistrationError, naming both sources,
    when the name is taken.
    """
    return REGISTRY.register_model(name, config).to_dict()


def register_block(name: str, layer_class: type) -> None:
    """Make `layer_class` usable as `"block": name` in registry entries.

    It must be a keras.layers.Layer subclass with an integer class attribute `expansion`, taking
    `(filters, strides, *, preact, shortcut, stride_on, conv_bias, groups, base_width, se_ratio,
    dropout, drop_path, bn_epsilon, bn_momentum, name)` plus the options entries pass through
    `block_args`; subclassing reszoo.layers.ResidualBlock and defining `branch_spec` is the short
    way, and gets every entry using the block checked when it registers (check_arguments).
    """
    REGISTRY.register_block(name, layer_class)


def build(
    name: str,
    *,
    num_classes: int | None = None,
    input_shape=None,
    include_top: bool | None = None,
    pooling: str | None = None,
    weights: str | None = None,
    features_only: bool = False,
    out_indices=None,
    **overrides: Any,
):
    """A ready keras.Model for a zoo name, taking RGB pixels 0..255 and returning float32 logits.

    `num_classes`, `input_shape` and any architecture field (`depths=[2, 2, 2]`, `se_ratio=0.25`)
    override the registered config; `input_shape=(None, None, 3)` (or one None side) builds a
    model that takes any size at least the network's total stride. include_top (default True)
    keeps the classifier. `weights` is a weight tag of the model ("imagenet" = its default;
    `reszoo.weights.list_tags(name)`) or a file (.safetensors in timm naming, keras.applications
    .h5 / .weights.h5, reszoo .weights.h5). With `num_classes` different from the weights'
    classifier, everything but the classifier loads and the head is fresh. `features_only=True`
    returns a feature model: a dict {"P2": map, ...} of the maps `out_indices` name (0 the stem,
    i stage i; default every stage), described by the model's `feature_info`
    (reszoo/features.py); weights load into it as into include_top=False.
    """
    from reszoo.features import check_feature_arguments
    from reszoo.models import build_model

    check_feature_arguments(features_only, out_indices, include_top, pooling, num_classes)
    overrides = _config_overrides(name, weights, num_classes, input_shape, overrides)
    model_config = resolve_config(name, **overrides)
    keeps_top = not features_only and include_top is not False
    if weights is not None:  # a refused tag or a failed download fails before the long build
        from reszoo.weights.loader import prefetch

        prefetch(
            model_config,
            weights,
            include_top=keeps_top,
            num_classes_given=num_classes is not None,
        )
    model = build_model(
        model_config,
        REGISTRY.block(model_config.block),
        include_top=include_top,
        pooling=pooling,
        features_only=features_only,
        out_indices=out_indices,
    )
    if weights is not None:
        from reszoo.weights import load_weights

        load_weights(model, model_config, weights, num_classes_given=num_classes is not None)
    return model


def _config_overrides(name, weights, num_classes, input_shape, overrides):
    """build's overrides of the registered config: the weight set's preprocessing (unless
    given), then num_classes and input_shape when given."""
    if weights is not None and "preprocessing" not in overrides:
        from reszoo.weights import weights_overrides

        overrides.update(weights_overrides(name, weights))
    if num_classes is not None:
        overrides["num_classes"] = num_classes
    if input_shape is not None:
        overrides["input_shape"] = (
            list(input_shape) if isinstance(input_shape, (tuple, list)) else input_shape
        )
    return overrides
