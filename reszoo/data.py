"""tf.data input pipelines: TFDS data sets, image folders, scikit-learn's digits, synthetic data.

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

import concurrent.futures
import dataclasses
import difflib
import logging
import math
import os
import socket
import threading
import warnings

import numpy as np
import tensorflow as tf

from reszoo.errors import DataError

__all__ = ["DataInfo", "load", "AUGMENT_BASES", "AUGMENT_EXTRAS"]

log = logging.getLogger(__name__)

AUGMENT_BASES = ("auto", "none", "cifar", "imagenet")
AUGMENT_EXTRAS = ("randaugment", "mixup", "cutmix", "erasing")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
SMALL_IMAGE_MAX = (
    64  # "auto" augmentation is "cifar" up to this many pixels a side, else "imagenet"
)
DEFAULT_LARGE_SIZE = (224, 224)
EVAL_CROP_FRACTION = 0.875  # ImageNet evaluation: resize shorter side to size / 0.875, center crop
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)
MIXUP_ALPHA = 0.2
ERASING_PROBABILITY = 0.25
SPLIT_SEED = 20161210  # fixed: the held-out validation set does not change with ``seed``
SHUFFLE_BUFFER_UNCACHED = 10_000  # decoded-image shuffle buffer when the data is not cached
_MAX_NAMED_BAD_FILES = 20
_NETWORK_HOST = ("storage.googleapis.com", 443)

_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)


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


def _holdout_count(validation_split, total):
    """Number of examples to hold out of ``total``."""
    if isinstance(validation_split, int):
        count = validation_split
    else:
        count = int(round(validation_split * total))
    if count >= total:
        raise DataError(
            f"validation_split={validation_split} holds out {count} of {total} examples and leaves "
            "none for training; use a smaller validation_split."
        )
    return count


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
# Sources: each returns a _Source of unbatched (image, label) elements


@dataclasses.dataclass
class _Split:
    dataset: tf.data.Dataset
    examples: int
    kind: str  # "decoded" (uint8 [h, w, c] tensors), "encoded" (image file bytes), "path" (file paths)
    raw_bytes: int | None  # memory the raw elements take (for the cache decision), if known


@dataclasses.dataclass
class _Source:
    train: _Split
    validation: _Split | None
    class_names: tuple[str, ...]
    image_size: tuple[int, int]  # default target size


def _split_indices_per_class(labels, validation_split, num_classes):
    """Deterministic per-class hold-out: sort (caller's order), then a fixed-seed permutation."""
    labels = np.asarray(labels)
    total = len(labels)
    count = _holdout_count(validation_split, total)
    fraction = count / total
    train_idx, val_idx = [], []
    for c in range(num_classes):
        idx = np.flatnonzero(labels == c)
        if len(idx) == 0:
            continue
        k = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        else:
            k = min(k, len(idx) - 1)
        rng = np.random.default_rng([SPLIT_SEED, c])
        perm = idx[rng.permutation(len(idx))]
        val_idx.append(np.sort(perm[:k]))
        train_idx.append(np.sort(perm[k:]))
    train_idx = np.sort(np.concatenate(train_idx)) if train_idx else np.zeros([0], np.int64)
    val_idx = np.sort(np.concatenate(val_idx)) if val_idx else np.zeros([0], np.int64)
    return train_idx, val_idx


def _cap_examples(indices, examples):
    """Keep ``examples`` of ``indices``: a fixed-seed subset, in the original order."""
    if examples is None or examples >= len(indices):
        return indices
    rng = np.random.default_rng(SPLIT_SEED)
    return np.sort(indices[rng.permutation(len(indices))[:examples]])


def _digits_source(image_size, validation_split, examples):
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - scikit-learn is a dependency
        raise DataError("dataset='digits' needs scikit-learn (pip install scikit-learn).") from e
    bunch = load_digits()
    size = image_size or (32, 32)
    images = bunch.images.astype(np.float32) * (255.0 / 16.0)  # (1797, 8, 8), 0..16 -> 0..255
    images = tf.image.resize(images[..., None], size, method="bilinear")
    images = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.uint8)
    images = tf.image.grayscale_to_rgb(images).numpy()
    labels = bunch.target.astype(np.int32)
    split = 0.2 if validation_split is None else validation_split
    train_idx, val_idx = _split_indices_per_class(labels, split, 10)
    train_idx = _cap_examples(train_idx, examples)

    def make(idx):
        return _Split(
            tf.data.Dataset.from_tensor_slices((images[idx], labels[idx])),
            len(idx),
            "decoded",
            int(images[idx].nbytes),
        )

    names = tuple(str(n) for n in bunch.target_names)
    return _Source(make(train_idx), make(val_idx) if len(val_idx) else None, names, size)


