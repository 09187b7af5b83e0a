"""The named choices of a model config and of the data pipeline, each defined once.

config.py validates registry entries against these names, layers.py implements them, and the
CLIs list them; data.py parses ``augment`` against the augmentation names. Plain data only (no
Keras), so importing it stays cheap.
"""

from __future__ import annotations

# Stem kind -> how much it shrinks the input (conv stride x max-pool stride).
STEM_STRIDES = {"imagenet": 4, "deep": 4, "cifar": 1}
STEMS = tuple(STEM_STRIDES)

# What the Shortcut layer can be: parameter-free subsampling (A), a 1x1 projection (B) or an
# average pool then a projection (D).
SHORTCUT_KINDS = ("A", "B", "D")
# What a block's `shortcut` option can be: a Shortcut kind, or "none" for a plain network
# (no identity path at all: the block is its residual branch).
SHORTCUTS = SHORTCUT_KINDS + ("none",)
NO_SHORTCUT = "none"

STRIDE_POSITIONS = ("1x1", "3x3")
DOWNSAMPLE_POSITIONS = ("first", "last")

# Preprocessing mode -> (channel order, scale per channel, offset per channel), applied to raw
# 0..255 RGB pixels as out = x[order] * scale + offset: what a weight set expects its input to be.
PIXEL_MODES = {
    "torch": (
        (0, 1, 2),
        tuple(1 / (255 * s) for s in (0.229, 0.224, 0.225)),
        tuple(-m / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))),
    ),
    "cifar": (
        (0, 1, 2),
        tuple(1 / (255 * s) for s in (0.2470, 0.2435, 0.2616)),
        tuple(-m / s for m, s in zip((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))),
    ),
    # keras.applications "caffe": RGB -> BGR, then subtract the ImageNet mean (BGR order).
    "caffe": ((2, 1, 0), (1.0, 1.0, 1.0), (-103.939, -116.779, -123.68)),
    "tf": ((0, 1, 2), (1 / 127.5,) * 3, (-1.0,) * 3),
    "none": ((0, 1, 2), (1.0,) * 3, (0.0,) * 3),
}
PREPROCESSING_MODES = tuple(PIXEL_MODES)

POOLINGS = (None, "avg", "max")

# Data augmentation (reszoo.data): a base, optionally followed by '+' and extras.
AUGMENT_BASES = ("auto", "none", "cifar", "imagenet")
AUGMENT_EXTRAS = ("randaugment", "mixup", "cutmix", "erasing")
