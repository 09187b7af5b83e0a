"""tf.data input pipelines: TFDS data sets, image folders, scikit-learn's digits, synthetic data.

The sources live in reszoo.data_sources and the graph-mode image ops in reszoo.image_ops; this
module checks the arguments, builds the pipelines and is the one public entry point.

One entry point, :func:`load`, returns ``(train, validation, info)``:

* ``train`` yields one epoch per iteration: reshuffled, augmented, batched with the *global*
  batch size (``drop_remainder`` by default) and prefetched. Elements are
  ``(images, labels)``: images float32 ``[B, H, W, 3]``, RGB pixel values in 0..255 (not
  normalized: the model normalizes), labels int32 ``[B]``; with MixUp/CutMix the labels are
  float32 soft labels ``[B, num_classes]`` that sum to 1.
* ``validation`` is the same without augmentation or shuffling, batched without dropping the
  remainder, or ``None`` when there is no validation split. Its labels are always int32 ``[B]``.
* ``info`` is a :class:`DataInfo`.

Pipeline shape, chosen for speed on few cores: small images (CIFAR-style) are decoded and resized
once, cached as uint8 and augmented per batch with vectorized ops (random crop by gather, flip by
``tf.where``); large images (ImageNet-style) are cached as encoded bytes when they fit in memory,
and decoded with the random-resized crop fused into JPEG decoding
(``tf.image.sample_distorted_bounding_box`` + ``tf.io.decode_and_crop_jpeg``).

Image folders are checked cheaply up front (size, magic bytes, end marker; the few files that look
truncated are test-decoded); bad files are skipped and counted and named in one warning, and any
decode error left is skipped in the pipeline (``ignore_errors``), so it never ends an epoch.

This module imports TensorFlow; ``import reszoo`` does not import it.
"""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import tensorflow as tf

from reszoo.choices import AUGMENT_BASES, AUGMENT_EXTRAS
from reszoo.data_sources import SourceRequest, augment_base, source_for
from reszoo.errors import DataError
from reszoo.image_ops import (
    center_window,
    cifar_batch_augment,
    random_resized_window,
    resize,
    to_uint8,
    windowed,
)

__all__ = ["DataInfo", "load", "AUGMENT_BASES", "AUGMENT_EXTRAS"]

