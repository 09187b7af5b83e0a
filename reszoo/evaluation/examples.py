"""The labelled images of one split of a dataset, as `reszoo train` names datasets.

DATASET_KINDS is the table: each kind says whether a DATASET argument is one of it and which
splits it has. A split gives decoded uint8 RGB images one at a time with their labels, in a
fixed order, for the classifier's own transform to prepare:

  digits, synthetic  reszoo.data's images (generated at the model's size), splits train and
                     validation (reszoo.data's held-out part); the train split comes shuffled
  a folder           one sub-folder per class; its train/, val/ (validation/, valid/) and test/
                     sub-folders or siblings are the splits; any other folder is one split
  a TFDS name        the data set's own splits (tensorflow_datasets), checked by reszoo.data

For a run directory evaluated on the data it was trained on, `run_held_out` gives the split the
run itself validated on: reszoo.data's validation pipeline with the run's recorded options
(held-out fraction, seed, image size, augmentation base), images already prepared as in training.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator

import numpy as np

from reszoo.errors import DataError
from reszoo.evaluation import images as image_files

SPLITS = ("train", "validation", "test")
_SPLIT_FOLDERS = {
    "train": ("train", "training"),
    "validation": ("val", "validation", "valid"),
    "test": ("test",),
}


@dataclasses.dataclass
class Examples:
    """One split: `items()` yields (image uint8 [h, w, 3], label, path or None) and lists the
    files it could not decode in `skipped` as (path, reason)."""

    dataset: str
    split: str
    description: str
    class_names: tuple
    items: Callable[[], Iterator]
    prepared: bool = False  # the images are already the model's input (the run's pipeline)
    skipped: list = dataclasses.field(default_factory=list)


# ---------------------------------------------------------------------------- digits, synthetic
# Each kind's `splits(dataset, size, data_dir)` returns split -> a function giving (description,
# class names, items(skipped) -> iterator of (image, label, path)): only the split used is read.


def _pipeline_items(pipeline) -> Iterator:
    for batch, labels in pipeline.as_numpy_iterator():
        for image, label in zip(batch, labels):
            yield image.astype(np.uint8), int(label), None  # whole numbers 0..255 already


def _generated_splits(name: str, size: tuple, data_dir) -> dict:
    from reszoo import data

    size = None if None in size else size
    train, validation, info = data.load(
        name, batch_size=64, image_size=size, augment="none", cache=False, drop_remainder=False
    )
    found = {
        "train": (train, info.train_examples),
        "validation": (validation, info.validation_examples),
    }
    return {
        split: lambda split=split, pipeline=pipeline, count=count: (
            f"reszoo.data's {split} split of {name} ({count} images)",
            info.class_names,
            lambda skipped: _pipeline_items(pipeline),
        )
        for split, (pipeline, count) in found.items()
        if pipeline is not None
    }


# ---------------------------------------------------------------------------- folders


def _child(root: str, names) -> str | None:
    try:
        lowered = {e.name.lower(): e.path for e in os.scandir(root) if e.is_dir()}
    except OSError:
        return None
    return next((lowered[n] for n in names if n in lowered), None)


def _splits_in(base: str) -> dict:
    found = {split: _child(base, names) for split, names in _SPLIT_FOLDERS.items()}
    return {split: path for split, path in found.items() if path}


def _folder_layout(root: str) -> dict:
    """split -> folder: root's train/ val/ test/ sub-folders, or its siblings when root is a
    train/ folder; else root alone, as the split "folder"."""
    root = os.path.normpath(root)
    inside = _splits_in(root)
    if len(inside) >= 2:
        return inside
    if os.path.basename(root).lower() in _SPLIT_FOLDERS["train"]:
        beside = _splits_in(os.path.dirname(root) or ".")
        if len(beside) >= 2:
            return {**beside, "train": root}
    return {"folder": root}


def _folder_items(paths, labels, skipped) -> Iterator:
    for (path, image, problem), label in zip(image_files.decoded_in_order(paths), labels):
        if problem:
            skipped.append((path, problem))
        else:
            yield image, int(label), path


def _folder_split(folder: str) -> tuple:
    names, paths, labels = image_files.class_folder(folder)
    items = lambda skipped: _folder_items(paths, labels, skipped)  # noqa: E731
    return f"{folder} ({len(paths)} files)", names, items


def _folder_splits(root: str, size, data_dir) -> dict:
    layout = _folder_layout(root)
    return {split: lambda folder=folder: _folder_split(folder) for split, folder in layout.items()}


# ---------------------------------------------------------------------------- TFDS


def _tfds_items(builder, split) -> Iterator:
    dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    for image, label in dataset.as_numpy_iterator():
        if image.shape[-1] == 1:
            image = np.repeat(image, 3, axis=-1)
        yield image[..., :3], int(label), None


def _loads(builder, split) -> bool:
    try:
        builder.as_dataset(split=split)
    except Exception:  # noqa: BLE001 - tfds raises several kinds for a split it does not have
        return False
    return True


def _tfds_splits(name: str, size, data_dir) -> dict:
    import tensorflow_datasets as tfds

    from reszoo import data

    # reszoo.data's checks first: an unknown or unprepared data set is one line saying what to do
    _, _, info = data.load(
        name,
        batch_size=1,
        image_size=(32, 32),
        augment="none",
        data_dir=data_dir,
        cache=False,
        drop_remainder=False,
    )
    builder = tfds.builder(name, data_dir=data_dir or os.environ.get("TFDS_DATA_DIR") or None)
    if builder.is_prepared():
        splits = builder.info.splits
        counts = {s: f"{splits[s].num_examples} images" for s in SPLITS if s in splits}
    else:  # tfds.testing.mock_data: the splits it makes up
        counts = {s: "mock data" for s in SPLITS if _loads(builder, s)}
    return {
        split: lambda split=split, count=count: (
            f"TFDS {name}, split {split} ({count})",
            info.class_names,
            lambda skipped: _tfds_items(builder, split),
        )
        for split, count in counts.items()
    }


# ---------------------------------------------------------------------------- the table


def _is_folder(dataset: str) -> bool:
    return os.path.isdir(os.path.expanduser(dataset))


def _missing_path(dataset: str) -> bool:
    return os.sep in dataset or dataset.startswith((".", "~"))


def _refuse_missing(dataset: str, size, data_dir):
    if os.path.exists(dataset):
        raise DataError(
            f"{dataset} is a file; DATASET is a folder of class sub-folders, "
            "digits, synthetic or a TFDS name"
        )
    raise DataError(
        f"{dataset} does not exist; DATASET is a folder of class sub-folders, "
        "digits, synthetic or a TFDS name"
    )


# (kind, does DATASET name one, its splits): tried in order
DATASET_KINDS = (
    ("generated", lambda d: d in ("digits", "synthetic"), _generated_splits),
    (
        "folder",
        _is_folder,
        lambda d, size, data_dir: _folder_splits(os.path.expanduser(d), size, data_dir),
    ),
    ("missing path", _missing_path, _refuse_missing),
    ("tfds", lambda d: True, _tfds_splits),
)
DEFAULT_SPLITS = ("validation", "test", "folder", "train")


def examples(dataset: str, split: str | None, size: tuple, data_dir=None) -> Examples:
    """The images of `split` of `dataset` (default: validation, else test, else all there is);
    DataError naming the splits there are when it has no such split."""
    splits_of = next(splits for _, matches, splits in DATASET_KINDS if matches(dataset))
    splits = splits_of(dataset, size, data_dir)
    if not splits:
        raise DataError(f"{dataset} has none of the splits {', '.join(SPLITS)}")
    if split is None:
        split = next(s for s in DEFAULT_SPLITS if s in splits)
    elif split not in splits:
        there = ", ".join(sorted(splits))
        if there == "folder":
            there = "none: it is one folder of class sub-folders (pass it without --split)"
        raise DataError(f"{dataset} has no {split} split; its splits: {there}")
    description, names, items = splits[split]()
    found = Examples(dataset, split, description, tuple(names), items=lambda: iter(()))
    found.items = lambda: items(found.skipped)
    return found


def run_held_out(config: dict, dataset: str, size: tuple, batch_size: int, data_dir=None):
    """The data a run validated on, prepared as the run prepared it at the model's `size`, or
    None when it held out nothing. `dataset` and `data_dir` say where that data is now."""
    from reszoo import data

    base = str(config.get("augment") or "auto").split("+")[0] or "auto"
    _, validation, info = data.load(
        dataset,
        batch_size=batch_size,
        image_size=None if None in size else tuple(size),
        augment=base,
        data_dir=data_dir or config.get("data_dir"),
        validation_split=config.get("validation_split"),
        seed=config.get("seed") or 0,
        cache=False,
        num_classes=config.get("num_classes"),
        examples=config.get("examples"),
        drop_remainder=False,
    )
    if validation is None:
        return None
    description = f"the data the run held out for validation ({info.validation_examples} images)"
    return Examples(
        dataset,
        "validation",
        description,
        info.class_names,
        items=lambda: _pipeline_items(validation),
        prepared=True,
    )
