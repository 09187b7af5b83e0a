"""`reszoo evaluate`: its numbers equal an evaluation written here from the definitions (same
images, same model, same batches), for a Keras run directory, its export, a zoo name with a
weights file and a trained run's own held-out data; every bad input is exit 2, one line on
stderr, and nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import partial

import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402
from evaluation_support import (  # noqa: E402
    assert_same_numbers,
    fit,
    image_folder,
    logits_in_batches,
    read_png,
    reference_numbers,
    tiny_run,
)
from serving_support import files_snapshot, run_cli  # noqa: E402

import reszoo  # noqa: E402
from reszoo.cli import main_for  # noqa: E402

evaluate_main = partial(
    main_for, "evaluate", prog="reszoo evaluate", error_prefix="reszoo evaluate"
)
NAMES = ["class_0", "class_1", "class_2"]
SHAPES = [(16, 16), (20, 24), (24, 18), (16, 16), (9, 30)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small float32 run (16x16, 3 classes) and a folder of its classes in several sizes."""
    root = tmp_path_factory.mktemp("tiny")
    model = tiny_run(root / "run")
    files = image_folder(root / "images", NAMES, SHAPES, per_class=5)
    return root, model, files


def _evaluate(argv, capsys) -> tuple:
    code, err = run_cli(evaluate_main, argv, capsys)
    assert code == 0, err
    return code, err


def _labels(files) -> list:
    return [NAMES.index(f.parent.name) for f in files]


