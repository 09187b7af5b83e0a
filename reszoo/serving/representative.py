"""Representative images: the inputs a full-integer quantizer calibrates its ranges on.

A quantized model is only as good as the activation ranges it was calibrated with, so the
images should come from the data the model will see: a run's own training data, a folder of
images, a dataset name, or an array. Every source becomes one float32 array of RGB pixels
0..255 at the model's input size, the same input the exported model takes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from reszoo.errors import ExportError

DEFAULT_COUNT = 200
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def representative_images(
    source, size: tuple[int, int] | None, count: int = DEFAULT_COUNT
) -> np.ndarray:
    """float32 [N <= count, height, width, 3] pixels 0..255 from `source`.

    source: an array [N, h, w, 3] (or a list of [h, w, 3] images) of pixels 0..255; a
        tf.data.Dataset of image batches or (images, labels) batches; a reszoo.fit run
        directory (its training data, as config.json describes it); a folder of image files
        (searched recursively); or a dataset name for reszoo.data.load ("digits", "cifar10").
    size: (height, width) every image is resized to (bilinear, as the SavedModel's signatures do).
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ExportError(f"representative_count must be a positive integer; got {count!r}")
    if isinstance(source, tf.data.Dataset):
        images = _from_dataset(source, count)
    elif isinstance(source, (str, os.PathLike)):
        images = _from_path(source, size, count)
    else:
        images = _as_image_array(source)
    images = _resized(images[:count], size)
    if len(images) == 0:
        raise ExportError(f"the representative data {_describe(source)} holds no images")
    return images


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.fspath(source))
    return f"(a {type(source).__name__})"


def _as_image_array(source) -> np.ndarray:
    try:
        images = np.asarray(source, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ExportError(
            "representative_data must be images [N, height, width, 3], a tf.data.Dataset, a run "
            f"directory, an image folder or a dataset name; got {type(source).__name__}"
        ) from e
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ExportError(
            f"representative images must have shape [N, height, width, 3]; got {images.shape}"
        )
    if not np.all(np.isfinite(images)):
        raise ExportError("representative images hold NaN or infinite values")
    return images


def _from_dataset(dataset: tf.data.Dataset, count: int) -> np.ndarray:
    """Images from batches of images or of (images, labels), until `count` are collected."""
    batches, total = [], 0
    for element in dataset:
        batch = element[0] if isinstance(element, (tuple, list)) else element
        batches.append(_as_image_array(np.asarray(batch)))
        total += len(batches[-1])
        if total >= count:
            break
    if not batches:
        return np.zeros((0, 1, 1, 3), np.float32)
    return np.concatenate(batches)


def _from_path(source, size: tuple[int, int], count: int) -> np.ndarray:
    path = Path(source).expanduser()
    if (path / "config.json").is_file():
        return _from_run(path, size, count)
    if path.is_dir():
        return _from_folder(path, size, count)
    if path.exists() or os.sep in str(source) or str(source).startswith("."):
        raise ExportError(
            f"representative data {str(source)!r} is not a folder of images or a run directory"
        )
    return _from_dataset_name(str(source), size, count)


def _from_run(run_dir: Path, size: tuple[int, int], count: int) -> np.ndarray:
    """The training split of the run's dataset, unaugmented, as config.json describes it."""
    try:
        config = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ExportError(f"cannot read {run_dir / 'config.json'}: {e}") from e
    dataset = config.get("dataset")
    if not isinstance(dataset, str):
        raise ExportError(
            f"run {run_dir} was trained on a tf.data.Dataset, not a named dataset, so its "
            "training images cannot be found again; pass representative_data explicitly"
        )
    keys = ("data_dir", "validation_split", "seed", "examples")
    return _from_dataset_name(
        dataset, size, count, **{k: config[k] for k in keys if config.get(k) is not None}
    )


def _from_dataset_name(name: str, size: tuple[int, int], count: int, **load_options) -> np.ndarray:
    from reszoo import data

    train, _, _ = data.load(
        name,
        batch_size=min(count, 256),
        image_size=size,
        augment="none",
        drop_remainder=False,
        **load_options,
    )
    return _from_dataset(train, count)


def _from_folder(folder: Path, size: tuple[int, int], count: int) -> np.ndarray:
    """`count` image files spread over the sorted listing (class folders are all sampled)."""
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) > count:
        picks = np.random.default_rng(0).choice(len(files), size=count, replace=False)
        files = [files[i] for i in sorted(picks)]
    images = []
    for path in files:
        try:
            image = tf.io.decode_image(
                tf.io.read_file(str(path)), channels=3, expand_animations=False
            )
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
            raise ExportError(f"cannot decode representative image {path}: {e.message}") from e
        images.append(_resized(np.asarray(image, np.float32)[None], size)[0])
    if not images:
        raise ExportError(
            f"the representative data folder {folder} holds no JPEG/PNG/BMP/GIF files"
        )
    return np.stack(images)


def _resized(images: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    """`images` at `size` (None: a model with a free height or width takes them as they are)."""
    if size is None or images.shape[1:3] == tuple(size) or len(images) == 0:
        return images.astype(np.float32)
    return tf.image.resize(images, size, method="bilinear").numpy().astype(np.float32)
