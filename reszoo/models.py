"""A validated ModelConfig in, a functional keras.Model out.

The graph is stem -> stages of residual blocks -> (final BN-ReLU for pre-activation nets) ->
pooling -> classifier. Its saved config lists every layer with its arguments, so a .keras file
describes the architecture itself, not just a registry name.
"""

from __future__ import annotations

import math

import keras

from reszoo import layers as L
from reszoo.batchnorm import FusedBatchNormalization
from reszoo.config import ModelConfig
from reszoo.errors import ConfigError

POOLINGS = (None, "avg", "max")


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
    config: ModelConfig, block_class: type, *, include_top: bool = True, pooling: str | None = None
) -> keras.Model:
    """Build the network `config` describes, with `block_class` as its residual block."""
    if pooling not in POOLINGS:
        raise ConfigError(f"pooling must be one of None, 'avg', 'max'; got {pooling!r}")
    if not isinstance(include_top, bool):
        raise ConfigError(f"include_top must be True or False; got {include_top!r}")
    block_options = dict(
        preact=config.preact,
        shortcut=config.shortcut,
        stride_on=config.stride_on,
        conv_bias=config.conv_bias,
        groups=config.groups,
        base_width=config.base_width,
        se_ratio=config.se_ratio,
        dropout=config.dropout,
        bn_epsilon=config.bn_epsilon,
        bn_momentum=config.bn_momentum,
    )
    inputs = keras.Input(shape=tuple(config.input_shape), name="images")
    x = L.PixelNormalization(config.preprocessing, name="preprocess")(inputs)
    x = L.Stem(
        config.stem,
        config.stem_width,
        use_bias=config.stem_bias,
        normalize=not config.preact,
        bn_epsilon=config.bn_epsilon,
        bn_momentum=config.bn_momentum,
        name="stem",
    )(x)
    for block in block_plan(config):
        x = block_class(
            block["filters"],
            block["strides"],
            drop_path=block["drop_path"],
            name=block["name"],
            **block_options,
        )(x)
    if config.preact:
        x = FusedBatchNormalization(
            epsilon=config.bn_epsilon, momentum=config.bn_momentum, name="post_bn"
        )(x)
        x = keras.layers.Activation("relu", name="post_relu")(x)
    if include_top:
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # float32 logits under any mixed-precision policy: losses and softmax stay accurate.
        x = keras.layers.Dense(config.num_classes, dtype="float32", name="logits")(x)
    elif pooling == "avg":
        x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    elif pooling == "max":
        x = keras.layers.GlobalMaxPooling2D(name="max_pool")(x)
    return keras.Model(inputs, x, name=config.name)


def count_macs(model: keras.Model) -> int | None:
    """Multiply-accumulates of one forward pass (convolutions and the classifier).

    Returns None when a layer that has weights cannot say how many MACs it costs (a plugin block
    without a `macs` method), rather than a number that silently leaves it out.
    """
    total = 0
    for layer in model.layers:
        if hasattr(layer, "macs"):
            total += layer.macs(layer.input.shape)
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
        elif layer.weights and not isinstance(layer, keras.layers.BatchNormalization):
            return None
    return total


def count_trainable_params(model: keras.Model) -> int:
    """Trainable parameters only, as papers and torchvision count them (no BN moving statistics)."""
    return sum(math.prod(weight.shape) for weight in model.trainable_weights)
