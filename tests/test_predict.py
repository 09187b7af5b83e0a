"""`reszoo predict`: its probabilities equal the model's softmax on the same prepared images,
from a run directory and from an export; unreadable files inside folders are listed and
skipped; every bad input is exit 2 and one line on stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial

import pytest

tf = pytest.importorskip("tensorflow")
import numpy as np  # noqa: E402
from evaluation_support import fit, image_folder, read_png, softmax64, tiny_run  # noqa: E402
from pinned_reference import load_case  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402
from serving_support import files_snapshot, run_cli  # noqa: E402
from weights_fixtures import keras_cache, register_with_tag, tag_entry, test_models  # noqa: E402

import reszoo  # noqa: E402
from reszoo.cli import main_for  # noqa: E402

__all__ = ["keras_cache", "test_models"]  # fixtures used by name below
predict_main = partial(main_for, "predict", prog="reszoo predict", error_prefix="reszoo predict")
NAMES = ["class_0", "class_1", "class_2"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small float32 run (16x16, 3 classes), its export, and images of several sizes."""
    root = tmp_path_factory.mktemp("tiny")
    model = tiny_run(root / "run")
    reszoo.export(str(root / "run"), str(root / "exported"))
    files = image_folder(root / "images", NAMES, [(20, 24), (16, 16), (40, 12)], per_class=1)
    return root, model, files


def _predict(argv, capsys) -> tuple:
    code = predict_main([str(a) for a in argv])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out, captured.err


def test_probabilities_equal_the_softmax_of_the_model(tiny, capsys):
    root, model, files = tiny
    out, _ = _predict([root / "run", files[0], root / "images" / "class_1", "--json"], capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["image"] for row in rows] == [str(files[0]), str(files[1])]
    images = np.stack([fit(read_png(f), (16, 16)) for f in files[:2]])
    expected = softmax64(model(images, training=False))
    for row, probs in zip(rows, expected):
        order = np.argsort(-probs, kind="stable")[:3]
        assert [top["index"] for top in row["top"]] == order.tolist()
        assert [top["class"] for top in row["top"]] == [NAMES[i] for i in order]
        assert [top["probability"] for top in row["top"]] == probs[order].tolist()


def test_export_probabilities_equal_the_softmax_of_its_logits(tiny, capsys):
    root, _, files = tiny
    out, _ = _predict([root / "exported", files[1], "--json", "--top", "2"], capsys)
    (row,) = [json.loads(line) for line in out.splitlines()]
    serving = tf.saved_model.load(str(root / "exported" / "1")).signatures["serving_default"]
    image = read_png(files[1]).astype(np.float32)[None]
    probs = softmax64(serving(images=tf.constant(image))["logits"].numpy())[0]
    order = np.argsort(-probs, kind="stable")[:2]
    assert [(t["index"], t["probability"]) for t in row["top"]] == list(
        zip(order.tolist(), probs[order].tolist())
    )


def test_table_and_unreadable_files_listed_and_skipped(tiny, tmp_path, capsys):
    root, model, files = tiny
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.png").write_bytes(files[2].read_bytes())
    (folder / "b.png").write_text("not a png")
    (folder / "c.jpg").write_bytes(b"")
    out, err = _predict([root / "run", folder, "--top", "2"], capsys)
    probs = softmax64(model(fit(read_png(files[2]), (16, 16))[None], training=False))[0]
    first, second = np.argsort(-probs, kind="stable")[:2]
    assert out.splitlines() == [
        str(folder / "a.png"),
        f"  1. {NAMES[first]}  {probs[first]:.4f}",
        f"  2. {NAMES[second]}  {probs[second]:.4f}",
    ]
    assert err.splitlines() == [
        f"reszoo predict: skipped {folder / 'b.png'}: Unknown image file format. One of JPEG, "
        "JPEG XL, PNG, GIF, BMP, WebP required",
        f"reszoo predict: skipped {folder / 'c.jpg'}: empty file",
    ]


