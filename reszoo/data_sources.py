"""Where examples come from: scikit-learn's digits, synthetic data, image folders, TFDS.

Each source returns a `_Source` of unbatched (image, label) splits plus the class names and a
default image size; reszoo.data turns them into pipelines. Image folders are scanned here
(size, magic bytes, end marker) so that bad files are named once, before training starts.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import difflib
import logging
import os
import socket
import threading
import warnings

import numpy as np
import tensorflow as tf

from reszoo import folder_walk
from reszoo.errors import DataError

log = logging.getLogger("reszoo.data")  # one logger name for the whole input pipeline

SMALL_IMAGE_MAX = (
    64  # "auto" augmentation is "cifar" up to this many pixels a side, else "imagenet"
)
DEFAULT_LARGE_SIZE = (224, 224)
SPLIT_SEED = 20161210  # fixed: the held-out validation set does not change with ``seed``
_MAX_NAMED_BAD_FILES = 20
_NETWORK_HOST = ("storage.googleapis.com", 443)

_MAGIC = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)


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


@dataclasses.dataclass(frozen=True)
class SourceRequest:
    """What reszoo.data.load asks a source for (arguments already checked)."""

    name: str
    image_size: tuple[int, int] | None  # None: the source's default size
    validation_split: float | int | None
    examples: int | None
    num_classes: int | None = None
    seed: int = 0
    data_dir: str | None = None
    augment_base: str = "auto"  # "auto", "none", "cifar" or "imagenet"
    follow_links: bool = False  # image folders: follow symbolic links inside the root


def augment_base(base, size):
    """The augmentation base for images of ``size``: "auto" is "cifar" up to SMALL_IMAGE_MAX
    pixels a side, else "imagenet"."""
    if base != "auto":
        return base
    return "cifar" if max(size) <= SMALL_IMAGE_MAX else "imagenet"


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


def digits_source(req):
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - scikit-learn is a dependency
        raise DataError("dataset='digits' needs scikit-learn (pip install scikit-learn).") from e
    bunch = load_digits()
    size = req.image_size or (32, 32)
    images = bunch.images.astype(np.float32) * (255.0 / 16.0)  # (1797, 8, 8), 0..16 -> 0..255
    images = tf.image.resize(images[..., None], size, method="bilinear")
    images = tf.cast(tf.round(tf.clip_by_value(images, 0.0, 255.0)), tf.uint8)
    images = tf.image.grayscale_to_rgb(images).numpy()
    labels = bunch.target.astype(np.int32)
    split = 0.2 if req.validation_split is None else req.validation_split
    train_idx, val_idx = _split_indices_per_class(labels, split, 10)
    train_idx = _cap_examples(train_idx, req.examples)

    def make(idx):
        return _Split(
            tf.data.Dataset.from_tensor_slices((images[idx], labels[idx])),
            len(idx),
            "decoded",
            int(images[idx].nbytes),
        )

    names = tuple(str(n) for n in bunch.target_names)
    return _Source(make(train_idx), make(val_idx) if len(val_idx) else None, names, size)


def _synthetic_counts(train_n, validation_split):
    if validation_split is None:
        return int(round(0.2 * train_n))
    if isinstance(validation_split, int):
        return validation_split
    return int(round(validation_split * train_n))


def synthetic_source(req):
    size = req.image_size or (32, 32)
    num_classes, seed = req.num_classes, req.seed
    num_classes = 10 if num_classes is None else num_classes
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, (int, np.integer))
        or num_classes < 2
    ):
        raise DataError(f"num_classes must be an int >= 2. Received: num_classes={num_classes!r}")
    num_classes = int(num_classes)
    train_n = 1024 if req.examples is None else req.examples
    val_n = _synthetic_counts(train_n, req.validation_split)
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


def _scan_folder(root, class_names, bad, links):
    """Good image files, their labels and sizes under ``root/<class>/`` (recursively), sorted.

    Files that cannot be images are appended to ``bad`` as (path, reason); symbolic links are
    handled by ``links`` (reszoo/folder_walk.py)."""
    listed = folder_walk.list_files(root, class_names, links)

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


def _folder_root(root):
    """(root, class names); a root that holds train/ and val/ (an extracted imagenette, say)
    means its train/."""
    root = os.path.abspath(os.path.expanduser(root))
    class_names = _list_class_folder(root)
    lowered = {c.lower(): c for c in class_names}
    if "train" in lowered and any(v in lowered for v in ("val", "validation", "valid")):
        root = os.path.join(root, lowered["train"])
        class_names = _list_class_folder(root)
    if len(class_names) < 2:
        raise DataError(
            f"Image folder {root} has {len(class_names)} class sub-folder(s); it needs one "
            "sub-folder per class (at least 2), each holding that class's images: "
            f"{root}/<class_name>/<image>.jpg"
        )
    return root, class_names


def _scan_training_folder(root, class_names, bad, report_root, links):
    """The training folder's good files (paths as an array), labels and sizes; DataError when
    none is usable, a warning for classes without images."""
    paths, labels, sizes = _scan_folder(root, class_names, bad, links)
    if not len(paths):
        links.warn(report_root)
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
            stacklevel=4,
        )
    return np.asarray(paths, dtype=str), labels, sizes


def _scan_validation_folder(val_root, root, class_names, bad, links):
    """(paths, labels, sizes) of a sibling validation folder, named with the training classes."""
    val_classes = _list_class_folder(val_root)
    extra = sorted(set(val_classes) - set(class_names))
    if not val_classes or extra:
        problem = f"unknown classes: {', '.join(extra[:10])}" if extra else "it has none"
        raise DataError(
            f"Validation folder {val_root} must have one sub-folder per class, named as in "
            f"{root}; {problem}. Pass validation_split=0.1 to hold out part of the training "
            "folder instead."
        )
    paths, labels, sizes = _scan_folder(val_root, class_names, bad, links)
    return np.asarray(paths, dtype=str), labels, sizes


def _path_split(paths, labels, nbytes):
    ds = tf.data.Dataset.from_tensor_slices((paths, labels))
    return _Split(ds, len(paths), "path", int(np.sum(nbytes)))


def folder_source(req):
    root, class_names = _folder_root(req.name)
    image_size, validation_split, examples = req.image_size, req.validation_split, req.examples
    val_root = _validation_sibling(root) if validation_split is None else None
    report_root = root if val_root is None else os.path.dirname(root)
    bad = []
    links = folder_walk.Links(req.follow_links)
    paths, labels, sizes = _scan_training_folder(root, class_names, bad, report_root, links)
    if val_root is not None:
        val = _scan_validation_folder(val_root, root, class_names, bad, links)
        train_idx = np.arange(len(paths))
    else:
        split = 0.1 if validation_split is None else validation_split
        train_idx, val_idx = _split_indices_per_class(labels, split, len(class_names))
        val = paths[val_idx], labels[val_idx], sizes[val_idx]
    links.warn(report_root)
    _warn_bad_files(report_root, bad)
    train_idx = _cap_examples(train_idx, examples)
    size = image_size or _peek_image_size(list(paths[train_idx]))
    validation = _path_split(*val) if len(val[0]) else None
    train = _path_split(paths[train_idx], labels[train_idx], sizes[train_idx])
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


def _import_tfds(name):
    try:
        import tensorflow_datasets as tfds
    except ImportError as e:
        raise DataError(
            f"dataset={name!r} is not 'digits', 'synthetic' or an existing folder, and reading it "
            "from TensorFlow Datasets needs tensorflow-datasets (pip install tensorflow-datasets)."
        ) from e
    return tfds


def _tfds_builder(tfds, name, data_dir):
    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR") or None
    try:
        return tfds.builder(name, data_dir=data_dir)
    except (tfds.core.registered.DatasetNotFoundError, ValueError) as e:
        close = difflib.get_close_matches(
            name.lower(), list(tfds.list_builders(with_community_datasets=False)), n=3
        )
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise DataError(
            f"Unknown dataset {name!r}: it is not 'digits', 'synthetic', an existing image folder, "
            f"nor a TensorFlow Datasets name.{hint}"
        ) from e


def _tfds_features(tfds, builder, name):
    """(image key, image shape, class names) of an image classification data set."""
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
    return image_key, image_feature.shape, tuple(label_feature.names)


def _prepared_splits(builder, as_dataset, name):
    """The split infos of a prepared builder ({} under tfds.testing.mock_data); an unprepared
    one is prepared (or refused with what to do)."""
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
    return split_infos


def _tfds_split_names(req, split_infos, num_examples):
    """(train split, its size, validation split or None, its size, full train size)."""
    full_train = num_examples("train")
    train_split, train_n = "train", full_train
    val_split, val_n = None, 0
    if req.validation_split is None:
        candidates = [s for s in ("validation", "test") if not split_infos or s in split_infos]
        if candidates:
            val_split = candidates[0]
            val_n = num_examples(val_split)
    elif req.validation_split:
        val_n = _holdout_count(req.validation_split, full_train)
        train_n = full_train - val_n
        train_split, val_split = f"train[:{train_n}]", f"train[{train_n}:]"
    if req.examples is not None and req.examples < train_n:
        train_split, train_n = f"train[:{req.examples}]", req.examples
    return train_split, train_n, val_split, val_n, full_train


def _tfds_raw_bytes(kind, shape, split_infos, train_n, full_train):
    """Memory the training examples take as stored (for the cache decision), if known."""
    if kind == "decoded" and shape[0] is not None and shape[1] is not None:
        return train_n * shape[0] * shape[1] * 3
    if "train" in split_infos and split_infos["train"].num_bytes:
        return int(split_infos["train"].num_bytes * train_n / max(1, full_train))
    return None


def tfds_source(req):
    tfds = _import_tfds(req.name)
    builder = _tfds_builder(tfds, req.name, req.data_dir)
    image_key, shape, class_names = _tfds_features(tfds, builder, req.name)
    image_size = req.image_size
    if image_size is None:
        small = shape[0] is not None and shape[1] is not None
        small = small and max(shape[0], shape[1]) <= SMALL_IMAGE_MAX
        image_size = (int(shape[0]), int(shape[1])) if small else DEFAULT_LARGE_SIZE
    # Large images stay encoded so that the random crop is fused with JPEG decoding.
    kind = "encoded" if augment_base(req.augment_base, image_size) == "imagenet" else "decoded"

    def as_dataset(split, training):
        decoders = {image_key: tfds.decode.SkipDecoding()} if kind == "encoded" else None
        return builder.as_dataset(
            split=split,
            as_supervised=True,
            shuffle_files=training,
            decoders=decoders,
            read_config=tfds.ReadConfig(shuffle_seed=req.seed, try_autocache=False),
        )

    split_infos = _prepared_splits(builder, as_dataset, req.name)

    def num_examples(split):
        if split in split_infos:
            return int(split_infos[split].num_examples)
        ds = as_dataset(split, False)  # only under mock data: count
        n = int(ds.cardinality())
        return n if n >= 0 else int(ds.reduce(0, lambda c, _: c + 1))

    train_split, train_n, val_split, val_n, full = _tfds_split_names(req, split_infos, num_examples)
    raw_bytes = _tfds_raw_bytes(kind, shape, split_infos, train_n, full)
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


# ---- the table: which source serves a dataset name (the first that matches)


def _looks_like_path(name):
    return "/" in name or os.sep in name or name.startswith(("~", "."))


def _missing_folder(req):
    raise DataError(
        f"dataset={req.name!r} looks like a path, but there is no such folder. Pass an existing "
        "image folder (one sub-folder per class), 'digits', 'synthetic' or a TFDS name."
    )


SOURCES = (
    (lambda name: name == "digits", digits_source),
    (lambda name: name == "synthetic", synthetic_source),
    (lambda name: os.path.isdir(os.path.expanduser(name)), folder_source),
    (_looks_like_path, _missing_folder),
    (lambda name: True, tfds_source),  # anything else is a TensorFlow Datasets name
)


def source_for(name):
    """The source function (taking a SourceRequest) that serves dataset ``name``."""
    return next(source for matches, source in SOURCES if matches(name))
