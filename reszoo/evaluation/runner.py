"""Running a classifier over images: labels aligned by class name, batches of one size, the
test-time flip, and the evaluation's numbers (reszoo/evaluation/metrics.py defines them)."""

from __future__ import annotations

import time

import numpy as np

from reszoo.errors import DataError
from reszoo.evaluation import metrics


def align_labels(dataset: str, names, classifier) -> tuple:
    """(dataset label -> model class index, a note or None). Classes are matched by name, so a
    dataset listing the model's classes in another order is still scored right; a dataset with
    other classes is refused. A model whose weights record no names needs the same count."""
    names = tuple(str(n) for n in names)
    if classifier.class_names is None:
        if len(names) != classifier.num_classes:
            raise DataError(
                f"{dataset} has {len(names)} classes but the model has "
                f"{classifier.num_classes}; evaluate on data with the model's classes"
            )
        note = "the weights record no class names: the dataset's classes are taken in order"
        return np.arange(len(names)), note
    for spelling in (classifier.class_names, classifier.other_names):
        if spelling and len(spelling) == len(names) and set(spelling) == set(names):
            index = {name: i for i, name in enumerate(spelling)}
            return np.asarray([index[n] for n in names]), None
    raise DataError(
        f"{dataset}'s classes are not the model's: {_difference(names, classifier)}; "
        "evaluate on data with the model's classes"
    )


def _difference(names, classifier) -> str:
    model = classifier.class_names
    if len(names) != len(model):
        return f"{len(names)} classes ({_preview(names)}) against {len(model)} ({_preview(model)})"
    known = set(model) | set(classifier.other_names or ())
    extra = next(n for n in names if n not in known)
    return f"{extra!r} is not one of the model's classes ({_preview(model)})"


def _preview(names, shown: int = 4) -> str:
    return ", ".join(names[:shown]) + (", ..." if len(names) > shown else "")


def batches(items, transform, batch_size: int):
    """(float32 images [B, h, w, 3], labels, paths) of consecutive images of one size."""
    images, labels, paths = [], [], []
    for image, label, path in items:
        image = np.asarray(transform(image), np.float32)
        if images and (len(images) == batch_size or image.shape != images[0].shape):
            yield np.stack(images), np.asarray(labels), paths
            images, labels, paths = [], [], []
        images.append(image)
        labels.append(label)
        paths.append(path)
    if images:
        yield np.stack(images), np.asarray(labels), paths


def probabilities(classifier, images: np.ndarray, tta: bool) -> tuple:
    """(float64 probabilities, float32 logits of the image itself); with `tta` the mean of the
    softmax of each image and of its mirror image."""
    logits = classifier.logits(images)
    probs = metrics.softmax(logits)
    if tta:
        mirrored = np.ascontiguousarray(images[:, :, ::-1, :])
        probs = (probs + metrics.softmax(classifier.logits(mirrored))) / 2
    return probs, logits


def _transform_for(classifier, examples):
    if examples.prepared:
        return lambda image: image.astype(np.float32)
    return classifier.transform.function()


def evaluate(classifier, examples, *, batch_size: int, tta: bool) -> dict:
    """Top-1, top-5, loss, per-class accuracy and the confusion matrix of `classifier` on
    `examples`, with images/s over the whole pass (decoding and preprocessing included)."""
    label_map, note = align_labels(examples.dataset, examples.class_names, classifier)
    totals = metrics.Totals(classifier.num_classes)
    start = time.perf_counter()
    for images, labels, _ in batches(
        examples.items(), _transform_for(classifier, examples), batch_size
    ):
        labels = label_map[labels]
        probs, logits = probabilities(classifier, images, tta)
        if tta:
            losses = -np.log(probs[np.arange(len(labels)), labels])
        else:
            losses = metrics.cross_entropy(logits, labels)
        totals.add(probs, losses, labels)
    elapsed = time.perf_counter() - start
    if not totals.losses:
        raise DataError(f"{examples.description}: no image could be read")
    names = classifier.class_names or tuple(str(n) for n in examples.class_names)
    result = totals.summary(names)
    result["images_per_sec"] = result["images"] / elapsed if elapsed > 0 else None
    result["note"] = note
    return result
