"""The classifier to evaluate or predict with: a run directory, an export, or a zoo name with
weights; its class names and the transform its inputs need (reszoo/evaluation/transforms.py).

Run directories and exports are read by reszoo.serving.sources (the same reader export uses);
this module adds what evaluation needs on top: which preprocessing each kind of source was
measured with, and one-line refusals for sources that cannot give a trained classifier.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np

from reszoo.errors import DataError, UnknownModelError, first_line
from reszoo.evaluation.transforms import Transform
from reszoo.serving import sources


@dataclasses.dataclass
class Classifier:
    """A model source (logits from pixels 0..255), what its classes are called and how its
    images are prepared. `class_names` is None when the weights record none (a weights file)."""

    source: sources.ModelSource
    kind: str  # "run directory", "export" or "zoo model"
    class_names: tuple | None
    transform: Transform
    num_classes: int
    other_names: tuple | None = None  # another spelling of the classes (ImageNet WordNet ids)
    run_config: dict | None = None  # a run directory's config.json

    def logits(self, images: np.ndarray) -> np.ndarray:
        return self.source.logits(images)

    def describe(self) -> str:
        return f"{self.source.name} ({self.kind}; weights: {self.source.weights})"


def load(source: str, weights: str | None = None) -> Classifier:
    """The classifier a SOURCE argument names; DataError (exit 2) when it cannot be one.
    What loading prints (Keras's download progress) goes to stderr: stdout carries results
    only (`reszoo predict --json` is one JSON object per line)."""
    with contextlib.redirect_stdout(sys.stderr):
        return _load(source, weights)


def _load(source: str, weights: str | None) -> Classifier:
    if os.path.isdir(source):
        if weights is not None:
            raise DataError(
                f"--weights goes with a zoo name; {source} is a directory with its own weights"
            )
        return _from_export(source) if sources.is_export(source) else _from_run(Path(source))
    if os.path.exists(source):
        raise DataError(f"{source} is a file; pass a run directory, an export or a zoo name")
    if os.sep in source or source.startswith((".", "~")):
        raise DataError(
            f"{source} does not exist; pass a run directory, an export directory or a zoo name "
            "with --weights"
        )
    return _from_zoo(source, weights)


# ---------------------------------------------------------------------------- run directories


def _has_weights(run_dir: Path) -> bool:
    return (run_dir / "model.keras").is_file() or any(
        (run_dir / "checkpoints").glob("ckpt-*.index")
    )


def run_transform(size: tuple, augment) -> Transform:
    """What reszoo.data's validation pipeline did for a run of this size and augmentation."""
    from reszoo.data import AUGMENT_BASES, EVAL_CROP_FRACTION
    from reszoo.data_sources import SMALL_IMAGE_MAX

    if None in size:
        return Transform("as_is")
    base = str(augment or "auto").split("+")[0].strip().lower()
    base = base if base in AUGMENT_BASES and base != "auto" else None
    if base is None:
        base = "cifar" if max(size) <= SMALL_IMAGE_MAX else "imagenet"
    return Transform("fit", size, EVAL_CROP_FRACTION if base == "imagenet" else 1.0)


def _from_run(run_dir: Path) -> Classifier:
    if not (run_dir / "config.json").is_file():
        raise DataError(
            f"{run_dir} is neither a run directory (no config.json) nor an export (no "
            "saved_model.pb); pass one of those or a zoo name with --weights"
        )
    if not _has_weights(run_dir):
        raise DataError(
            f"run directory {run_dir} has no weights (no model.keras, no checkpoints/ckpt-*): "
            "train it first, or rerun `reszoo train` to finish it"
        )
    source = sources.from_run(run_dir)
    model = source.model
    size = tuple(model.inputs[0].shape[1:3])
    config = json.loads((run_dir / "config.json").read_text())  # from_run has read it
    names = tuple(source.class_names) if source.class_names else None
    return Classifier(
        source,
        "run directory",
        names,
        run_transform(size, config.get("augment")),
        int(model.outputs[0].shape[-1]),
        run_config=config,
    )


# ---------------------------------------------------------------------------- exports


def _from_export(path: str) -> Classifier:
    source = sources.from_export(path)
    names = tuple(source.class_names) if source.class_names else None
    num_classes = len(names) if names else _export_classes(source)
    return Classifier(source, "export", names, Transform("as_is"), num_classes)


def _export_classes(source) -> int:
    outputs = source.saved_model.signatures["serving_default"].structured_outputs
    return int(outputs["logits"].shape[-1])


# ---------------------------------------------------------------------------- zoo names


def _from_zoo(name: str, weights: str | None) -> Classifier:
    from reszoo.weights import list_tags
    from reszoo.zoo import get_config

    try:
        get_config(name)
    except UnknownModelError as e:
        raise DataError(
            f"{name!r} is not a run directory, an export or a zoo model: {first_line(e)}"
        ) from e
    if weights is None:
        tags = ", ".join(list_tags(name)) or "none registered"
        raise DataError(
            f"{name} is a zoo name: pass --weights TAG (its tags: {tags}) or --weights PATH; "
            "an untrained model's predictions mean nothing"
        )
    from reszoo.weights.tags import is_tag_name

    if is_tag_name(name, weights):
        return _zoo_with_tag(name, weights)
    return _zoo_with_file(name, weights)


def _zoo_with_tag(name: str, weights: str) -> Classifier:
    from reszoo.weights import class_names, get_tag, imagenet_synsets, source_description
    from reszoo.zoo import build

    tag = get_tag(name, weights)
    transform = tag.eval_transform
    size = (transform.image_size, transform.image_size)
    model = build(name, weights=weights, input_shape=(*size, 3))
    source = sources.ModelSource(name, source_description(name, weights), model=model)
    other = imagenet_synsets() if tag.classes == "imagenet-1k" else None
    return Classifier(
        source,
        "zoo model",
        class_names(tag.classes),
        Transform("resize_crop", size, transform.crop_fraction, transform.interpolation),
        tag.num_classes,
        other,
    )


def _zoo_with_file(name: str, weights: str) -> Classifier:
    from reszoo.weights import source_description
    from reszoo.zoo import build

    if not os.path.isfile(weights):
        raise DataError(
            f"--weights {weights}: no such file and not a tag of {name}; pass a weight tag "
            "(`reszoo list --weights`) or a weights file"
        )
    model = build(name, weights=weights)
    source = sources.ModelSource(name, source_description(name, weights), model=model)
    size = tuple(model.inputs[0].shape[1:3])
    num_classes = int(model.outputs[0].shape[-1])
    return Classifier(source, "zoo model", None, run_transform(size, "auto"), num_classes)
