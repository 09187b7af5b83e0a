"""`reszoo export` / `python -m reszoo.export`: every bad value is exit 2, one line on stderr and
nothing written; the format, signature and limit options reach the export."""

from __future__ import annotations

import json
from functools import partial

import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from serving_support import files_snapshot, run_cli, tiny_overrides  # noqa: E402

import reszoo  # noqa: E402
from reszoo.cli import main_for  # noqa: E402

export_main = partial(main_for, "export")

EXPORT_BAD = [
    (["resnet20", "{out}", "--version", "abc"], "--version"),
    (["resnet20", "{out}", "--version", "0"], "positive integer"),
    (["resnet20", "{out}", "--version", "-3"], "positive integer"),
    (["resnet20", "{existing}", "--version", "1"], "version 1 already exists"),
    (["resnet20", "{out}", "--class-names", "{missing}"], "cannot read class names"),
    (["resnet20", "{out}", "--class-names", "{file}"], "class names for a model with 10"),
    (["resnet20", "{out}", "--class-names", "{bad_json}"], "not valid JSON"),
    (["resnet20", "{out}", "--class-names", "{dict_json}"], "JSON list"),
    (["resnet20", "{out}", "--class-names", "{multiline_json}"], "one line"),
    (["{run_ok}", "{out}", "--class-names", "{names}"], "2 class names for a model with 3"),
    (["resnet20", "{file}"], "is a file"),
    (["resnet20", "{file}/sub"], "is a file"),
    (["resnet20", "/proc/reszoo-robustness-export"], "/proc/reszoo-robustness-export"),
    (["resnet_unknown", "{out}"], "neither a zoo model nor a run directory"),
    (["{missing}", "{out}"], "does not exist"),
    (["{file}", "{out}"], "{file}"),
    (["{empty_run}", "{out}"], "no checkpoint"),
    (["{bad_config_run}", "{out}"], "config.json"),
    (["resnet20"], "required"),
    (["resnet20", "{out}", "--bogus"], "unrecognized"),
    (["resnet20", "{out}", "--format", "tiff"], "--format"),
    (["resnet20", "{out}", "--signature", "serving_bogus"], "--signature"),
    (["resnet20", "{out}", "--max-batch-size", "0"], "--max-batch-size"),
    (["resnet20", "{out}", "--max-image-pixels", "many"], "--max-image-pixels"),
    (["resnet20", "{out}", "--max-request-pixels", "-1"], "--max-request-pixels"),
    (["resnet20", "{out}", "--max-image-pixels", str(2**30)], "max_image_pixels"),
    (["resnet20", "{out}", "--max-image-pixels", "100"], "below one 32x32 image"),
]


@pytest.fixture(scope="module")
def small_model():
    keras.utils.set_random_seed(1)
    return reszoo.build("resnet20", **tiny_overrides("resnet20", size=16, classes=3))


def _bad_inputs(tmp_path, model, args) -> dict:
    """The files and directories the bad cases name, under tmp_path."""
    (tmp_path / "file").write_text("a\n")
    (tmp_path / "names.txt").write_text("a\nb\n")
    (tmp_path / "bad.json").write_text("[")
    (tmp_path / "dict.json").write_text('{"a": 1}')
    (tmp_path / "multi.json").write_text(json.dumps(["a\nb"] + [str(i) for i in range(9)]))
    (tmp_path / "existing" / "1").mkdir(parents=True)
    (tmp_path / "existing" / "1" / "saved_model.pb").write_bytes(b"old")
    (tmp_path / "empty_run" / "checkpoints").mkdir(parents=True)
    (tmp_path / "empty_run" / "config.json").write_text(json.dumps({"model": "resnet20"}))
    (tmp_path / "bad_config_run").mkdir()
    (tmp_path / "bad_config_run" / "config.json").write_text("{broken")
    if "{run_ok}" in args:  # a run of a keras.Model: model.keras, no build entry
        (tmp_path / "run_ok").mkdir()
        model.save(tmp_path / "run_ok" / "model.keras")
        config = {"model": "resnet20", "build": None}
        (tmp_path / "run_ok" / "config.json").write_text(json.dumps(config))
    names = ("file", "names", "missing", "out", "existing", "empty_run", "bad_config_run")
    values = {name: tmp_path / name for name in names}
    values["names"] = tmp_path / "names.txt"
    values.update(
        run_ok=tmp_path / "run_ok",
        bad_json=tmp_path / "bad.json",
        dict_json=tmp_path / "dict.json",
        multiline_json=tmp_path / "multi.json",
    )
    return values


@pytest.mark.parametrize("args, message", EXPORT_BAD, ids=[" ".join(a) for a, _ in EXPORT_BAD])
def test_export_cli_bad_value_exits_2_with_one_line(args, message, tmp_path, capsys, small_model):
    values = _bad_inputs(tmp_path, small_model, args)
    before = files_snapshot(tmp_path)
    code, err = run_cli(export_main, [a.format(**values) for a in args], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("reszoo.export: error: "), err
    assert message.format(**values) in lines[0], lines[0]
    assert files_snapshot(tmp_path) == before, "a refused command wrote something"
    assert not (tmp_path / "out").exists()


def test_format_signature_and_limit_options_reach_the_export(tmp_path, capsys):
    out = tmp_path / "exported"
    argv = ["resnet20", out, "--format", "saved_model", "--signature", "serving_uint8"]
    argv += ["--signature", "serving_image_bytes", "--max-batch-size", "8"]
    argv += ["--max-image-pixels", "5000", "--max-request-pixels", "9000"]
    code, err = run_cli(export_main, argv, capsys)
    assert code == 0, err
    metadata = json.loads((out / "1" / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["format"] == "saved_model"
    assert sorted(metadata["signatures"]) == ["serving_image_bytes", "serving_uint8"]
    assert metadata["limits"] == {
        "max_batch_size": 8,
        "max_image_pixels": 5000,
        "max_request_pixels": 9000,
    }
    loaded = tf.saved_model.load(str(out / "1"))
    assert sorted(loaded.signatures) == ["serving_image_bytes", "serving_uint8"]
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_batch_size=8"):
        loaded.signatures["serving_uint8"](images=tf.zeros([9, 32, 32, 3], tf.uint8))
    logits = loaded.signatures["serving_uint8"](images=tf.zeros([8, 32, 32, 3], tf.uint8))
    assert logits["logits"].shape == (8, 10)