def _synthetic_source(image_size, validation_split, examples, num_classes, seed):
    size = image_size or (32, 32)
    num_classes = 10 if num_classes is None else num_classes
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 2
    ):
        raise DataError(f"num_classes must be an int >= 2. Received: num_classes={num_classes!r}")
    num_classes = int(num_classes)
    train_n = 1024 if examples is None else examples
    if validation_split is None:
        val_n = int(round(0.2 * train_n))
    elif isinstance(validation_split, int):
        val_n = validation_split
    else:
        val_n = int(round(validation_split * train_n))
    # Learnable: every class has its own mean colour; pixels are that colour plus noise.
    rng = np.random.default_rng(seed)
    means = tf.constant(rng.uniform(40.0, 215.0, size=(num_classes, 3)), tf.float32)
    h, w = size

    def generate(stream, n):
        def example(i):
            label = tf.cast(i % num_classes, tf.int32)
            noise = tf.random.stateless_normal(
                [h, w, 3], seed=tf.stack([tf.cast(seed, tf.int64) * 2 + stream, i])
            )
            image = means[label] + 40.0 * noise
            image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
            return image, label

        ds = tf.data.Dataset.range(n).map(example, num_parallel_calls=tf.data.AUTOTUNE)
        return _Split(ds, n, "decoded", n * h * w * 3)

    names = tuple(f"class_{i}" for i in range(num_classes))
    validation = generate(1, val_n) if val_n > 0 else None
    return _Source(generate(0, train_n), validation, names, size)


# ---- image folders


def _file_problem(path, size):
    """A short reason why ``path`` is not a usable image, "check" when only a decode can tell,
    or None when it looks fine. Reads at most 64 bytes."""
    if size == 0:
        return "empty file"
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            if size > 48:
                f.seek(-16, os.SEEK_END)
                tail = f.read(16)
            else:
                tail = head
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    fmt = next((name for magic, name in _MAGIC if head.startswith(magic)), None)
    if fmt is None:
        return "not a JPEG, PNG, GIF or BMP image"
    if fmt == "jpeg" and b"\xff\xd9" not in tail:
        return "check"  # no end-of-image marker: truncated, or trailing bytes after it
    if fmt == "png" and b"IEND" not in tail:
        return "check"
    if fmt == "gif" and not tail.rstrip(b"\0").endswith(b";"):
        return "check"
    if fmt == "bmp" and len(head) >= 6 and int.from_bytes(head[2:6], "little") > size:
        return "truncated BMP"
    return None


def _decode_problem(path):
    """Decode one file eagerly; the error text when it cannot be decoded."""
    try:
        tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, tf.errors.DataLossError) as e:
        return "cannot be decoded: " + (e.message or str(e)).strip().splitlines()[-1][:120]
    return None


def _list_class_folder(root):
    """Class names (sorted sub-folder names) of an image folder."""
    try:
        entries = sorted(
            e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")
        )
    except OSError as e:
        raise DataError(f"Cannot read image folder {root}: {e}") from e
    return entries