def test_run_directory_equals_independent_evaluation(tiny, tmp_path, capsys):
    root, model, files = tiny
    _evaluate([root / "run", root / "images", "--batch-size", 4, "--output", tmp_path], capsys)
    result = json.loads((tmp_path / "evaluation.json").read_text())
    images = np.stack([fit(read_png(f), (16, 16)) for f in files])
    logits = logits_in_batches(lambda x: model(x, training=False), images, 4)
    expected = reference_numbers(logits, _labels(files), 3)
    assert_same_numbers(result, expected)
    assert result["split"] == "folder" and result["images"] == 15
    reference_loss = keras.losses.sparse_categorical_crossentropy(
        np.array(_labels(files)), logits, from_logits=True
    )
    assert result["loss"] == pytest.approx(float(np.mean(reference_loss)), rel=1e-5)
    for row, counts in zip(result["per_class"], expected["confusion_matrix"]):
        assert row["images"] == sum(counts) == 5
        assert row["accuracy"] == counts[NAMES.index(row["class"])] / 5
    assert (tmp_path / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tta_flip_is_the_mean_of_the_two_softmaxes(tiny, tmp_path, capsys):
    root, model, files = tiny
    argv = [root / "run", root / "images", "--tta", "flip", "--batch-size", 4]
    _evaluate(argv + ["--output", tmp_path], capsys)
    result = json.loads((tmp_path / "evaluation.json").read_text())
    images = np.stack([fit(read_png(f), (16, 16)) for f in files])
    call = lambda x: model(x, training=False)  # noqa: E731
    logits = logits_in_batches(call, images, 4)
    flipped = logits_in_batches(call, images[:, :, ::-1, :].copy(), 4)
    assert_same_numbers(result, reference_numbers(logits, _labels(files), 3, flipped))
    assert result["tta"] == "flip"


def test_run_directory_default_output_and_printed_summary(tiny, capsys):
    root, _, _ = tiny
    assert evaluate_main([str(root / "run"), str(root / "images")]) == 0
    printed = capsys.readouterr().out
    result = json.loads((root / "run" / "evaluation.json").read_text())
    assert (root / "run" / "confusion_matrix.png").is_file()
    assert result["source_kind"] == "run directory" and result["images_per_sec"] > 0
    top1 = f"top-1 {result['top1']:.4f} ({result['top1_correct']}/15)"
    assert top1 in printed and f"loss {result['loss']:.4f}" in printed
    for row in result["per_class"]:
        line = rf"^  {row['class']} +5  {row['accuracy']:.4f}$"
        assert re.search(line, printed, re.MULTILINE), printed
    assert f"wrote {root / 'run' / 'evaluation.json'}" in printed


def test_zoo_name_with_a_weights_file(tmp_path, capsys):
    keras.utils.set_random_seed(3)
    model = reszoo.build("resnet20")
    model.save_weights(tmp_path / "r20.weights.h5")
    names = [f"c{i}" for i in range(10)]
    files = image_folder(tmp_path / "images", names, [(32, 32)], per_class=1)
    argv = ["resnet20", tmp_path / "images", "--weights", tmp_path / "r20.weights.h5"]
    _evaluate(argv + ["--output", tmp_path / "out"], capsys)
    result = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    images = np.stack([read_png(f).astype(np.float32) for f in files])
    logits = model(images, training=False)
    assert_same_numbers(result, reference_numbers(logits, list(range(10)), 10))
    assert "no class names" in result["note"]


def test_folder_splits_are_its_sub_folders_or_a_train_folders_siblings(tiny, tmp_path, capsys):
    root, _, _ = tiny
    image_folder(tmp_path / "data" / "train", NAMES, [(16, 16)], per_class=3)
    image_folder(tmp_path / "data" / "val", NAMES, [(16, 16)], per_class=2)
    cases = [
        (tmp_path / "data", [], "validation", 6),
        (tmp_path / "data", ["--split", "train"], "train", 9),
        (tmp_path / "data" / "train", [], "validation", 6),
        (tmp_path / "data" / "train", ["--split", "train"], "train", 9),
        (tmp_path / "data" / "val", [], "folder", 6),
    ]
    for dataset, options, split, count in cases:
        _evaluate([root / "run", dataset, "--output", tmp_path / "out", *options], capsys)
        result = json.loads((tmp_path / "out" / "evaluation.json").read_text())
        assert (result["split"], result["images"]) == (split, count), (dataset, options)
    code, err = run_cli(evaluate_main, [root / "run", tmp_path / "data", "--split", "test"], capsys)
    assert code == 2 and "has no test split; its splits: train, validation" in err


def test_a_run_that_held_out_nothing_says_so(tmp_path, capsys):
    tiny_run(tmp_path / "run", classes=10, size=32)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    config.update(dataset="synthetic", validation_split=0)
    (tmp_path / "run" / "config.json").write_text(json.dumps(config))
    _evaluate([tmp_path / "run", "synthetic", "--output", tmp_path / "out"], capsys)
    result = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert "the run held out no data (validation_split=0)" in result["note"]
    assert result["split"] == "validation" and result["images"] == 205
    argv = [tmp_path / "run", "synthetic", "--split", "validation"]
    code, err = run_cli(evaluate_main, argv, capsys)
    assert code == 2 and "the run held out no data (validation_split=0); pass --split train" in err


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`reszoo train` on synthetic data (a short run), exported with reszoo.export."""
    root = tmp_path_factory.mktemp("trained")
    argv = ["resnet20", "synthetic", "--epochs", "1", "--steps-per-epoch", "2", "--quiet"]
    argv += ["--set", "overrides.depths=[1,1,1]", "--output", str(root / "run")]
    assert main_for("train", argv) == 0
    reszoo.export(str(root / "run"), str(root / "exported"))
    names = [f"class_{i}" for i in range(10)]
    files = image_folder(root / "images", names, [(32, 32)], per_class=2)
    return root, files


def test_trained_run_defaults_to_the_data_it_held_out(trained, tmp_path, capsys):
    root, _ = trained
    _evaluate([root / "run", "synthetic", "--batch-size", 128, "--output", tmp_path], capsys)
    result = json.loads((tmp_path / "evaluation.json").read_text())
    assert result["split"] == "validation" and result["images"] == 205  # 20% of 1024
    assert "held out" in result["split_description"]
    history = (root / "run" / "history.csv").read_text().splitlines()
    row = dict(zip(history[0].split(","), history[-1].split(",")))
    assert result["top1"] == pytest.approx(float(row["val_accuracy"]), abs=1e-6)
    assert result["loss"] == pytest.approx(float(row["val_loss"]), rel=1e-3)


def test_keras_run_and_its_export_equal_independent_evaluations(trained, tmp_path, capsys):
    root, files = trained
    images = np.stack([read_png(f).astype(np.float32) for f in files])
    labels = [int(f.parent.name.split("_")[1]) for f in files]
    model = keras.saving.load_model(root / "run" / "model.keras")
    serving = tf.saved_model.load(str(root / "exported" / "1")).signatures["serving_default"]
    calls = {
        "run": lambda x: model(x, training=False),
        "exported": lambda x: serving(images=tf.constant(x))["logits"].numpy(),
    }
    for source, call in calls.items():
        _evaluate(
            [root / source, root / "images", "--batch-size", 8, "--output", tmp_path / source],
            capsys,
        )
        result = json.loads((tmp_path / source / "evaluation.json").read_text())
        expected = reference_numbers(logits_in_batches(call, images, 8), labels, 10)
        assert_same_numbers(result, expected)
    assert result["source_kind"] == "export"


def test_tfds_split_under_mock_data(tmp_path, capsys):
    """A TFDS name: its test split, read through tensorflow_datasets (mock data here)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    names = tfds.builder("cifar10").info.features["label"].names
    model = tiny_run(tmp_path / "run", classes=10, size=32, names=names)
    with tfds.testing.mock_data(num_examples=6):
        argv = [tmp_path / "run", "cifar10", "--split", "test", "--batch-size", 4]
        _evaluate(argv + ["--output", tmp_path / "out"], capsys)
        mocked = tfds.load("cifar10", split="test", as_supervised=True).as_numpy_iterator()
        images, labels = zip(*mocked)
    result = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    logits = logits_in_batches(
        lambda x: model(x, training=False), np.stack(images).astype(np.float32), 4
    )
    assert_same_numbers(result, reference_numbers(logits, labels, 10))
    assert result["split"] == "test" and result["images"] == 6


def _bad_inputs(tmp_path, tiny_root) -> dict:
    (tmp_path / "file.txt").write_text("not an image\n")
    (tmp_path / "no_weights").mkdir()
    (tmp_path / "no_weights" / "config.json").write_text(json.dumps({"model": "resnet20"}))
    for name in NAMES:
        (tmp_path / "unreadable" / name).mkdir(parents=True)
        (tmp_path / "unreadable" / name / "a.png").write_text("not a png")
    image_folder(tmp_path / "other_names", ["cat", "class_1", "dog"], [(16, 16)], per_class=1)
    image_folder(tmp_path / "other_count", NAMES + ["class_3"], [(16, 16)], per_class=1)
    return {
        "run": tiny_root / "run",
        "images": tiny_root / "images",
        "missing": tmp_path / "missing",
        "file": tmp_path / "file.txt",
        "no_weights": tmp_path / "no_weights",
        "unreadable": tmp_path / "unreadable",
        "other_names": tmp_path / "other_names",
        "other_count": tmp_path / "other_count",
        "out": tmp_path / "out",
    }


EVALUATE_BAD = [
    (["{missing}", "{images}"], "{missing} does not exist"),
    (["{file}", "{images}"], "is a file"),
    (["{run}", "{missing}"], "{missing} does not exist"),
    (["{run}", "{file}"], "{file} is a file"),
    (["{run}", "{unreadable}"], "no image could be read"),
    (["{no_weights}", "{images}"], "has no weights"),
    (["{run}", "{other_names}"], "'cat' is not one of the model's classes"),
    (["{run}", "{other_count}"], "4 classes (class_0, class_1, class_2, class_3) against 3"),
    (["{run}", "{images}", "--split", "validation"], "has no validation split"),
    (["{run}", "digits", "--split", "test"], "digits has no test split"),
    (["{run}", "{images}", "--split", "val"], "--split"),
    (["resnet_unknown", "{images}"], "not a run directory, an export or a zoo model"),
    (["resnet20", "{images}"], "pass --weights"),
    (["resnet20", "{images}", "--weights", "{missing}"], "no such file"),
    (["{run}", "{images}", "--weights", "a1_in1k"], "--weights goes with a zoo name"),
    (["{run}", "{images}", "--batch-size", "0"], "positive integer"),
    (["{run}", "{images}", "--tta", "crop"], "--tta"),
    (["{run}", "{images}", "--output", "{file}"], "is a file"),
    (["{run}"], "required"),
]


@pytest.mark.parametrize("args, message", EVALUATE_BAD, ids=[" ".join(a) for a, _ in EVALUATE_BAD])
def test_bad_input_exits_2_with_one_line(args, message, tiny, tmp_path, capsys):
    values = _bad_inputs(tmp_path, tiny[0])
    before = files_snapshot(tmp_path), files_snapshot(tiny[0])
    code, err = run_cli(evaluate_main, [a.format(**values) for a in args], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("reszoo evaluate: error: "), err
    assert message.format(**values) in lines[0], lines[0]
    assert (files_snapshot(tmp_path), files_snapshot(tiny[0])) == before


def test_help_ends_with_examples():
    help_text = subprocess.run(
        [sys.executable, "-m", "reszoo", "evaluate", "--help"], capture_output=True, text=True
    ).stdout
    tail = help_text.rstrip().split("examples:\n", 1)[1].splitlines()
    assert tail and all(line.startswith("  reszoo evaluate ") for line in tail), help_text