EVAL_CROP_FRACTION = 0.875  # ImageNet evaluation: resize shorter side to size / 0.875, center crop
MIXUP_ALPHA = 0.2
ERASING_PROBABILITY = 0.25
SHUFFLE_BUFFER_UNCACHED = 10_000  # decoded-image shuffle buffer when the data is not cached


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What :func:`load` produced."""

    name: str  # dataset name as given
    num_classes: int
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]  # (H, W, 3) of the batches produced
    train_examples: int
    validation_examples: int  # 0 when no validation split


# --------------------------------------------------------------------------------------------
# Argument checking


def _check_image_size(image_size):
    if image_size is None:
        return None
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        image_size = (int(image_size), int(image_size))
    try:
        h, w = image_size
        ok = all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (h, w))
    except (TypeError, ValueError):
        ok = False
    if not ok or h < 1 or w < 1:
        raise DataError(
            f"image_size must be None, a positive int or a (height, width) pair of positive ints. "
            f"Received: image_size={image_size!r}"
        )
    return int(h), int(w)


def _check_validation_split(validation_split):
    """None (use the data set's default), a fraction in [0, 1) or a count >= 0."""
    if validation_split is None:
        return None
    if isinstance(validation_split, bool) or not isinstance(
        validation_split, (int, float, np.integer, np.floating)
    ):
        raise DataError(
            "validation_split must be None, a fraction in [0, 1) or a number of examples. "
            f"Received: validation_split={validation_split!r}"
        )
    if isinstance(validation_split, (int, np.integer)):
        if validation_split < 0:
            raise DataError(
                f"validation_split must not be negative. Received: validation_split={validation_split}"
            )
        return int(validation_split)
    if not (0.0 <= validation_split < 1.0) or math.isnan(validation_split):
        raise DataError(
            "validation_split as a float is the fraction held out and must be in [0, 1); pass an "
            f"int for a number of examples. Received: validation_split={validation_split}"
        )
    return float(validation_split)


@dataclasses.dataclass(frozen=True)
class _Augment:
    base: str  # "none", "cifar" or "imagenet" (resolved)
    extras: tuple[str, ...]


def _parse_augment(augment):
    valid = (
        f"valid: one of {', '.join(AUGMENT_BASES)}, optionally followed by '+' and any of "
        f"{', '.join(AUGMENT_EXTRAS)} (e.g. 'cifar+randaugment', 'imagenet+mixup', '+cutmix')"
    )
    if not isinstance(augment, str):
        raise DataError(f"augment must be a string ({valid}). Received: augment={augment!r}")
    tokens = [t.strip().lower() for t in augment.split("+")]
    base = "auto"
    if tokens and tokens[0] in AUGMENT_BASES:
        base = tokens.pop(0)
    elif tokens and tokens[0] == "":
        tokens.pop(0)
    extras = []
    for token in tokens:
        if token not in AUGMENT_EXTRAS:
            raise DataError(f"Unknown augmentation {token!r} in augment={augment!r}; {valid}.")
        if token not in extras:
            extras.append(token)
    return base, tuple(extras)


# --------------------------------------------------------------------------------------------
# Pipelines


def _cache_limit_bytes():
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover
        total = 16 << 30
    return min(8 << 30, total // 4)


def _should_cache(cache, nbytes):
    if cache is not None:
        return bool(cache)
    return nbytes is not None and nbytes <= _cache_limit_bytes()


def _read(split, training):
    """Dataset of (image-or-bytes, label) with labels int32; paths are read. Evaluation keeps
    the order; training does not need to."""
    ds = split.dataset
    if split.kind == "path":
        ds = ds.map(
            lambda p, y: (tf.io.read_file(p), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=not training,
        )
    return ds.map(lambda x, y: (x, tf.cast(y, tf.int32)))


def _fixed_size(kind, size, fraction):
    """Deterministic preprocessing to uint8 [H, W, 3]: the centered window that fits ``size``
    (after scaling by 1/fraction), decoded (fused for JPEG) and resized."""
    window = center_window(size, fraction)

    def fn(x, y):
        return to_uint8(resize(windowed(x, kind, window), size)), y

    return fn


@dataclasses.dataclass(frozen=True)
class _Pipeline:
    """How the training pipeline is built (the checked arguments of load)."""

    aug: _Augment
    size: tuple[int, int]
    batch_size: int
    cache: bool | None
    seed: int
    drop_remainder: bool
    num_classes: int
    keras_layers: dict


def _decode(ds, fn, can_fail):
    ds = ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.ignore_errors(log_warning=True) if can_fail else ds


def _random_resized_crop(kind, size):
    def rrc(x, y):
        image = windowed(x, kind, random_resized_window)
        image = tf.image.random_flip_left_right(image)
        return to_uint8(resize(image, size)), y

    return rrc


def _train_images(split, plan):
    """Shuffled uint8 [H, W, 3] training images. "cifar"/"none" decode and resize once and cache
    the result; "imagenet" caches what it reads (bytes) and crops at random every epoch."""
    n, size, seed = split.examples, plan.size, plan.seed
    kind = "encoded" if split.kind == "path" else split.kind
    can_fail = split.kind != "decoded"
    per_epoch_crop = plan.aug.base not in ("cifar", "none")
    nbytes = split.raw_bytes if per_epoch_crop else n * size[0] * size[1] * 3
    cached = _should_cache(plan.cache, nbytes)
    ds = split.dataset
    if split.kind == "path" and not cached:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = _read(dataclasses.replace(split, dataset=ds), True)
    if not per_epoch_crop:
        ds = _decode(ds, _fixed_size(kind, size, 1.0), can_fail)
    if cached:
        ds = ds.cache().shuffle(n, seed=seed, reshuffle_each_iteration=True)
    elif split.kind != "path":
        ds = ds.shuffle(min(n, SHUFFLE_BUFFER_UNCACHED), seed=seed, reshuffle_each_iteration=True)
    if per_epoch_crop:
        ds = _decode(ds, _random_resized_crop(kind, size), can_fail)
    return ds


def _batch_augment(plan):
    """The per-batch map: float32 images, CIFAR crop/flip, erasing, MixUp/CutMix soft labels."""
    pad = max(1, min(plan.size) // 8)
    erasing = plan.keras_layers.get("erasing")
    mixers = [plan.keras_layers[k] for k in ("mixup", "cutmix") if k in plan.keras_layers]

    def mix(x, y):
        data = {"images": x, "labels": tf.one_hot(y, plan.num_classes, dtype=tf.float32)}
        if len(mixers) == 1:
            out = mixers[0](data)
        else:  # MixUp or CutMix, chosen per batch
            out = tf.cond(
                tf.random.uniform([]) < 0.5, lambda: mixers[0](data), lambda: mixers[1](data)
            )
        return out["images"], tf.cast(out["labels"], tf.float32)

    def batch_fn(x, y):
        x = tf.cast(x, tf.float32)
        if plan.aug.base == "cifar":
            x = cifar_batch_augment(x, pad)
        if erasing is not None:
            x = erasing(x)
        return mix(x, y) if mixers else (x, y)

    return batch_fn


def _build_train(split, plan):
    opts = tf.data.Options()
    opts.deterministic = False
    ds = _train_images(split, plan)
    if "randaugment" in plan.aug.extras:
        randaugment = plan.keras_layers["randaugment"]
        ds = ds.map(
            lambda x, y: (to_uint8(randaugment(tf.cast(x, tf.float32))), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False,
        )
    ds = ds.batch(
        plan.batch_size,
        drop_remainder=plan.drop_remainder,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )
    ds = ds.map(_batch_augment(plan), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(opts)


def _build_eval(split, aug, size, batch_size, cache):
    kind = "encoded" if split.kind == "path" else split.kind
    fraction = EVAL_CROP_FRACTION if aug.base == "imagenet" else 1.0
    ds = _read(split, False).map(
        _fixed_size(kind, size, fraction), num_parallel_calls=tf.data.AUTOTUNE
    )
    if split.kind != "decoded":
        ds = ds.ignore_errors(log_warning=True)
    if _should_cache(cache, split.examples * size[0] * size[1] * 3):
        ds = ds.cache()
    ds = ds.batch(batch_size, drop_remainder=False, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


# The Keras layers of the augmentations named after '+' (reszoo.choices.AUGMENT_EXTRAS), built
# in this order, in float32 on channels_last images with values 0..255.
_KERAS_AUGMENTATIONS = {
    "randaugment": lambda layers, common: layers.RandAugment(value_range=(0, 255), **common),
    "erasing": lambda layers, common: layers.RandomErasing(
        factor=(ERASING_PROBABILITY, ERASING_PROBABILITY), value_range=(0, 255), **common
    ),
    "mixup": lambda layers, common: layers.MixUp(alpha=MIXUP_ALPHA, **common),
    "cutmix": lambda layers, common: layers.CutMix(**common),
}
assert set(_KERAS_AUGMENTATIONS) == set(AUGMENT_EXTRAS)


def _make_keras_layers(extras):
    import keras

    common = {"data_format": "channels_last", "dtype": "float32"}  # never mixed precision here
    return {
        name: make(keras.layers, common)
        for name, make in _KERAS_AUGMENTATIONS.items()
        if name in extras
    }


# --------------------------------------------------------------------------------------------
# Public entry point


def load(
    dataset: str,
    *,
    batch_size: int,
    image_size: tuple[int, int] | None = None,
    augment: str = "auto",
    data_dir: str | None = None,
    validation_split: float | int | None = None,
    seed: int = 0,
    cache: bool | None = None,
    num_classes: int | None = None,
    examples: int | None = None,
    drop_remainder: bool = True,
    follow_links: bool = False,
) -> tuple[tf.data.Dataset, tf.data.Dataset | None, DataInfo]:
    """Build the training and validation pipelines of a data set.

    Args:
        dataset: "digits" (scikit-learn's 1,797 8x8 digits, upscaled), "synthetic" (random images
            whose mean colour depends on the class), a path to an image folder (one sub-folder
            per class; a sibling ``val``/``validation`` folder of a ``train`` folder is used for
            validation), or a TensorFlow Datasets name ("cifar10", "imagenet2012", ...).
        batch_size: global batch size (the caller splits it across replicas).
        image_size: (height, width) of the batches; default: the data's own size when its images
            are all the same and at most 64 px (32x32 for digits/synthetic), else 224x224.
        augment: "auto", "none", "cifar" or "imagenet", optionally followed by "+randaugment",
            "+mixup", "+cutmix", "+erasing" (e.g. "cifar+randaugment", "imagenet+mixup+cutmix").
            "auto" is "cifar" for images up to 64 px and "imagenet" above.
        data_dir: TFDS data directory (default: $TFDS_DATA_DIR or TFDS's own default).
        validation_split: None for the data set's own validation data (TFDS "validation" or
            "test" split, a sibling ``val`` folder; else 10% of a folder, 20% of digits,
            20% extra for synthetic), 0 for none, a fraction in (0, 1) or a number of examples
            held out of the training data (per class, fixed: it does not change with ``seed``).
        seed: shuffling seed (and the data of "synthetic").
        cache: cache decoded data in memory: None decides by size, True/False force it.
        num_classes: number of classes of "synthetic" (default 10); for other data sets, a check.
        examples: number of training examples to use (a fixed subset; synthetic: how many to
            generate, default 1024).
        drop_remainder: drop the last partial training batch (validation never drops).
        follow_links: follow an image folder's symbolic links inside it (reszoo/folder_walk.py).

    Returns (train, validation, info) (see the module docstring); DataError for bad input.
    """
    name = _check_name(dataset)
    batch_size, size, validation_split = _check_arguments(
        batch_size, image_size, validation_split, examples, cache, seed
    )
    base, extras = _parse_augment(augment)
    request = SourceRequest(
        name, size, validation_split, examples, num_classes, seed, data_dir, base, follow_links
    )
    source = source_for(name)(request)
    classes = _check_classes(name, source, num_classes)
    size = source.image_size if size is None else size
    _check_one_batch(name, source.train.examples, batch_size, drop_remainder)
    aug = _Augment(augment_base(base, size), extras)
    plan = _Pipeline(
        aug, size, batch_size, cache, seed, drop_remainder, classes, _make_keras_layers(extras)
    )
    return _pipelines(name, source, plan)


def _pipelines(name, source, plan):
    """(train, validation or None, DataInfo) of a source."""
    train = _build_train(source.train, plan)
    validation = None
    if source.validation is not None and source.validation.examples > 0:
        validation = _build_eval(
            source.validation, plan.aug, plan.size, plan.batch_size, plan.cache
        )
    info = DataInfo(
        name=name,
        num_classes=plan.num_classes,
        class_names=tuple(source.class_names),
        image_shape=(int(plan.size[0]), int(plan.size[1]), 3),
        train_examples=int(source.train.examples),
        validation_examples=int(source.validation.examples) if validation is not None else 0,
    )
    return train, validation, info


def _check_arguments(batch_size, image_size, validation_split, examples, cache, seed):
    """(batch size, image size, validation split) in their checked forms; DataError naming the
    first bad argument."""
    batch_size = _check_batch_size(batch_size)
    size = _check_image_size(image_size)
    validation_split = _check_validation_split(validation_split)
    _check_options(examples, cache, seed)
    return batch_size, size, validation_split


def _check_one_batch(name, train_n, batch_size, drop_remainder):
    if drop_remainder and train_n < batch_size:
        raise DataError(
            f"batch_size={batch_size} is larger than the {train_n} training examples of {name!r}, "
            "so an epoch would have no batch; use a smaller batch_size or drop_remainder=False."
        )


def _check_name(dataset):
    name = os.fspath(dataset) if isinstance(dataset, os.PathLike) else dataset
    if not isinstance(name, str) or not name.strip():
        raise DataError(
            f"dataset must be a non-empty string or path. Received: dataset={dataset!r}"
        )
    return name


def _check_batch_size(batch_size):
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise DataError(
            f"batch_size must be a positive int (the global batch). Received: batch_size={batch_size!r}"
        )
    return int(batch_size)


def _check_options(examples, cache, seed):
    if examples is not None and (
        isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 1
    ):
        raise DataError(f"examples must be None or a positive int. Received: examples={examples!r}")
    if cache is not None and not isinstance(cache, bool):
        raise DataError(f"cache must be None, True or False. Received: cache={cache!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise DataError(f"seed must be an int. Received: seed={seed!r}")


def _check_classes(name, source, num_classes):
    """The source's number of classes; num_classes, when given, must agree (synthetic makes
    as many as asked)."""
    classes = len(source.class_names)
    if num_classes is not None and name != "synthetic" and num_classes != classes:
        raise DataError(
            f"Dataset {name!r} has {classes} classes, but num_classes={num_classes} was asked for; "
            f"build the model with num_classes={classes} (or leave num_classes unset)."
        )
    return classes
