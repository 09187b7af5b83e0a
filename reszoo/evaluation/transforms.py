"""How an image becomes what a classifier was measured on: one entry per kind of source.

Every transform takes decoded RGB pixels (uint8 [h, w, 3]) and returns float32 pixels 0..255
(normalization is a layer inside every reszoo model). The kinds, in TRANSFORMS:

  fit          what reszoo.data's evaluation does for a run: the centred window that fits the
               model's size / crop_fraction, resized (bilinear, antialiased) to that size and
               rounded to 8 bits; crop_fraction 1.0 for runs with CIFAR-style augmentation
               (images up to 64 px), reszoo.data.EVAL_CROP_FRACTION for ImageNet-style ones
  resize_crop  a weight tag's evaluation transform (timm's and torchvision's): the shorter side
               resized to image_size / crop_fraction with the tag's interpolation, rounded to
               8 bits, then the centre image_size x image_size crop
  as_is        nothing: an export resizes in its own graph, and a free-size model takes any size
"""

from __future__ import annotations

import dataclasses
import math

import tensorflow as tf

from reszoo.image_ops import center_window, resize, to_uint8, windowed

_IMAGE = tf.TensorSpec([None, None, 3], tf.uint8)


@dataclasses.dataclass(frozen=True)
class Transform:
    """One kind of TRANSFORMS with its settings; `function()` runs it on one image."""

    kind: str
    size: tuple | None = None  # (height, width) out; None for as_is
    crop_fraction: float = 1.0
    interpolation: str = "bilinear"

    def describe(self) -> str:
        return TRANSFORMS[self.kind][0](self)

    def function(self):
        """A tf.function uint8 [h, w, 3] -> float32 [H, W, 3], traced once for every size."""
        return tf.function(TRANSFORMS[self.kind][1](self), input_signature=[_IMAGE])


def _fit(transform: Transform):
    window = center_window(transform.size, transform.crop_fraction)

    def apply(image):
        return tf.cast(
            to_uint8(resize(windowed(image, "decoded", window), transform.size)), tf.float32
        )

    return apply


def _resize_crop(transform: Transform):
    height, width = transform.size
    shorter = math.floor(min(height, width) / transform.crop_fraction)

    def apply(image):
        shape = tf.shape(image)[:2]  # torchvision's Resize(int): the longer side truncated
        new = tf.maximum(shape * shorter // tf.reduce_min(shape), [height, width])
        resized = tf.image.resize(image, new, method=transform.interpolation, antialias=True)
        resized = to_uint8(resized)
        top, left = (new[0] - height) // 2, (new[1] - width) // 2
        return tf.cast(resized[top : top + height, left : left + width], tf.float32)

    return apply


def _as_is(transform: Transform):
    def apply(image):
        return tf.cast(image, tf.float32)

    return apply


def _describe_fit(t: Transform) -> str:
    crop = f" / {t.crop_fraction:g}" if t.crop_fraction != 1 else ""
    return (
        f"reszoo.data's evaluation transform: the centred window that fits "
        f"{t.size[0]}x{t.size[1]}{crop}, resized to {t.size[0]}x{t.size[1]} (bilinear, antialiased)"
    )


def _describe_resize_crop(t: Transform) -> str:
    shorter = math.floor(min(t.size) / t.crop_fraction)
    return (
        f"the weight tag's evaluation transform: shorter side to {shorter} ({t.interpolation}), "
        f"centre crop {t.size[0]}x{t.size[1]}"
    )


# kind -> (one line saying what it does, apply-function factory)
TRANSFORMS = {
    "fit": (_describe_fit, _fit),
    "resize_crop": (_describe_resize_crop, _resize_crop),
    "as_is": (lambda t: "none: images go in at their own size", _as_is),
}
