"""Evaluation and prediction with a trained classifier: a run directory, an export or a zoo
model with weights, on any dataset `reszoo train` accepts or on image files.

    from reszoo import evaluation
    classifier = evaluation.load("runs/resnet20-digits")     # or "exported/r20", or
    classifier = evaluation.load("resnet50", weights="a1_in1k")
    result = evaluation.evaluate(classifier, "digits")       # top1, top5, loss, confusion, ...
    for path, ranked in evaluation.predict(classifier, ["cat.jpg"], top=5): ...

Modules: classifier (where the model comes from, its classes and its preprocessing),
transforms (the preprocessing kinds, a table), examples (datasets and their splits, a table),
images (image files), runner (batches, flips, label alignment), metrics (the definitions of
the numbers), report (what is printed and written). This package imports TensorFlow.
"""

from __future__ import annotations

import os

from reszoo.errors import DataError
from reszoo.evaluation import examples as datasets
from reszoo.evaluation import images as image_files
from reszoo.evaluation import metrics, runner
from reszoo.evaluation.classifier import Classifier, load

__all__ = ["Classifier", "evaluate", "load", "predict", "choose_examples"]


def _same_dataset(recorded, given: str) -> bool:
    if recorded == given:
        return True
    return (
        bool(recorded)
        and os.path.isdir(given)
        and os.path.realpath(os.path.expanduser(str(recorded)))
        == os.path.realpath(os.path.expanduser(given))
    )


def choose_examples(classifier, dataset: str, split=None, *, batch_size=64, data_dir=None):
    """The images to evaluate on, and a note. A run directory evaluated on its own dataset
    without --split (or with --split validation) gets the data it held out itself."""
    config = classifier.run_config
    size = tuple(classifier.source.input_size)
    if config and split in (None, "validation") and _same_dataset(config.get("dataset"), dataset):
        held_out = datasets.run_held_out(config, dataset, size, batch_size, data_dir)
        if held_out is not None:
            return held_out, None
        held = config.get("validation_split")
        if split == "validation":
            raise DataError(
                f"the run held out no data (validation_split={held}); pass "
                "--split train, or another dataset"
            )
        note = (
            f"the run held out no data (validation_split={held}): these images may be "
            "among those it trained on"
        )
    else:
        note = None
    return datasets.examples(dataset, split, size, data_dir or (config or {}).get("data_dir")), note


def evaluate(classifier, dataset: str, split=None, *, batch_size=64, tta=False, data_dir=None):
    """The evaluation of `classifier` on one split of `dataset`, as a JSON-ready dict."""
    found, note = choose_examples(
        classifier, dataset, split, batch_size=batch_size, data_dir=data_dir
    )
    result = runner.evaluate(classifier, found, batch_size=batch_size, tta=tta)
    result["note"] = "; ".join(n for n in (note, result["note"]) if n) or None
    preprocessing = (
        "the run's own validation pipeline (reszoo.data)"
        if found.prepared
        else classifier.transform.describe()
    )
    return {
        "source": classifier.describe(),
        "source_kind": classifier.kind,
        "dataset": dataset,
        "split": found.split,
        "split_description": found.description,
        "preprocessing": preprocessing,
        "tta": "flip" if tta else None,
        "batch_size": batch_size,
        **result,
        "skipped_files": [{"path": p, "reason": r} for p, r in found.skipped],
    }


def _checked_files(arguments) -> list:
    """The files to predict on. A file named on the command line must be an image (bad input
    otherwise); unreadable files found inside folders are skipped and listed later."""
    for argument in arguments:
        if os.path.isfile(argument):
            _, problem = image_files.decode_file(argument)
            if problem:
                raise DataError(
                    f"{argument} is not an image this can read ({problem}); pass "
                    "JPEG, PNG, GIF or BMP files or folders of them"
                )
    return image_files.expand_paths(arguments)


def predict(classifier, arguments, *, top=5, batch_size=32, skipped=None):
    """Yield (path, [(class index, class name, probability), ...] best first) per image;
    files that do not decode are appended to `skipped` as (path, reason)."""
    files = _checked_files(arguments)
    skipped = [] if skipped is None else skipped
    names = classifier.class_names or tuple(str(i) for i in range(classifier.num_classes))
    top = min(top, classifier.num_classes)

    def items():
        for path, image, problem in image_files.decoded_in_order(files):
            if problem:
                skipped.append((path, problem))
            else:
                yield image, 0, path

    transform = classifier.transform.function()
    for images, _, paths in runner.batches(items(), transform, batch_size):
        probs = metrics.softmax(classifier.logits(images))
        for path, row in zip(paths, probs):
            order = sorted(range(len(row)), key=lambda i: (-row[i], i))[:top]
            yield path, [(i, names[i], float(row[i])) for i in order]