def _scan_folder(root, class_names, bad):
    """Good image files, their labels and sizes under ``root/<class>/`` (recursively), sorted.

    Files that cannot be images are appended to ``bad`` as (path, reason)."""
    listed = []  # (path, label)
    for label, name in enumerate(class_names):
        class_dir = os.path.join(root, name)
        if not os.path.isdir(class_dir):
            continue
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            listed.extend(
                (os.path.join(dirpath, f), label)
                for f in sorted(filenames)
                if not f.startswith(".")
            )

    def check(chunk):
        out = []
        for path, _ in chunk:
            try:
                size = os.stat(path).st_size
            except OSError as e:
                out.append((0, f"unreadable: {e.strerror or e}"))
                continue
            out.append((size, _file_problem(path, size)))
        return out

    chunks = [listed[i : i + 2048] for i in range(0, len(listed), 2048)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, max(1, len(chunks)))) as pool:
        checked = [item for result in pool.map(check, chunks) for item in result]
    paths, labels, sizes = [], [], []
    for (path, label), (size, problem) in zip(listed, checked, strict=True):
        if problem == "check":
            problem = _decode_problem(path)
        if problem:
            bad.append((path, problem))
            continue
        paths.append(path)
        labels.append(label)
        sizes.append(size)
    return paths, np.asarray(labels, np.int32), np.asarray(sizes, np.int64)


def _warn_bad_files(root, bad):
    """One warning that counts the skipped files and names them (the first 20; all at DEBUG)."""
    if not bad:
        return
    names = [(os.path.relpath(p, root), why) for p, why in bad]
    shown = "; ".join(f"{p} ({why})" for p, why in names[:_MAX_NAMED_BAD_FILES])
    more = (
        f"; and {len(bad) - _MAX_NAMED_BAD_FILES} more" if len(bad) > _MAX_NAMED_BAD_FILES else ""
    )
    warnings.warn(
        f"reszoo.data: skipped {len(bad)} file(s) under {root} that are not usable images: "
        f"{shown}{more}",
        UserWarning,
        stacklevel=4,
    )
    log.debug("skipped files under %s: %s", root, names)


def _validation_sibling(root):
    """For .../train, the sibling .../val or .../validation when it exists."""
    if os.path.basename(os.path.normpath(root)).lower() not in ("train", "training"):
        return None
    parent = os.path.dirname(os.path.normpath(root))
    for name in ("val", "validation", "valid"):
        candidate = os.path.join(parent, name)
        if os.path.isdir(candidate):
            return candidate
    return None


