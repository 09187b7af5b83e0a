"""Residual blocks, stems and shortcuts as Keras layers.

Only `keras` and `keras.ops` are used here, so the same layers run on Keras's TensorFlow, JAX
and PyTorch backends. Every constructor argument is a public attribute of the same name and is
returned by `get_config`; sublayers are created in `__init__` or `build`, never in `call`.
Each layer also knows its multiply-accumulate count (`macs(input_shape)`), so the zoo's MACs
column is computed from the very layers that run.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import types
from collections.abc import Callable
from typing import Any, NamedTuple

import keras
import numpy as np
from keras import ops

from reszoo.batchnorm import FusedBatchNormalization
from reszoo.choices import (
    NO_SHORTCUT,
    PIXEL_MODES,
    SHORTCUT_KINDS,
    SHORTCUTS,
    STEM_STRIDES,
    STEMS,
    STRIDE_POSITIONS,
)
from reszoo.config import short_repr
from reszoo.errors import ConfigError

PACKAGE = "reszoo"

# He et al. initialisation as torchvision does it (fan_out, normal): the recipes assume it.
CONV_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "untruncated_normal"},
}


class LayerArgumentError(ConfigError):
    """A layer's constructor argument is invalid. `argument` names it, so the registry can name
    the config field the value came from."""

    def __init__(self, message: str, argument: str):
        super().__init__(message)
        self.argument = argument


def _check(condition: bool, layer: str, argument: str, value, requirement: str) -> None:
    if not condition:
        raise LayerArgumentError(
            f"{layer}: `{argument}` {requirement}. Received: {argument}={short_repr(value)}",
            argument,
        )


def _one_of(choices: tuple) -> str:
    return "must be one of " + ", ".join(map(repr, choices))


def _conv_macs(conv: keras.layers.Conv2D, input_shape) -> tuple[int, tuple]:
    output_shape = conv.compute_output_shape(input_shape)
    kernel_size = math.prod(conv.kernel_size) * (input_shape[-1] // conv.groups) * conv.filters
    return kernel_size * output_shape[1] * output_shape[2], output_shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class PixelNormalization(keras.layers.Layer):
    """Raw RGB pixels 0..255 in, what a weight set expects out: preprocessing lives in the model.

    Computed in float32 whatever the policy (subtracting a mean of ~120 in bfloat16 would lose
    the pixel's low bits), then cast to the compute dtype.
    """

    def __init__(self, mode: str = "torch", **kwargs):
        super().__init__(**kwargs)
        _check(mode in PIXEL_MODES, "PixelNormalization", "mode", mode, _one_of(tuple(PIXEL_MODES)))
        self.mode = mode
        order, scale, offset = PIXEL_MODES[mode]
        self._order = list(order)
        self._scale = list(scale)
        self._offset = list(offset)

    def call(self, images):
        x = ops.cast(images, "float32")
        if self._order != [0, 1, 2]:
            x = ops.take(x, self._order, axis=-1)
        x = x * ops.convert_to_tensor(self._scale, "float32") + ops.convert_to_tensor(
            self._offset, "float32"
        )
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PaddedConv2D(keras.layers.Conv2D):
    """Conv2D that pads every side by kernel_size // 2 when strided, as PyTorch and Caffe do.

    Keras's padding="same" pads only bottom/right for a strided conv; ported weights then compute
    a different function (tests/test_layers.py checks both). Unstrided convs use "same", which is symmetric for odd kernels.
    """

    def __init__(self, filters, kernel_size, strides=1, **kwargs):
        kwargs.pop("padding", None)
        super().__init__(filters, kernel_size, strides=strides, padding="same", **kwargs)
        self.explicit_padding = [k // 2 for k in self.kernel_size]
        if max(self.strides) > 1 or max(self.kernel_size) == 1:
            self.padding = "valid"
        if max(self.strides) == 1 or max(self.kernel_size) == 1:
            self.explicit_padding = [0, 0]

    def _pad(self, x):
        pad_h, pad_w = self.explicit_padding
        if pad_h or pad_w:
            x = ops.pad(x, [[0, 0], [pad_h, pad_h], [pad_w, pad_w], [0, 0]])
        return x

    def call(self, inputs):
        return super().call(self._pad(inputs))

    def compute_output_shape(self, input_shape):
        padded = list(input_shape)
        for axis, pad in zip((1, 2), self.explicit_padding):
            if padded[axis] is not None:
                padded[axis] += 2 * pad
        return super().compute_output_shape(tuple(padded))

    def get_config(self):
        config = super().get_config()
        config.pop("padding")
        return config


def _norm(
    epsilon: float, momentum: float, name: str, dtype, gamma_initializer="ones"
) -> keras.layers.BatchNormalization:
    return FusedBatchNormalization(
        epsilon=epsilon,
        momentum=momentum,
        gamma_initializer=gamma_initializer,
        name=name,
        dtype=dtype,
    )


def _conv(
    filters,
    kernel_size,
    strides,
    *,
    groups=1,
    use_bias=False,
    name,
    dtype,
    kernel_initializer=CONV_INITIALIZER,
) -> PaddedConv2D:
    return PaddedConv2D(
        filters,
        kernel_size,
        strides=strides,
        groups=groups,
        use_bias=use_bias,
        kernel_initializer=kernel_initializer,
        name=name,
        dtype=dtype,
    )


def _set_numbered(layer: keras.layers.Layer, convs: list, norms: list) -> None:
    """Sublayers as attributes conv1, bn1, conv2, ...: TensorFlow checkpoints follow attributes
    (named, so a checkpoint survives refactoring) but not Python lists inside Keras 3 layers."""
    layer.num_convs = len(convs)
    for index, (conv, norm) in enumerate(zip(convs, norms), start=1):
        setattr(layer, f"conv{index}", conv)
        setattr(layer, f"bn{index}", norm)


class _NumberedConvs:
    """`convs` and `norms` as lists, read from the numbered attributes."""

    @property
    def convs(self) -> list:
        return [getattr(self, f"conv{i}") for i in range(1, self.num_convs + 1)]

    @property
    def norms(self) -> list:
        return [getattr(self, f"bn{i}") for i in range(1, self.num_convs + 1)]

    def _build_convs(self, input_shape) -> tuple:
        """Build the conv/BN chain for `input_shape`; returns the chain's output shape."""
        shape = input_shape
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if norm is not None:
                norm.build(shape)
        return shape

    def _convs_output_shape(self, input_shape) -> tuple:
        shape = input_shape
        for conv in self.convs:
            shape = conv.compute_output_shape(shape)
        return shape

    def _convs_macs(self, input_shape) -> tuple[int, tuple]:
        """MACs of the conv chain and its output shape."""
        total, shape = 0, input_shape
        for conv in self.convs:
            macs, shape = _conv_macs(conv, shape)
            total += macs
        return total, shape


@keras.saving.register_keras_serializable(package=PACKAGE)
class Stem(_NumberedConvs, keras.layers.Layer):
    """The layers before the first residual stage.

    kind="imagenet": 7x7 stride-2 conv + 3x3 stride-2 max-pool (He et al. 2015);
    kind="deep": three 3x3 convs (width/2, width/2, width), the first strided, + max-pool (ResNet-C);
    kind="cifar": one 3x3 conv. With normalize=False (pre-activation networks) the last conv is
    left un-normalized: the first block's pre-activation normalizes it.
    """

    def __init__(
        self,
        kind: str = "imagenet",
        width: int = 64,
        use_bias: bool = False,
        normalize: bool = True,
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check(kind in STEMS, "Stem", "kind", kind, _one_of(STEMS))
        _check(isinstance(width, int) and width >= 2, "Stem", "width", width, "must be an int >= 2")
        self.kind = kind
        self.width = width
        self.use_bias = use_bias
        self.normalize = normalize
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        shapes = {
            "imagenet": [(width, 7, 2)],
            "cifar": [(width, 3, 1)],
            "deep": [(width // 2, 3, 2), (width // 2, 3, 1), (width, 3, 1)],
        }[kind]
        convs = [
            _conv(f, k, s, use_bias=use_bias, name=f"conv{i + 1}", dtype=self.dtype_policy)
            for i, (f, k, s) in enumerate(shapes)
        ]
        # Inner convs of the deep stem are always normalized; only the last one may be left bare.
        norms = [
            _norm(bn_epsilon, bn_momentum, f"bn{i + 1}", self.dtype_policy)
            if normalize or i < len(shapes) - 1
            else None
            for i in range(len(shapes))
        ]
        _set_numbered(self, convs, norms)
        self.pool = (
            keras.layers.MaxPooling2D(
                3, strides=2, padding="valid", name="pool", dtype=self.dtype_policy
            )
            if kind != "cifar"
            else None
        )

    @property
    def stride(self) -> int:
        """How much the stem shrinks its input (conv stride x max-pool stride)."""
        return STEM_STRIDES[self.kind]

    def build(self, input_shape):
        self._build_convs(input_shape)

    def call(self, x, training=None):
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x)
            if norm is not None:
                x = ops.relu(norm(x, training=training))
        if self.pool is not None:
            # Zero padding equals PyTorch's -inf padding after a ReLU, and is what keras.applications
            # does in both its v1 and v2 ResNets.
            x = self.pool(ops.pad(x, [[0, 0], [1, 1], [1, 1], [0, 0]]))
        return x

    def compute_output_shape(self, input_shape):
        shape = self._convs_output_shape(input_shape)
        if self.pool is not None:
            padded = [shape[0]] + [None if s is None else s + 2 for s in shape[1:3]] + [shape[3]]
            shape = self.pool.compute_output_shape(tuple(padded))
        return shape

    def macs(self, input_shape) -> int:
        return self._convs_macs(input_shape)[0]

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "width": self.width,
            "use_bias": self.use_bias,
            "normalize": self.normalize,
            "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
        }


@keras.saving.register_keras_serializable(package=PACKAGE)
class Shortcut(keras.layers.Layer):
    """The residual connection's path when the block changes the resolution or the width.

    kind="A": parameter-free: strided subsampling, then zero channels padded on both sides
    (He et al. 2015, option A, as in the CIFAR networks).
    kind="B": 1x1 strided conv (+ BN when normalize) projection.
    kind="D": 2x2 average pool, then 1x1 conv (+ BN) projection (He et al. 2019, ResNet-D).
    """

    def __init__(
        self,
        kind: str,
        filters: int,
        strides: int = 1,
        normalize: bool = True,
        use_bias: bool = False,
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        **kwargs,
    ):
        super().__init__(**kwargs)
        _check(kind in SHORTCUT_KINDS, "Shortcut", "kind", kind, _one_of(SHORTCUT_KINDS))
        _check(
            isinstance(filters, int) and filters >= 1,
            "Shortcut",
            "filters",
            filters,
            "must be an int >= 1",
        )
        _check(
            isinstance(strides, int) and strides >= 1,
            "Shortcut",
            "strides",
            strides,
            "must be an int >= 1",
        )
        self.kind = kind
        self.filters = filters
        self.strides = strides
        self.normalize = normalize
        self.use_bias = use_bias
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.pool = (
            keras.layers.AveragePooling2D(
                strides, strides=strides, padding="same", name="pool", dtype=self.dtype_policy
            )
            if kind == "D" and strides > 1
            else None
        )
        conv_strides = strides if kind == "B" else 1
        self.conv = (
            _conv(filters, 1, conv_strides, use_bias=use_bias, name="conv", dtype=self.dtype_policy)
            if kind != "A"
            else None
        )
        self.norm = (
            _norm(bn_epsilon, bn_momentum, "bn", self.dtype_policy)
            if kind != "A" and normalize
            else None
        )

    def build(self, input_shape):
        if self.conv is None:
            _check(
                input_shape[-1] <= self.filters,
                "Shortcut",
                "filters",
                self.filters,
                f"must be at least the input's {input_shape[-1]} channels for kind 'A', "
                "which only adds zero channels; use kind 'B' to reduce the width",
            )
            return
        shape = input_shape
        if self.pool is not None:
            shape = self.pool.compute_output_shape(shape)
        self.conv.build(shape)
        if self.norm is not None:
            self.norm.build(self.conv.compute_output_shape(shape))

    def call(self, x, training=None):
        if self.kind == "A":
            return ops.conv(x, self._placement_kernel(x.shape[-1], x.dtype), strides=self.strides)
        if self.pool is not None:
            x = self.pool(x)
        x = self.conv(x)
        return self.norm(x, training=training) if self.norm is not None else x

    def _placement_kernel(self, channels: int, dtype):
        """Option A as one 1x1 strided conv whose 0/1 kernel copies input channel i to output
        channel extra // 2 + i: subsampling and zero-padding in a single oneDNN kernel, exact in
        every precision, and about 2x faster than slice + pad forward + backward on this project's
        CPU (1.6-2.5x, benchmarks/bench_layers.py)."""
        first = (self.filters - channels) // 2
        placement = np.zeros((1, 1, channels, self.filters), dtype="float32")
        placement[0, 0, np.arange(channels), first + np.arange(channels)] = 1.0
        return ops.cast(placement, dtype)

    def compute_output_shape(self, input_shape):
        size = [None if s is None else -(-s // self.strides) for s in input_shape[1:3]]
        return (input_shape[0], size[0], size[1], self.filters)

    def macs(self, input_shape) -> int:
        if self.conv is None:
            return 0
        shape = (
            self.pool.compute_output_shape(input_shape) if self.pool is not None else input_shape
        )
        return _conv_macs(self.conv, shape)[0]

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "filters": self.filters,
            "strides": self.strides,
            "normalize": self.normalize,
            "use_bias": self.use_bias,
            "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
        }


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channel counts to a multiple of `divisor`, as timm does for SE widths."""
    return max(divisor, int(value + divisor / 2) // divisor * divisor)


@keras.saving.register_keras_serializable(package=PACKAGE)
class SqueezeExcite(keras.layers.Layer):
    """Channel attention (Hu et al. 2018): global pool, 1x1 reduce, ReLU, 1x1 expand, sigmoid gate."""

    def __init__(self, ratio: float = 1 / 16, divisor: int = 8, **kwargs):
        super().__init__(**kwargs)
        _check(0 < ratio < 1, "SqueezeExcite", "ratio", ratio, "must be in (0, 1)")
        self.ratio = ratio
        self.divisor = divisor
        self.reduce = None
        self.expand = None

    def build(self, input_shape):
        channels = input_shape[-1]
        reduced = make_divisible(channels * self.ratio, self.divisor)
        self.reduce = keras.layers.Conv2D(reduced, 1, name="reduce", dtype=self.dtype_policy)
        self.expand = keras.layers.Conv2D(channels, 1, name="expand", dtype=self.dtype_policy)
        self.reduce.build((None, 1, 1, channels))
        self.expand.build((None, 1, 1, reduced))

    def call(self, x):
        gate = ops.mean(x, axis=(1, 2), keepdims=True)
        gate = ops.sigmoid(self.expand(ops.relu(self.reduce(gate))))
        return x * gate

    def compute_output_shape(self, input_shape):
        return input_shape

    def macs(self, input_shape) -> int:
        pooled = (input_shape[0], 1, 1, input_shape[-1])
        reduce_macs, reduced = _conv_macs(self.reduce, pooled)
        return reduce_macs + _conv_macs(self.expand, reduced)[0]

    def get_config(self):
        return {**super().get_config(), "ratio": self.ratio, "divisor": self.divisor}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DropPath(keras.layers.Layer):
    """Stochastic depth (Huang et al. 2016): drops a sample's whole residual branch in training."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        _check(0 <= rate < 1, "DropPath", "rate", rate, "must be in [0, 1)")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0:
            return x
        noise_shape = (ops.shape(x)[0], 1, 1, 1)
        return keras.random.dropout(x, self.rate, noise_shape=noise_shape, seed=self.seed_generator)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


class ConvSpec(NamedTuple):
    """One convolution of a residual branch."""

    filters: int
    kernel_size: int
    strides: int
    groups: int


def _is_bool(value) -> bool:
    return isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class BlockOption:
    """An option a block takes through `block_args`: its default, the test a value must pass and
    the requirement a message states when it does not."""

    default: Any
    valid: Callable[[Any], bool]
    requirement: str


class ResidualBlock(_NumberedConvs, keras.layers.Layer):
    """What every residual block shares; subclasses say only which convolutions form the branch.

    Post-activation (preact=False, He et al. 2015): conv-BN-ReLU ... conv-BN, add, ReLU.
    Pre-activation (preact=True, He et al. 2016): BN-ReLU, then conv (BN-ReLU-conv)..., add; the
    projection shortcut takes the pre-activated input, and a stride alone (no width change)
    subsamples instead of projecting, as keras.applications ResNetV2 does.
    shortcut="none" makes a plain block (He et al. 2015's plain networks): no identity path, so
    the block is its branch (then ReLU when post-activation).
    A conv that feeds a BN gets a bias only in post-activation blocks with conv_bias=True (the
    Caffe layout keras.applications' weights need); unnormalized convs get one when conv_bias=True.

    `OPTIONS` are the keyword options registry entries pass through `block_args`: adding one is
    an entry there plus the code that reads `self.<name>`; validation, get_config and the
    registry's checks follow from the table. A subclass extends it with
    `OPTIONS = {**ResidualBlock.OPTIONS, "name": BlockOption(...)}`.
    """

    expansion = 1
    OPTIONS = {
        # Goyal et al. 2017, timm's `zero_init_last`: each residual branch starts at zero, so
        # every block starts as the identity. Post-activation blocks zero their last BN's gamma;
        # pre-activation blocks, which have no BN after the last conv, zero that conv's kernel
        # (as timm's PreActBottleneck does).
        "zero_init_last": BlockOption(False, _is_bool, "must be true or false"),
    }

    def __init__(
        self,
        filters: int,
        strides: int = 1,
        *,
        preact: bool = False,
        shortcut: str = "B",
        stride_on: str = "3x3",
        conv_bias: bool = False,
        groups: int = 1,
        base_width: int = 64,
        se_ratio: float = 0.0,
        dropout: float = 0.0,
        drop_path: float = 0.0,
        bn_epsilon: float = 1e-5,
        bn_momentum: float = 0.9,
        **kwargs,
    ):
        options = {name: kwargs.pop(name, option.default) for name, option in self.OPTIONS.items()}
        super().__init__(**kwargs)
        arguments = dict(
            filters=filters,
            strides=strides,
            preact=preact,
            shortcut=shortcut,
            stride_on=stride_on,
            conv_bias=conv_bias,
            groups=groups,
            base_width=base_width,
            se_ratio=se_ratio,
            dropout=dropout,
            drop_path=drop_path,
            bn_epsilon=bn_epsilon,
            bn_momentum=bn_momentum,
            **options,
        )
        spec = self.check_arguments(arguments)
        for name, value in arguments.items():
            setattr(self, name, value)
        self.out_channels = filters * self.expansion
        self._create_branch(spec)
        self._create_extras()
        self.shortcut_layer = None  # needs the input width: created in build()

    # -- what the class answers without building anything ------------------------------------
    @classmethod
    def check_arguments(cls, arguments: dict[str, Any]) -> list[ConvSpec]:
        """Validate a block's constructor arguments (the options included) and return its branch's
        convolutions, without creating a layer: the registry checks every stage of a config with
        it before anything is built, and __init__ runs the same checks.

        Raises LayerArgumentError naming the argument (a ConfigError, so a ValueError too).
        """
        kind = cls.__name__
        known = set(_BLOCK_ARGUMENTS) | set(cls.OPTIONS)
        for name in arguments:
            _check(name in known, kind, name, arguments[name], _unknown_option(cls))
        arguments = {**cls.default_arguments(), **arguments}
        _check_core_arguments(kind, arguments)
        for name, option in cls.OPTIONS.items():
            _check(option.valid(arguments[name]), kind, name, arguments[name], option.requirement)
        _check_plain_block(kind, arguments)
        return cls._checked_branch(arguments)

    @classmethod
    def default_arguments(cls) -> dict[str, Any]:
        """Every keyword argument's default, the options' included."""
        parameters = inspect.signature(ResidualBlock.__init__).parameters.values()
        defaults = {p.name: p.default for p in parameters if p.default is not p.empty}
        return {**defaults, **{name: option.default for name, option in cls.OPTIONS.items()}}

    @classmethod
    def _checked_branch(cls, arguments: dict[str, Any]) -> list[ConvSpec]:
        """branch_spec on a plain record of the arguments, with its widths and groups checked."""
        record = types.SimpleNamespace(**arguments, expansion=cls.expansion)
        spec = [ConvSpec(*conv) for conv in cls.branch_spec(record)]
        for conv in spec:
            _check(
                conv.filters >= 1,
                cls.__name__,
                "base_width",
                arguments["base_width"],
                f"makes a branch convolution {conv.filters} filters wide; it must be >= 1",
            )
            _check(
                conv.filters % conv.groups == 0,
                cls.__name__,
                "groups",
                arguments["groups"],
                f"must divide the block's inner width {conv.filters}",
            )
        return spec

    def branch_spec(self) -> list[tuple[int, int, int, int]]:
        """(filters, kernel size, strides, groups) of each conv in the residual branch.

        Read only the block's arguments (self.filters, self.strides, self.groups,
        self.base_width, self.stride_on, the options) and `self.expansion`: check_arguments also
        calls it on a plain record of them, before any layer exists.
        """
        raise NotImplementedError

    # -- sublayers ---------------------------------------------------------------------------
    def _create_branch(self, spec: list[ConvSpec]) -> None:
        last = len(spec) - 1
        normalized = [not self.preact or i < last for i in range(len(spec))]
        zero_last_conv = self.zero_init_last and not normalized[last]
        convs = [
            _conv(
                conv.filters,
                conv.kernel_size,
                conv.strides,
                groups=conv.groups,
                use_bias=self.conv_bias and (not self.preact or not normalized[i]),
                name=f"conv{i + 1}",
                dtype=self.dtype_policy,
                kernel_initializer="zeros" if zero_last_conv and i == last else CONV_INITIALIZER,
            )
            for i, conv in enumerate(spec)
        ]
        norms = [
            _norm(
                self.bn_epsilon,
                self.bn_momentum,
                f"bn{i + 1}",
                self.dtype_policy,
                gamma_initializer="zeros" if self.zero_init_last and i == last else "ones",
            )
            if normalized[i]
            else None
            for i in range(len(spec))
        ]
        _set_numbered(self, convs, norms)

    def _create_extras(self) -> None:
        """The pre-activation BN, dropout, squeeze-excite and drop-path layers the options ask for."""
        policy = self.dtype_policy
        self.preact_norm = (
            _norm(self.bn_epsilon, self.bn_momentum, "preact_bn", policy) if self.preact else None
        )
        self.dropout_layer = (
            keras.layers.Dropout(self.dropout, name="dropout", dtype=policy)
            if self.dropout
            else None
        )
        self.se = SqueezeExcite(self.se_ratio, name="se", dtype=policy) if self.se_ratio else None
        self.drop_path_layer = (
            DropPath(self.drop_path, name="drop_path", dtype=policy) if self.drop_path else None
        )

    def _make_shortcut(self, in_channels: int) -> Shortcut | None:
        widens = in_channels != self.out_channels
        if self.shortcut == NO_SHORTCUT or (not widens and self.strides == 1):
            return None
        kind = "A" if self.shortcut == "A" or (self.preact and not widens) else self.shortcut
        return Shortcut(
            kind,
            self.out_channels,
            self.strides,
            normalize=not self.preact,
            use_bias=self.conv_bias,
            bn_epsilon=self.bn_epsilon,
            bn_momentum=self.bn_momentum,
            name="shortcut",
            dtype=self.dtype_policy,
        )

    def build(self, input_shape):
        self.shortcut_layer = self._make_shortcut(input_shape[-1])
        if self.shortcut_layer is not None:
            self.shortcut_layer.build(input_shape)
        if self.preact_norm is not None:
            self.preact_norm.build(input_shape)
        shape = self._build_convs(input_shape)
        if self.se is not None:
            self.se.build(shape)

    # -- computation -------------------------------------------------------------------------
    def call(self, x, training=None):
        activated = ops.relu(self.preact_norm(x, training=training)) if self.preact else x
        y = self._branch(activated, training)
        if self.shortcut != NO_SHORTCUT:
            y = y + ops.cast(self._residual(x, activated, training), y.dtype)
        return y if self.preact else ops.relu(y)

    def _branch(self, y, training):
        last = len(self.convs) - 1
        for index, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            y = conv(y)
            if norm is not None:
                y = norm(y, training=training)
            if index < last:
                y = ops.relu(y)
                if index == 0 and self.dropout_layer is not None:
                    y = self.dropout_layer(y, training=training)
        if self.se is not None:
            y = self.se(y)
        if self.drop_path_layer is not None:
            y = self.drop_path_layer(y, training=training)
        return y

    def _residual(self, x, activated, training):
        if self.shortcut_layer is None:
            return x
        if self.shortcut_layer.kind == "A":
            return self.shortcut_layer(x)
        return self.shortcut_layer(activated, training=training)

    def compute_output_shape(self, input_shape):
        return self._convs_output_shape(input_shape)

    def macs(self, input_shape) -> int:
        total, shape = self._convs_macs(input_shape)
        if self.se is not None:
            total += self.se.macs(shape)
        if self.shortcut_layer is not None:
            total += self.shortcut_layer.macs(input_shape)
        return total

    def get_config(self):
        return {
            **super().get_config(),
            **{name: getattr(self, name) for name in _BLOCK_ARGUMENTS},
            **{name: getattr(self, name) for name in self.OPTIONS},
        }


# The constructor arguments every residual block takes (its options come from OPTIONS).
_BLOCK_ARGUMENTS = tuple(
    name
    for name in inspect.signature(ResidualBlock.__init__).parameters
    if name not in ("self", "kwargs")
)


def _unknown_option(block_class: type) -> str:
    known = ", ".join(sorted(block_class.OPTIONS)) or "none"
    return f"is not an option of this block; its block_args options are: {known}"


def _check_core_arguments(kind: str, arguments: dict[str, Any]) -> None:
    for name in ("filters", "strides", "groups"):
        value = arguments[name]
        _check(isinstance(value, int) and value >= 1, kind, name, value, "must be an int >= 1")
    _check(
        arguments["shortcut"] in SHORTCUTS,
        kind,
        "shortcut",
        arguments["shortcut"],
        _one_of(SHORTCUTS),
    )
    stride_on = arguments["stride_on"]
    _check(stride_on in STRIDE_POSITIONS, kind, "stride_on", stride_on, _one_of(STRIDE_POSITIONS))
    for name in ("se_ratio", "dropout", "drop_path"):
        value = arguments[name]
        is_rate = isinstance(value, (int, float)) and not isinstance(value, bool)
        _check(is_rate and 0 <= value < 1, kind, name, value, "must be in [0, 1)")


def _check_plain_block(kind: str, arguments: dict[str, Any]) -> None:
    """Options that need an identity path: without one they would zero the block's output."""
    if arguments["shortcut"] != NO_SHORTCUT:
        return
    _check(
        not arguments["drop_path"],
        kind,
        "drop_path",
        arguments["drop_path"],
        "must be 0 with shortcut 'none': dropping the branch of a plain block drops everything",
    )
    _check(
        not arguments.get("zero_init_last"),
        kind,
        "zero_init_last",
        arguments.get("zero_init_last"),
        "must be false with shortcut 'none': a plain block with a zeroed branch outputs zeros",
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions (ResNet-18/34, the CIFAR ResNets, wide ResNets). stride_on is unused."""

    expansion = 1

    def branch_spec(self):
        return [(self.filters, 3, self.strides, self.groups), (self.filters, 3, 1, self.groups)]


@keras.saving.register_keras_serializable(package=PACKAGE)
class BottleneckBlock(ResidualBlock):
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand by 4 (ResNet-50 and deeper).

    The stride sits on the 3x3 (stride_on="3x3", torchvision's "v1.5") or on the first 1x1
    (stride_on="1x1", the original Caffe/keras.applications layout).
    """

    expansion = 4

    def branch_spec(self):
        inner = int(self.filters * self.base_width / 64) * self.groups
        first_stride = self.strides if self.stride_on == "1x1" else 1
        middle_stride = self.strides if self.stride_on == "3x3" else 1
        return [
            (inner, 1, first_stride, 1),
            (inner, 3, middle_stride, self.groups),
            (self.filters * self.expansion, 1, 1, 1),
        ]


BUILTIN_BLOCKS = {"basic": BasicBlock, "bottleneck": BottleneckBlock}