PREDICT_BAD = [
    (["{run}", "{image}", "--top", "0"], "--top: expected a positive integer, got '0'"),
    (["{run}", "{missing}"], "{missing} does not exist"),
    (["{run}", "{image}", "{text}"], "{text} is not an image"),
    (["{run}", "{unreadable}"], "no readable image in {unreadable}; 1 file(s) could not be read"),
    (["{run}", "{empty}"], "no readable image in {empty} (no files found)"),
    (["{no_weights}", "{image}"], "has no weights"),
    (["{missing}", "{image}"], "{missing} does not exist"),
    (["resnet_unknown", "{image}"], "not a run directory, an export or a zoo model"),
    (["resnet20", "{image}"], "pass --weights"),
    (["{run}"], "required"),
]


@pytest.mark.parametrize("args, message", PREDICT_BAD, ids=[" ".join(a) for a, _ in PREDICT_BAD])
def test_bad_input_exits_2_with_one_line(args, message, tiny, tmp_path, capsys):
    (tmp_path / "text.png").write_text("hello")
    (tmp_path / "unreadable").mkdir()
    (tmp_path / "unreadable" / "x.jpg").write_text("not a jpeg")
    (tmp_path / "no_weights").mkdir()
    (tmp_path / "no_weights" / "config.json").write_text(json.dumps({"model": "resnet20"}))
    (tmp_path / "empty").mkdir()
    values = {
        "empty": tmp_path / "empty",
        "run": tiny[0] / "run",
        "image": tiny[2][0],
        "missing": tmp_path / "missing.png",
        "text": tmp_path / "text.png",
        "unreadable": tmp_path / "unreadable",
        "no_weights": tmp_path / "no_weights",
    }
    before = files_snapshot(tmp_path), files_snapshot(tiny[0])
    code, err = run_cli(predict_main, [a.format(**values) for a in args], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("reszoo predict: error: "), err
    assert message.format(**values) in lines[0], lines[0]
    assert (files_snapshot(tmp_path), files_snapshot(tiny[0])) == before


def test_help_ends_with_examples():
    help_text = subprocess.run(
        [sys.executable, "-m", "reszoo", "predict", "--help"], capture_output=True, text=True
    ).stdout
    tail = help_text.rstrip().split("examples:\n", 1)[1].splitlines()
    assert tail and all(line.startswith("  reszoo predict ") for line in tail), help_text


def test_zoo_name_with_a_weight_tag_uses_its_evaluation_transform(
    keras_cache, test_models, tmp_path, capsys
):
    """A tag served from a file:// URL (timm's layout, weights drawn from a pinned reference):
    the image is resized (shorter side to 40 / 0.8 = 50, bicubic) and centre-cropped to 40x40
    as the tag says, and the classes are ImageNet's."""
    save_file(load_case("timm_resnet18_small").state_dict(), str(tmp_path / "r18.safetensors"))
    eval_transform = {"size": 40, "crop_fraction": 0.8, "interpolation": "bicubic"}
    tag = tag_entry("resnet18", (tmp_path / "r18.safetensors").as_uri(), "r18_eval.safetensors")
    tag["eval"] = eval_transform
    register_with_tag(test_models, "resnet18_evaltag", "resnet18", tag, depths=[1, 1, 1, 1])
    (image_path,) = image_folder(tmp_path / "images", ["x"], [(60, 75)], per_class=1)
    argv = ["resnet18_evaltag", image_path, "--weights", "test", "--json", "--top", "3"]
    out, _ = _predict(argv, capsys)
    (row,) = [json.loads(line) for line in out.splitlines()]
    resized = tf.image.resize(read_png(image_path), (50, 62), "bicubic", antialias=True)
    image = np.round(np.clip(resized.numpy(), 0, 255))[5:45, 11:51]  # 75 * 50 // 60 = 62
    model = reszoo.build("resnet18_evaltag", weights="test", input_shape=(40, 40, 3))
    probs = softmax64(model(image[None].astype(np.float32), training=False))[0]
    order = np.argsort(-probs, kind="stable")[:3]
    names = reszoo.weights.imagenet_classes()
    assert [(t["index"], t["class"], t["probability"]) for t in row["top"]] == [
        (i, names[i], probs[i]) for i in order.tolist()
    ]