def _peek_image_size(paths):
    """Default target size of a folder: the images' own size when they are all the same and
    small (CIFAR-style), else 224x224."""
    shapes = set()
    for path in paths[:: max(1, len(paths) // 16)][:16]:
        contents = tf.io.read_file(path)
        try:
            if bool(tf.io.is_jpeg(contents)):
                shape = tf.io.extract_jpeg_shape(contents).numpy()
            else:
                shape = tf.shape(
                    tf.io.decode_image(contents, channels=3, expand_animations=False)
                ).numpy()
        except tf.errors.OpError:
            continue
        shapes.add((int(shape[0]), int(shape[1])))
    if len(shapes) == 1:
        (shape,) = shapes
        if max(shape) <= SMALL_IMAGE_MAX:
            return shape
    return DEFAULT_LARGE_SIZE


def _folder_source(root, image_size, validation_split, examples):
    root = os.path.abspath(os.path.expanduser(root))
    class_names = _list_class_folder(root)
    # A root that holds train/ and val/ (an extracted imagenette, say) means those two.
    lowered = {c.lower(): c for c in class_names}
    if "train" in lowered and any(v in lowered for v in ("val", "validation", "valid")):
        root = os.path.join(root, lowered["train"])
        class_names = _list_class_folder(root)
    val_root = _validation_sibling(root) if validation_split is None else None
    if len(class_names) < 2:
        raise DataError(
            f"Image folder {root} has {len(class_names)} class sub-folder(s); it needs one "
            "sub-folder per class (at least 2), each holding that class's images: "
            f"{root}/<class_name>/<image>.jpg"
        )
    bad = []
    paths, labels, sizes = _scan_folder(root, class_names, bad)
    report_root = root if val_root is None else os.path.dirname(root)
    if not len(paths):
        _warn_bad_files(report_root, bad)
        raise DataError(
            f"Image folder {root} has no readable JPEG/PNG/GIF/BMP images in its class sub-folders "
            f"({', '.join(class_names[:5])}{', ...' if len(class_names) > 5 else ''})."
        )
    empty = [c for i, c in enumerate(class_names) if not np.any(labels == i)]
    if empty:
        warnings.warn(
            f"reszoo.data: class folder(s) with no images under {root}: {', '.join(empty[:10])}",
            UserWarning,
            stacklevel=3,
        )
    paths = np.asarray(paths, dtype=str)

    if val_root is not None:
        val_classes = _list_class_folder(val_root)
        extra = sorted(set(val_classes) - set(class_names))
        if not val_classes or extra:
            problem = f"unknown classes: {', '.join(extra[:10])}" if extra else "it has none"
            raise DataError(
                f"Validation folder {val_root} must have one sub-folder per class, named as in "
                f"{root}; {problem}. Pass validation_split=0.1 to hold out part of the training "
                "folder instead."
            )
        val_paths, val_labels, val_sizes = _scan_folder(val_root, class_names, bad)
        val_paths = np.asarray(val_paths, dtype=str)
        train_idx = np.arange(len(paths))
    else:
        split = 0.1 if validation_split is None else validation_split
        train_idx, val_idx = _split_indices_per_class(labels, split, len(class_names))
        val_paths, val_labels, val_sizes = paths[val_idx], labels[val_idx], sizes[val_idx]
    _warn_bad_files(report_root, bad)
    train_idx = _cap_examples(train_idx, examples)

    def make(file_paths, file_labels, nbytes):
        ds = tf.data.Dataset.from_tensor_slices((file_paths, file_labels))
        return _Split(ds, len(file_paths), "path", int(np.sum(nbytes)))

    size = image_size or _peek_image_size(list(paths[train_idx]))
    validation = make(val_paths, val_labels, val_sizes) if len(val_paths) else None
    train = make(paths[train_idx], labels[train_idx], sizes[train_idx])
    return _Source(train, validation, tuple(class_names), size)


# ---- TensorFlow Datasets


def _network_available(timeout=2.0):
    """Whether TFDS's download host answers within ``timeout`` seconds (DNS included)."""
    result = []

    def probe():
        try:
            socket.create_connection(_NETWORK_HOST, timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    return bool(result and result[0])


def _tfds_source(name, data_dir, image_size, validation_split, examples, resolve_base, seed):
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(
            f"dataset={name!r} is not 'digits', 'synthetic' or an existing folder, and reading it "
            "from TensorFlow Datasets needs tensorflow-datasets (pip install tensorflow-datasets)."
        ) from e
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as e:
        close = difflib.get_close_matches(
            name.lower(), list(tfds.list_builders(with_community_datasets=False)), n=3
        )
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(
            f"Unknown dataset {name!r}: it is not 'digits', 'synthetic', an existing image folder, "
            f"nor a TensorFlow Datasets name.{hint}"
        ) from e

    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise DataError(f"TFDS dataset {name!r} has no (image, label) supervised keys.")
    image_key, label_key = keys
    image_feature = info.features[image_key]
    label_feature = info.features[label_key]
    if not isinstance(image_feature, tfds.features.Image) or not isinstance(
        label_feature, tfds.features.ClassLabel
    ):
        raise DataError(
            f"TFDS dataset {name!r} is not an image classification data set "
            f"({image_key}: {type(image_feature).__name__}, {label_key}: {type(label_feature).__name__})."
        )
    class_names = tuple(label_feature.names)
    shape = image_feature.shape
    fixed = shape[0] is not None and shape[1] is not None
    if image_size is None:
        small = fixed and max(shape[0], shape[1]) <= SMALL_IMAGE_MAX
        image_size = (int(shape[0]), int(shape[1])) if small else DEFAULT_LARGE_SIZE
    # Large images stay encoded so that the random crop is fused with JPEG decoding.
    kind = "encoded" if resolve_base(image_size) == "imagenet" else "decoded"

    def as_dataset(split, training):
        decoders = {image_key: tfds.decode.SkipDecoding()} if kind == "encoded" else None
        return builder.as_dataset(
            split=split,
            as_supervised=True,
            shuffle_files=training,
            decoders=decoders,
            read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False),
        )

    if not builder.is_prepared():
        # Under tfds.testing.mock_data an unprepared builder still yields (fake) data.
        try:
            as_dataset("train", False)
        except Exception:  # noqa: BLE001 - tfds raises AssertionError when no data is there
            _prepare_tfds(builder, name)
    split_infos = dict(builder.info.splits) if builder.is_prepared() else {}
    if split_infos and "train" not in split_infos:
        raise DataError(
            f"TFDS dataset {name!r} has no 'train' split (it has {sorted(split_infos)})."
        )

    def num_examples(split):
        if split in split_infos:
            return int(split_infos[split].num_examples)
        ds = as_dataset(split, False)  # only under mock data: count
        n = int(ds.cardinality())
        return n if n >= 0 else int(ds.reduce(0, lambda c, _: c + 1))

    full_train = num_examples("train")
    train_split, train_n = "train", full_train
    val_split, val_n = None, 0
    if validation_split is None:
        candidates = [s for s in ("validation", "test") if not split_infos or s in split_infos]
        if candidates:
            val_split = candidates[0]
            val_n = num_examples(val_split)
    elif validation_split:
        val_n = _holdout_count(validation_split, full_train)
        train_n = full_train - val_n
        train_split, val_split = f"train[:{train_n}]", f"train[{train_n}:]"
    if examples is not None and examples < train_n:
        train_split, train_n = f"train[:{examples}]", examples

    if kind == "decoded" and fixed:
        raw_bytes = train_n * shape[0] * shape[1] * 3
    elif "train" in split_infos and split_infos["train"].num_bytes:
        raw_bytes = int(split_infos["train"].num_bytes * train_n / max(1, full_train))
    else:
        raw_bytes = None
    train = _Split(as_dataset(train_split, True), train_n, kind, raw_bytes)
    validation = None
    if val_split is not None and val_n > 0:
        validation = _Split(as_dataset(val_split, False), val_n, kind, None)
    return _Source(train, validation, class_names, image_size)


def _prepare_tfds(builder, name):
    data_dir = builder.data_dir_root if hasattr(builder, "data_dir_root") else builder.data_dir
    manual = getattr(builder, "MANUAL_DOWNLOAD_INSTRUCTIONS", None)
    how = (
        f"Prepare it on a machine with network access (`tfds build {name} --data_dir DIR`), copy DIR "
        "here and pass data_dir=DIR (or set TFDS_DATA_DIR=DIR); or point reszoo at an image folder "
        "(one sub-folder per class)."
    )
    if manual:
        raise DataError(
            f"TFDS dataset {name!r} is not prepared in {data_dir} and needs a manual download: put "
            f"its files in {os.path.join(str(data_dir), 'downloads', 'manual')} and run "
            f"`tfds build {name} --data_dir {data_dir}`; or point reszoo at an image folder."
        )
    if not _network_available():
        raise DataError(
            f"TFDS dataset {name!r} is not prepared in {data_dir}, and downloading it needs network "
            f"access, which this machine does not have. {how}"
        )
    log.warning("reszoo.data: downloading and preparing TFDS dataset %r in %s", name, data_dir)
    try:
        builder.download_and_prepare()
    except Exception as e:  # noqa: BLE001 - any failure here is "cannot get the data"
        raise DataError(
            f"Downloading TFDS dataset {name!r} into {data_dir} failed: {e}. {how}"
        ) from e


# --------------------------------------------------------------------------------------------
# Image ops (graph mode, inside tf.data maps)


def _to_rgb(image):
    """Decoded [h, w, c] -> [h, w, 3]: gray (+alpha) is repeated, alpha is dropped."""
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels in (1, 2):
        return tf.tile(image[..., :1], [1, 1, 3])
    if channels == 4:
        return image[..., :3]
    image = tf.cond(
        tf.shape(image)[-1] < 3,
        lambda: tf.tile(image[..., :1], [1, 1, 3]),
        lambda: image[..., :3],
    )
    image.set_shape([None, None, 3])
    return image


def _decode(contents):
    image = tf.io.decode_image(contents, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return image


def _windowed(source, kind, window_fn):
    """Decode (when encoded) only the window ``window_fn(height_width) -> [y, x, h, w]``."""
    if kind == "decoded":
        image = _to_rgb(source)
        win = window_fn(tf.shape(image)[:2])
        return tf.slice(image, tf.stack([win[0], win[1], 0]), tf.stack([win[2], win[3], 3]))

    def jpeg():
        win = window_fn(tf.io.extract_jpeg_shape(source)[:2])
        return tf.io.decode_and_crop_jpeg(source, win, channels=3)

    def other():
        image = _decode(source)
        win = window_fn(tf.shape(image)[:2])
        return tf.slice(image, tf.stack([win[0], win[1], 0]), tf.stack([win[2], win[3], 3]))

    image = tf.cond(tf.io.is_jpeg(source), jpeg, other)
    image.set_shape([None, None, 3])
    return image


def _center_window(size, fraction):
    """Centered window that, resized to ``size``, equals "resize so that size/fraction fits,
    then center crop ``size``" (fraction 1: fit and crop the overflow)."""
    th, tw = float(size[0]) / fraction, float(size[1]) / fraction

    def window(hw):
        h, w = tf.cast(hw[0], tf.float32), tf.cast(hw[1], tf.float32)
        scale = tf.maximum(th / h, tw / w)
        ch = tf.minimum(hw[0], tf.maximum(1, tf.cast(tf.round(size[0] / scale), tf.int32)))
        cw = tf.minimum(hw[1], tf.maximum(1, tf.cast(tf.round(size[1] / scale), tf.int32)))
        return tf.stack([(hw[0] - ch) // 2, (hw[1] - cw) // 2, ch, cw])

    return window


def _random_resized_window(hw):
    begin, crop, _ = tf.image.sample_distorted_bounding_box(
        tf.concat([hw, [3]], 0),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        min_object_covered=0.0,
        aspect_ratio_range=RRC_RATIO,
        area_range=RRC_SCALE,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], crop[0], crop[1]])


def _resize(image, size):
    """uint8/float [h, w, 3] -> float32 [H, W, 3] in 0..255 (identity when already that size)."""
    h, w = size
    if image.shape[0] == h and image.shape[1] == w:
        return tf.cast(image, tf.float32)

    def do_resize():
        resized = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.clip_by_value(resized, 0.0, 255.0)

    shape = tf.shape(image)
    out = tf.cond(
        tf.logical_and(tf.equal(shape[0], h), tf.equal(shape[1], w)),
        lambda: tf.cast(image, tf.float32),
        do_resize,
    )
    out.set_shape([h, w, 3])
    return out


def _to_uint8(image):
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def _cifar_batch_augment(images, pad):
    """Per-image random crop of a ``pad``-reflect-padded image and random horizontal flip,
    vectorized over the batch (gathers, no per-image ops)."""
    shape = tf.shape(images)
    b = shape[0]
    h, w = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    oy = tf.random.uniform([b], 0, 2 * pad + 1, dtype=tf.int32)
    ox = tf.random.uniform([b], 0, 2 * pad + 1, dtype=tf.int32)
    rows = oy[:, None] + tf.range(h)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    cols = ox[:, None] + tf.range(w)[None, :]
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    flip = tf.random.uniform([b]) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(out, axis=[2]), out)


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
    window = _center_window(size, fraction)

    def fn(x, y):
        return _to_uint8(_resize(_windowed(x, kind, window), size)), y

    return fn


def _build_train(
    split, aug, size, batch_size, cache, seed, drop_remainder, num_classes, keras_layers
):
    opts = tf.data.Options()
    opts.deterministic = False
    n = split.examples
    kind = "encoded" if split.kind == "path" else split.kind
    can_fail = split.kind != "decoded"

    if aug.base in ("cifar", "none"):
        cached = _should_cache(cache, n * size[0] * size[1] * 3)
        ds = split.dataset
        if not cached:
            ds = (
                ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
                if split.kind == "path"
                else ds
            )
        ds = _read(dataclasses.replace(split, dataset=ds), True)
        ds = ds.map(
            _fixed_size(kind, size, 1.0), num_parallel_calls=tf.data.AUTOTUNE, deterministic=False
        )
        if can_fail:
            ds = ds.ignore_errors(log_warning=True)
        if cached:
            ds = ds.cache().shuffle(n, seed=seed, reshuffle_each_iteration=True)
        elif split.kind != "path":
            ds = ds.shuffle(
                min(n, SHUFFLE_BUFFER_UNCACHED), seed=seed, reshuffle_each_iteration=True
            )
    else:  # imagenet: random-resized crop (fused with JPEG decoding) + flip, per image
        cached = _should_cache(cache, split.raw_bytes)
        ds = split.dataset
        if split.kind == "path" and not cached:
            ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        ds = _read(dataclasses.replace(split, dataset=ds), True)
        if cached:
            ds = ds.cache().shuffle(n, seed=seed, reshuffle_each_iteration=True)
        elif split.kind != "path":
            ds = ds.shuffle(
                min(n, SHUFFLE_BUFFER_UNCACHED), seed=seed, reshuffle_each_iteration=True
            )

        def rrc(x, y):
            image = _windowed(x, kind, _random_resized_window)
            image = tf.image.random_flip_left_right(image)
            return _to_uint8(_resize(image, size)), y

        ds = ds.map(rrc, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
        if can_fail:
            ds = ds.ignore_errors(log_warning=True)

    if "randaugment" in aug.extras:
        randaugment = keras_layers["randaugment"]
        ds = ds.map(
            lambda x, y: (_to_uint8(randaugment(tf.cast(x, tf.float32))), y),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False,
        )
    ds = ds.batch(
        batch_size,
        drop_remainder=drop_remainder,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=False,
    )

    pad = max(1, min(size) // 8)
    erasing = keras_layers.get("erasing")
    mixers = [keras_layers[k] for k in ("mixup", "cutmix") if k in keras_layers]

    def batch_fn(x, y):
        x = tf.cast(x, tf.float32)
        if aug.base == "cifar":
            x = _cifar_batch_augment(x, pad)
        if erasing is not None:
            x = erasing(x)
        if mixers:
            data = {"images": x, "labels": tf.one_hot(y, num_classes, dtype=tf.float32)}
            if len(mixers) == 1:
                out = mixers[0](data)
            else:  # MixUp or CutMix, chosen per batch
                out = tf.cond(
                    tf.random.uniform([]) < 0.5, lambda: mixers[0](data), lambda: mixers[1](data)
                )
            x, y = out["images"], tf.cast(out["labels"], tf.float32)
        return x, y

    ds = ds.map(batch_fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=False)
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


def _make_keras_layers(extras):
    import keras

    common = {"data_format": "channels_last", "dtype": "float32"}  # never mixed precision here
    layers = {}
    if "randaugment" in extras:
        layers["randaugment"] = keras.layers.RandAugment(value_range=(0, 255), **common)
    if "erasing" in extras:
        layers["erasing"] = keras.layers.RandomErasing(
            factor=(ERASING_PROBABILITY, ERASING_PROBABILITY), value_range=(0, 255), **common
        )
    if "mixup" in extras:
        layers["mixup"] = keras.layers.MixUp(alpha=MIXUP_ALPHA, **common)
    if "cutmix" in extras:
        layers["cutmix"] = keras.layers.CutMix(**common)
    return layers


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

    Returns:
        (train, validation, info): see the module docstring.

    Raises:
        DataError: unknown, unprepared or unreadable data, or an invalid argument.
    """
    name = os.fspath(dataset) if isinstance(dataset, os.PathLike) else dataset
    if not isinstance(name, str) or not name.strip():
        raise DataError(
            f"dataset must be a non-empty string or path. Received: dataset={dataset!r}"
        )
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise DataError(
            f"batch_size must be a positive int (the global batch). Received: batch_size={batch_size!r}"
        )
    batch_size = int(batch_size)
    size = _check_image_size(image_size)
    validation_split = _check_validation_split(validation_split)
    if examples is not None and (
        isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 1
    ):
        raise DataError(f"examples must be None or a positive int. Received: examples={examples!r}")
    if cache is not None and not isinstance(cache, bool):
        raise DataError(f"cache must be None, True or False. Received: cache={cache!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise DataError(f"seed must be an int. Received: seed={seed!r}")
    base, extras = _parse_augment(augment)

    def resolve_base(target):
        if base != "auto":
            return base
        return "cifar" if max(target) <= SMALL_IMAGE_MAX else "imagenet"

    if name == "digits":
        source = _digits_source(size, validation_split, examples)
    elif name == "synthetic":
        source = _synthetic_source(size, validation_split, examples, num_classes, seed)
    elif os.path.isdir(os.path.expanduser(name)):
        source = _folder_source(name, size, validation_split, examples)
    elif "/" in name or os.sep in name or name.startswith(("~", ".")):
        raise DataError(
            f"dataset={name!r} looks like a path, but there is no such folder. Pass an existing "
            "image folder (one sub-folder per class), 'digits', 'synthetic' or a TFDS name."
        )
    else:
        source = _tfds_source(name, data_dir, size, validation_split, examples, resolve_base, seed)

    classes = len(source.class_names)
    if num_classes is not None and name != "synthetic" and num_classes != classes:
        raise DataError(
            f"Dataset {name!r} has {classes} classes, but num_classes={num_classes} was asked for; "
            f"build the model with num_classes={classes} (or leave num_classes unset)."
        )
    size = source.image_size if size is None else size
    aug = _Augment(resolve_base(size), extras)
    train_n = source.train.examples
    if drop_remainder and train_n < batch_size:
        raise DataError(
            f"batch_size={batch_size} is larger than the {train_n} training examples of {name!r}, "
            "so an epoch would have no batch; use a smaller batch_size or drop_remainder=False."
        )
    keras_layers = _make_keras_layers(extras)
    train = _build_train(
        source.train, aug, size, batch_size, cache, seed, drop_remainder, classes, keras_layers
    )
    validation = None
    if source.validation is not None and source.validation.examples > 0:
        validation = _build_eval(source.validation, aug, size, batch_size, cache)
    info = DataInfo(
        name=name,
        num_classes=classes,
        class_names=tuple(source.class_names),
        image_shape=(int(size[0]), int(size[1]), 3),
        train_examples=int(train_n),
        validation_examples=int(source.validation.examples) if validation is not None else 0,
    )
    return train, validation, info
