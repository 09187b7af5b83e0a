"""A validated ModelConfig in, a functional keras.Model out.

The graph is stem -> stages of residual blocks -> (final BN-ReLU for pre-activation nets) ->
pooling -> classifier; a feature model (features_only=True) stops after the deepest map it
returns and outputs a dict of maps (reszoo/features.py says which). Its saved config lists every
layer with its arguments, so a .keras file describes the architecture itself, not just a
registry name. Layer names are the same in every variant of one network (classifier, no top,
feature model), so weights move between them by name.
"""

from __future__ import annotations

import math

import keras

from reszoo import layers as L
from reszoo.batchnorm import FusedBatchNormalization
from reszoo.choices import POOLINGS
from reszoo.config import ModelConfig
from reszoo.errors import ConfigError
from reszoo.features import check_feature_arguments, select_feature_maps


def block_plan(config: ModelConfig) -> list[dict]:
    """Filters, strides and stochastic-depth rate of every block, in order."""
    total_blocks = sum(config.depths)
    plan, index = [], 0
    for stage, (depth, width, stride) in enumerate(
        zip(config.depths, config.widths, config.strides)
    ):
        for position in range(depth):
            at = 0 if config.downsample_at == "first" else depth - 1
            plan.append(
                {
                    "name": f"stage{stage + 1}_block{position + 1}",
                    "filters": width,
                    "strides": stride if position == at else 1,
                    "drop_path": config.stochastic_depth * index / max(total_blocks - 1, 1),
                }
            )
            index += 1
    return plan


def build_model(
    config: ModelConfig,
    block_class: type,
    *,
    include_top: bool | None = None,
    pooling: str | None = None,
    features_only: bool = False,
    out_indices=None,
) -> keras.Model:
    """Build the network `config` describes, with `block_class` as its residual block.

    include_top (default True) adds the classifier; pooling ("avg"/"max") pools a headless
    model's last map; features_only=True returns a feature model (see reszoo/features.py), whose
    `feature_info` attribute lists each output's name, index, stride, channels and layer.
    """
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of None, 'avg', 'max'; got {pooling!r}")
    if include_top is not None and not isinstance(include_top, bool):
        raise ConfigError(f"include_top must be True or False; got {include_top!r}")
    check_feature_arguments(features_only, out_indices, include_top, pooling)
    plan = block_plan(config)
    inputs = keras.Input(shape=tuple(config.input_shape), name="images")
    x = L.PixelNormalization(config.preprocessing, name="preprocess")(inputs)
    x = _stem(config)(x)
    if features_only:
        maps = select_feature_maps(config, plan, block_class.expansion, out_indices)
        return _feature_model(config, block_class, plan, inputs, x, maps)
    for block in plan:
        x = _block(config, block_class, block)(x)
    if config.preact:
        x = FusedBatchNormalization(
            epsilon=config.bn_epsilon, momentum=config.bn_momentum, name="post_bn"
        )(x)
        x = keras.layers.Activation("relu", name="post_relu")(x)
    x = _head(config, x, include_top=include_top is not False, pooling=pooling)
    return keras.Model(inputs, x, name=config.name)


def _stem(config: ModelConfig) -> L.Stem:
    return L.Stem(
        config.stem,
        config.stem_width,
        use_bias=config.stem_bias,
        normalize=not config.preact,
        bn_epsilon=config.bn_epsilon,
        bn_momentum=config.bn_momentum,
        name="stem",
    )


def _block(config: ModelConfig, block_class: type, block: dict) -> keras.layers.Layer:
    return block_class(
        block["filters"],
        block["strides"],
        drop_path=block["drop_path"],
        name=block["name"],
        **config.block_options(),
    )


def _head(config: ModelConfig, x, *, include_top: bool, pooling: str | None):
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # float32 logits under any mixed-precision policy: losses and softmax stay accurate.
        return keras.layers.Dense(config.num_classes, dtype="float32", name="logits")(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def _feature_model(config, block_class, plan, inputs, x, maps) -> keras.Model:
    """The stem and the blocks up to the deepest map asked for, returning {name: map}."""
    by_layer = {feature.layer: feature.name for feature in maps}
    outputs = {by_layer["stem"]: x} if "stem" in by_layer else {}
    for block in plan:
        if block["name"] not in by_layer and len(outputs) == len(maps):
            break
        x = _block(config, block_class, block)(x)
        if block["name"] in by_layer:
            outputs[by_layer[block["name"]]] = x
    model = keras.Model(inputs, outputs, name=config.name)
    model.feature_info = tuple(feature.to_dict() for feature in maps)
    return model


def count_macs(model: keras.Model, input_shape=None) -> int | None:
    """Multiply-accumulates of one forward pass (convolutions and the classifier).

    A model built for any input size (None in its input shape) is counted at `input_shape`
    (height, width, channels) or, by default, at its registry entry's input size, where the
    registry's `macs` are defined. Returns None when a layer that has weights cannot say how
    many MACs it costs (a plugin block without a `macs` method), rather than a number that
    silently leaves it out.
    """
    shapes = _layer_input_shapes(model, input_shape)
    total = 0
    for layer in model.layers:
        if hasattr(layer, "macs"):
            total += layer.macs(shapes[layer.name])
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
        elif layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            return None
    return total


def _layer_input_shapes(model: keras.Model, input_shape) -> dict[str, tuple]:
    """Each layer's input shape: the built graph's own, or worked out at `input_shape` (or the
    registry's size for free dimensions) through the chain of layers."""
    built = tuple(model.input_shape[1:])
    if input_shape is None and None not in built:
        return {layer.name: layer.input.shape for layer in model.layers if hasattr(layer, "macs")}
    image_shape = _concrete_input_shape(model, built, input_shape)
    shapes, shape, previous = {}, (1, *image_shape), model.inputs[0]
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if layer.input is not previous:
            raise ConfigError(
                f"count_macs at another input size needs a chain of layers; {layer.name!r} of "
                f"{model.name!r} does not take the previous layer's output"
            )
        shapes[layer.name] = shape
        shape = tuple(layer.compute_output_shape(shape))
        previous = layer.output
    return shapes


def _concrete_input_shape(model: keras.Model, built: tuple, input_shape) -> tuple:
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) != 3 or not all(isinstance(s, int) and s >= 1 for s in shape):
            raise ConfigError(f"input_shape must be (height, width, channels); got {input_shape!r}")
        return shape
    from reszoo.registry import REGISTRY

    if model.name not in REGISTRY.names():
        raise ConfigError(
            f"{model.name!r} takes any input size and is not a registered name: pass "
            f"count_macs(model, input_shape=(height, width, 3))"
        )
    default = REGISTRY.get(model.name).input_shape
    return tuple(d if b is None else b for b, d in zip(built, default))


def count_trainable_params(model: keras.Model) -> int:
    """Trainable parameters only, as papers and torchvision count them (no BN moving statistics)."""
    return sum(math.prod(weight.shape) for weight in model.trainable_weights)
