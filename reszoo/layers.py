"""Residual blocks, stems and shortcuts as Keras layers.

Only `keras` and `keras.ops` are used here, so the same layers run on Keras's TensorFlow, JAX
and PyTorch backends. Every constructor argument is a public attribute of the same name and is
returned by `get_config`; sublayers are created in `__init__` or `build`, never in `call`.
Each layer also knows its multiply-accumulate count (`macs(input_shape)`), so the zoo's MACs
column is computed from the very layers that run.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from reszoo.batchnorm import FusedBatchNormalization

PACKAGE = "reszoo"

# He et al. initialisation as torchvision does it (fan_out, normal): the recipes assume it.
CONV_INITIALIZER = {
    "class_name": "VarianceScaling",
    "config": {"scale": 2.0, "mode": "fan_out", "distribution": "untruncated_normal"},
}

_PIXEL_MODES = {
    # mode: (channel order, scale per channel, offset per channel); out = x[order] * scale + offset
    "torch": (
        (0, 1, 2),
        [1 / (255 * s) for s in (0.229, 0.224, 0.225)],
        [-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))],
    ),
    "cifar": (
        (0, 1, 2),
        [1 / (255 * s) for s in (0.2470, 0.2435, 0.2616)],
        [-m / s for m, s in zip((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))],
    ),
    # keras.applications "caffe": RGB -> BGR, then subtract the ImageNet mean (BGR order).
    "caffe": ((2, 1, 0), [1.0, 1.0, 1.0], [-103.939, -116.779, -123.68]),
    "tf": ((0, 1, 2), [1 / 127.5] * 3, [-1.0] * 3),
    "none": ((0, 1, 2), [1.0] * 3, [0.0] * 3),
}


def _check(condition: bool, layer: str, argument: str, value, requirement: str) -> None:
    if not condition:
        raise ValueError(f"{layer}: `{argument}` {requirement}. Received: {argument}={value!r}")


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
        _check(
            mode in _PIXEL_MODES,
            "PixelNormalization",
            "mode",
            mode,
            f"must be one of {sorted(_PIXEL_MODES)}",
        )
        self.mode = mode
        order, scale, offset = _PIXEL_MODES[mode]
        self._order = list(order)
        self._scale = scale
        self._offset = offset

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
    a different function (DESIGN.md). Unstrided convs use "same", which is symmetric for odd kernels.
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


def _norm(epsilon: float, momentum: float, name: str, dtype) -> keras.layers.BatchNormalization:
    return FusedBatchNormalization(epsilon=epsilon, momentum=momentum, name=name, dtype=dtype)


def _conv(filters, kernel_size, strides, *, groups=1, use_bias=False, name, dtype) -> PaddedConv2D:
    return PaddedConv2D(
        filters,
        kernel_size,
        strides=strides,
        groups=groups,
        use_bias=use_bias,
        kernel_initializer=CONV_INITIALIZER,
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
        _check(
            kind in ("imagenet", "deep", "cifar"),
            "Stem",
            "kind",
            kind,
            "must be 'imagenet', 'deep' or 'cifar'",
        )
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
            padded = (shape[0], shape[1] + 2, shape[2] + 2, shape[3])
            shape = self.pool.compute_output_shape(padded)
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
        _check(kind in ("A", "B", "D"), "Shortcut", "kind", kind, "must be 'A', 'B' or 'D'")
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


class ResidualBlock(_NumberedConvs, keras.layers.Layer):
    """What every residual block shares; subclasses say only which convolutions form the branch.

    Post-activation (preact=False, He et al. 2015): conv-BN-ReLU ... conv-BN, add, ReLU.
    Pre-activation (preact=True, He et al. 2016): BN-ReLU, then conv (BN-ReLU-conv)..., add; the
    projection shortcut takes the pre-activated input, and a stride alone (no width change)
    subsamples instead of projecting, as keras.applications ResNetV2 does.
    A conv that feeds a BN gets a bias only in post-activation blocks with conv_bias=True (the
    Caffe layout keras.applications' weights need); unnormalized convs get one when conv_bias=True.
    """

    expansion = 1

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
        super().__init__(**kwargs)
        kind = type(self).__name__
        _check(
            isinstance(filters, int) and filters >= 1,
            kind,
            "filters",
            filters,
            "must be an int >= 1",
        )
        _check(
            isinstance(strides, int) and strides >= 1,
            kind,
            "strides",
            strides,
            "must be an int >= 1",
        )
        _check(shortcut in ("A", "B", "D"), kind, "shortcut", shortcut, "must be 'A', 'B' or 'D'")
        _check(stride_on in ("1x1", "3x3"), kind, "stride_on", stride_on, "must be '1x1' or '3x3'")
        _check(
            isinstance(groups, int) and groups >= 1, kind, "groups", groups, "must be an int >= 1"
        )
        _check(0 <= se_ratio < 1, kind, "se_ratio", se_ratio, "must be in [0, 1)")
        _check(0 <= dropout < 1, kind, "dropout", dropout, "must be in [0, 1)")
        _check(0 <= drop_path < 1, kind, "drop_path", drop_path, "must be in [0, 1)")
        self.filters = filters
        self.strides = strides
        self.preact = preact
        self.shortcut = shortcut
        self.stride_on = stride_on
        self.conv_bias = conv_bias
        self.groups = groups
        self.base_width = base_width
        self.se_ratio = se_ratio
        self.dropout = dropout
        self.drop_path = drop_path
        self.bn_epsilon = bn_epsilon
        self.bn_momentum = bn_momentum
        self.out_channels = filters * self.expansion

        spec = self.branch_spec()
        for conv_filters, _, _, conv_groups in spec:
            _check(
                conv_filters % conv_groups == 0,
                kind,
                "groups",
                groups,
                f"must divide the block's inner width {conv_filters}",
            )
        last = len(spec) - 1
        normalized = [not preact or i < last for i in range(len(spec))]
        convs = [
            _conv(
                f,
                k,
                s,
                groups=g,
                use_bias=conv_bias and (not preact or not normalized[i]),
                name=f"conv{i + 1}",
                dtype=self.dtype_policy,
            )
            for i, (f, k, s, g) in enumerate(spec)
        ]
        norms = [
            _norm(bn_epsilon, bn_momentum, f"bn{i + 1}", self.dtype_policy)
            if normalized[i]
            else None
            for i in range(len(spec))
        ]
        _set_numbered(self, convs, norms)
        self.preact_norm = (
            _norm(bn_epsilon, bn_momentum, "preact_bn", self.dtype_policy) if preact else None
        )
        self.dropout_layer = (
            keras.layers.Dropout(dropout, name="dropout", dtype=self.dtype_policy)
            if dropout
            else None
        )
        self.se = SqueezeExcite(se_ratio, name="se", dtype=self.dtype_policy) if se_ratio else None
        self.drop_path_layer = (
            DropPath(drop_path, name="drop_path", dtype=self.dtype_policy) if drop_path else None
        )
        self.shortcut_layer = None  # needs the input width: created in build()

    def branch_spec(self) -> list[tuple[int, int, int, int]]:
        """(filters, kernel size, strides, groups) of each conv in the residual branch."""
        raise NotImplementedError

    def _make_shortcut(self, in_channels: int) -> Shortcut | None:
        widens = in_channels != self.out_channels
        if not widens and self.strides == 1:
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

    def call(self, x, training=None):
        activated = ops.relu(self.preact_norm(x, training=training)) if self.preact else x
        y = activated
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
        if self.shortcut_layer is None:
            residual = x
        elif self.shortcut_layer.kind == "A":
            residual = self.shortcut_layer(x)
        else:
            residual = self.shortcut_layer(activated, training=training)
        out = y + ops.cast(residual, y.dtype)
        return out if self.preact else ops.relu(out)

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
            "filters": self.filters,
            "strides": self.strides,
            "preact": self.preact,
            "shortcut": self.shortcut,
            "stride_on": self.stride_on,
            "conv_bias": self.conv_bias,
            "groups": self.groups,
            "base_width": self.base_width,
            "se_ratio": self.se_ratio,
            "dropout": self.dropout,
            "drop_path": self.drop_path,
            "bn_epsilon": self.bn_epsilon,
            "bn_momentum": self.bn_momentum,
        }


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
