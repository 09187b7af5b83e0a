"""Faults during training and hostile input (the in-process part of the battery).

    3. diverging lr       -> tests/test_fit.py::test_nan_loss_stops_naming_the_step_and_last_
                             checkpoint_loads and tests/test_train_cli.py::test_divergence_exits_1
    4. unwritable / full output location (a path under a regular file, /proc, ENOSPC injected at
       checkpoint, model.keras and summary.json time)
    5. an image folder of truncated, empty, non-image, grayscale, RGBA, CMYK and very large files,
       trained end to end
    7. loading: reszoo's .keras files load with safe_mode=True, a Lambda .keras file is refused
       (and its code never runs), including through reszoo.export of a run directory
    9. every option of the training CLI with a bad value: exit 2, one line on stderr, nothing
       written; an existing export version is never replaced without --overwrite

Items 1-2 (kill -9, multi-worker) are in test_robustness_faults.py, item 6 (registry fuzzing,
JSON as data) in test_robustness_registry.py, item 8 (exported signatures fed random bytes,
wrong shapes, empty and very large batches) in test_serving_fuzz.py, the export CLI's bad
values in test_export_cli.py. Runs are tiny (resnet20 with one block per stage).
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from conftest import REPO, assert_checkpoint_restores

import reszoo  # noqa: E402
from reszoo.errors import ExportError, TrainingError  # noqa: E402

TINY = {"depths": [1, 1, 1]}
TINY_SET = ["--set", "overrides.depths=[1,1,1]"]


def _fit(*args, **kwargs):
    from reszoo.training import fit

    kwargs.setdefault("precision", "float32")
    kwargs.setdefault("overrides", TINY)
    kwargs.setdefault("verbose", 0)
    return fit(*args, **kwargs)


def _synthetic(**kwargs):
    kwargs.setdefault("epochs", 2)
    kwargs.setdefault("steps_per_epoch", 3)
    kwargs.setdefault("batch_size", 8)
    return _fit("resnet20", "synthetic", **kwargs)


def _files(root: Path) -> dict:
    """relative path -> (size, mtime_ns) of every file under root."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _no_leftovers(run: Path):
    names = [str(p.relative_to(run)) for p in run.rglob("*")]
    bad = [n for n in names if n.endswith(".tmp") or "_temp" in n or "-tmp" in n]
    assert not bad, bad


# ----------------------------------------------------------------------------- 4. output location


def test_output_under_a_regular_file_is_refused_before_anything(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(TrainingError, match=r"cannot be created: .*file is a file"):
        _synthetic(output_dir=str(a_file / "run"))
    with pytest.raises(TrainingError, match="is a file"):
        _synthetic(output_dir=str(a_file))
    assert sorted(os.listdir(tmp_path)) == ["file"] and a_file.read_text() == "x"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_output_in_proc_is_a_clear_error():
    with pytest.raises(TrainingError, match="/proc/reszoo-robustness"):
        _synthetic(output_dir="/proc/reszoo-robustness/run")


def _full_disk_on(call_number, error, partial=True):
    """A CheckpointManager.save that fails on its call_number-th call after writing half of
    a data file, as a disk filling up would."""
    original = tf.train.CheckpointManager.save
    calls = []

    def save(self, checkpoint_number=None, **kwargs):
        calls.append(checkpoint_number)
        if len(calls) == call_number:
            if partial:
                Path(self.directory, f"ckpt-{checkpoint_number}.data-00000-of-00001").write_bytes(
                    b"\0" * 100
                )
                Path(self.directory, f"ckpt-{checkpoint_number}_temp").mkdir()
            raise error
        return original(self, checkpoint_number=checkpoint_number, **kwargs)

    return save, calls


@pytest.mark.parametrize(
    "error",
    [
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        tf.errors.ResourceExhaustedError(
            None, None, "ckpt-4_temp/part-00000: No space left on device"
        ),
    ],
    ids=["OSError-ENOSPC", "tf-ResourceExhausted"],
)
def test_full_disk_at_checkpoint_time(tmp_path, monkeypatch, error):
    from reszoo.errors import CheckpointWriteError, RunFailedError

    run = tmp_path / "run"
    save, calls = _full_disk_on(2, error)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    with pytest.raises(
        CheckpointWriteError,
        match=r"cannot write checkpoint ckpt-4 .*No space "
        r"left on device.*ckpt-2 is kept",
    ) as info:
        _synthetic(
            output_dir=str(run), checkpoint_every=2, steps_per_execution=1, steps_per_epoch=4
        )
    assert isinstance(info.value, RunFailedError) and isinstance(info.value, TrainingError)
    assert calls == [2, 4]
    assert not list((run / "checkpoints").glob("ckpt-4*")), "partial checkpoint left behind"
    assert assert_checkpoint_restores(run) == 2
    _no_leftovers(run)
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    assert not (run / "model.keras").exists()
    # rerunning the same call once the disk has room resumes and completes
    monkeypatch.undo()
    r = _synthetic(
        output_dir=str(run), checkpoint_every=2, steps_per_execution=1, steps_per_epoch=4
    )
    assert r.summary["resumed_from_step"] == 2 and r.summary["global_step"] == 8


def test_full_disk_when_writing_model_keras_and_summary(tmp_path, monkeypatch):
    from reszoo.errors import CheckpointWriteError
    from reszoo.training.rundir import write_json as _write_json

    run = tmp_path / "run"
    original = keras.Model.save

    def save(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PK\x03\x04 half a zip")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(keras.Model, "save", save)
    with pytest.raises(CheckpointWriteError, match="model.keras.*No space left"):
        _synthetic(output_dir=str(run))
    monkeypatch.setattr(keras.Model, "save", original)
    assert not (run / "model.keras").exists()
    _no_leftovers(run)
    assert assert_checkpoint_restores(run) == 6
    # a JSON write that fails half-way leaves the previous file intact and no .tmp
    target = run / "summary.json"
    before = target.read_bytes()

    real_dump = json.dump

    def dump(value, f, **kwargs):
        f.write('{"half": ')
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(json, "dump", dump)
    with pytest.raises(OSError):
        _write_json(str(target), {"status": "new"})
    monkeypatch.setattr(json, "dump", real_dump)
    assert target.read_bytes() == before
    _no_leftovers(run)


def test_cli_full_disk_exits_1_with_one_line(tmp_path, monkeypatch, capsys):
    from reszoo.train import main

    save, _ = _full_disk_on(1, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
    code = main(
        [
            "resnet20",
            "synthetic",
            "--epochs",
            "1",
            "--steps-per-epoch",
            "2",
            "--batch-size",
            "8",
            "--precision",
            "float32",
            "--quiet",
            "--output",
            str(tmp_path / "run"),
            *TINY_SET,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and "run failed: cannot write checkpoint" in err[0], err


# ----------------------------------------------------------------------------- 5. bad image folder


def _image_bytes(array, fmt, mode=None):
    import io

    from PIL import Image

    image = Image.fromarray(array, mode) if mode is None else Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_training_on_a_folder_of_odd_and_broken_images(tmp_path):
    pytest.importorskip("PIL")
    root = tmp_path / "images"
    rng = np.random.RandomState(0)
    for label, colour in (("dark", 40), ("bright", 215)):
        d = root / label
        d.mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(colour, 20, (24, 24, 3)), 0, 255).astype(np.uint8)
            (d / f"good{i}.jpg").write_bytes(_image_bytes(pixels, "JPEG"))
    odd = {  # usable: converted to RGB
        "dark/gray.png": _image_bytes(np.full((20, 20), 40, np.uint8), "PNG"),
        "dark/rgba.png": _image_bytes(np.full((16, 16, 3), 40, np.uint8), "PNG", "RGBA"),
        "bright/cmyk.jpg": _image_bytes(np.full((16, 16, 3), 215, np.uint8), "JPEG", "CMYK"),
        "bright/huge.jpg": _image_bytes(np.full((3000, 4000, 3), 215, np.uint8), "JPEG"),
    }
    full = _image_bytes(rng.randint(0, 255, (64, 64, 3)).astype(np.uint8), "JPEG")
    broken = {  # skipped, counted and named
        "dark/truncated.jpg": full[: len(full) // 2],
        "dark/empty.jpg": b"",
        "bright/notes.txt": b"not an image\n",
        "bright/fake.png": b"\x89PNG\r\n\x1a\n" + bytes(rng.randint(0, 255, 200, np.uint8)),
    }
    for rel, data in {**odd, **broken}.items():
        (root / rel).write_bytes(data)
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match=r"skipped 4 file") as record:
        r = _fit(
            "resnet20",
            str(root),
            epochs=2,
            batch_size=8,
            image_size=[32, 32],
            validation_split=0,
            output_dir=str(run),
        )
    message = " ".join(str(w.message) for w in record)
    for rel in broken:
        assert Path(rel).name in message, message
    for rel in odd:
        assert Path(rel).name not in message, message
    assert r.summary["status"] == "completed" and r.summary["global_step"] == 2 * (28 // 8)
    assert np.isfinite(r.history["loss"]).all()
    # item 7: the run's own model.keras loads in safe mode and computes the same function
    loaded = keras.saving.load_model(str(run / "model.keras"), safe_mode=True)
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), r.model.predict(x, verbose=0), atol=1e-5
    )


# ----------------------------------------------------------------------------- 7. loading


@pytest.mark.parametrize(
    "name",
    [
        "resnet20",
        "resnet50",
        "resnet50_v2",
        "resnet50d",
        "preact_resnet164",
        "resnext50_32x4d",
        "seresnet50",
        "smallresnet",
        "wrn16_8",
    ],
)
def test_reszoo_keras_files_load_with_safe_mode(name, tmp_path):
    config = reszoo.get_config(name)
    stages = len(config["depths"])
    overrides = dict(
        depths=[1] * stages,
        widths=[16] * stages,
        stem_width=8,
        num_classes=3,
        input_shape=(32, 32, 3),
    )
    if config["groups"] > 1:
        overrides.update(groups=4, base_width=16)
    model = reszoo.build(name, **overrides)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.RandomState(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)


def _lambda_model(marker: Path):
    # an anonymous lambda: Keras stores its bytecode, which only safe_mode=False would run
    touch = lambda x, m=str(marker): (open(m, "w").close(), x * 2.0)[1]  # noqa: E731
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(touch)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def test_a_keras_file_with_a_lambda_is_refused_and_its_code_never_runs(tmp_path):
    marker = tmp_path / "PWNED"
    model = _lambda_model(marker)
    marker.unlink(missing_ok=True)  # building traced the function once
    path = tmp_path / "lambda.keras"
    model.save(path)
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"(?s)Lambda.*safe_mode|safe_mode.*Lambda|unsafe"):
        keras.saving.load_model(path)
    assert not marker.exists()
    # reszoo.export of a run directory holding such a model.keras: a clear ExportError
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_bytes(path.read_bytes())
    (run / "config.json").write_text(
        json.dumps({"model": "custom", "build": None, "class_names": ["a", "b", "c"]})
    )
    with pytest.raises(ExportError, match="safe_mode|Lambda"):
        reszoo.export(str(run), tmp_path / "exported")
    assert not marker.exists() and not (tmp_path / "exported").exists()


# ----------------------------------------------------------------------------- 9. CLIs


def _run_main(module_main, argv, capsys):
    try:
        code = module_main([str(a) for a in argv])
    except SystemExit as e:  # argparse
        code = e.code
    captured = capsys.readouterr()
    return code, captured.err


TRAIN_BAD = [  # (arguments after "resnet20 synthetic" unless they start with a model, message)
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "x"], "--epochs"),
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "1.5"], "--batch-size"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr", "inf"], "lr"),
    (["--precision", "float64"], "--precision"),
    (["--strategy", "gpu"], "--strategy"),
    (["--strategy", "multi_worker"], "TF_CONFIG"),
    (["--strategy", "tpu"], "TPU"),
    (["--augment", "bogus"], "augment"),
    (["--augment", "cifar+nothing"], "augment"),
    (["--output", "{file}/run"], "is a file"),
    (["--output", "{file}"], "is a file"),
    (["--output", "{foreign}"], "not empty"),
    (["--export", "{file}"], "is a file"),
    (["--export", "{file}/sub"], "is a file"),
    (["--config", "{missing}"], "not found"),
    (["--config", "{file}"], "does not parse"),
    (["--config", "{list_json}"], "mapping"),
    (["--set", "novalue"], "key=value"),
    (["--set", "=1"], "key=value"),
    (["--set", "momentun=0.5"], "did you mean"),
    (["--set", "epochs=abc"], "epochs"),
    (["--set", "overrides.depths=[0]"], "depths"),
    (["--set", "overrides=5"], "overrides"),
    (["--set", "overrides.nope=1"], "nope"),
    (["--set", "schedule=no_such_schedule"], "schedule"),
    (["--set", "num_classes=1"], "num_classes"),
    (["--set", "image_size=[0,0]"], "image_size"),
    (["--set", "validation_split=-1"], "validation_split"),
    (["--steps-per-epoch", "0"], "--steps-per-epoch"),
    (["--checkpoint-every", "-1"], "--checkpoint-every"),
    (["--seed", "-1"], "--seed"),
    (["--seed", "x"], "--seed"),
    (["--bogus"], "unrecognized"),
    (["--data-dir"], "expected one argument"),
    (["resnet21", "synthetic"], "unknown model 'resnet21'"),
    (["resnet20"], "required"),
    (["resnet20", "{missing}/images"], "{missing}"),
    (["resnet20", "{file}"], "file"),
]


@pytest.mark.parametrize("args, message", TRAIN_BAD, ids=[" ".join(a) for a, _ in TRAIN_BAD])
def test_train_cli_bad_value_exits_2_with_one_line(args, message, tmp_path, capsys):
    from reszoo.train import main

    (tmp_path / "file").write_text("not json")
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "photo.jpg").write_bytes(b"x")
    values = {
        "file": tmp_path / "file",
        "missing": tmp_path / "missing",
        "list_json": tmp_path / "list.json",
        "foreign": tmp_path / "foreign",
    }
    args = [a.format(**values) for a in args]
    message = message.format(**values)
    positional = [] if args[0].startswith("resnet") else ["resnet20", "synthetic"]
    output = [] if "--output" in args else ["--output", tmp_path / "run"]
    before = _files(tmp_path)
    short = [] if any("epochs" in a for a in args) else ["--epochs", "1"]
    code, err = _run_main(main, [*positional, *args, *output, *short, "--quiet"], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("reszoo.train: error: "), err
    assert message in lines[0], lines[0]
    assert _files(tmp_path) == before, "a refused command wrote something"


def test_cli_processes_print_one_line_without_tensorflow_noise(tmp_path):
    """The real entry points (python -m), whose TensorFlow import logs to stderr by default."""
    env = {**os.environ}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("TF_CONFIG", None)
    (tmp_path / "file").write_text("x")
    for module, argv in (
        ("reszoo.train", ["resnet20", "synthetic", "--output", tmp_path / "file" / "run"]),
        ("reszoo.export", ["resnet20", tmp_path / "out", "--version", "0"]),
        ("reszoo.export", ["resnet20", tmp_path / "file" / "sub"]),
    ):
        p = subprocess.run(
            [sys.executable, "-W", "ignore", "-m", module, *map(str, argv)],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
            timeout=300,
        )
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2 and len(lines) == 1, p.stderr[-2000:]
        assert "Traceback" not in p.stderr
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_existing_run_and_export_version_are_never_overwritten(tmp_path, capsys):
    """Files keep their bytes and mtimes when a run directory of another config or an existing
    export version is refused (the same config resumes: tests/test_train_cli.py)."""
    from functools import partial

    from reszoo.cli import main_for

    export_main = partial(main_for, "export")
    from reszoo.train import main as train_main

    run, exported = tmp_path / "run", tmp_path / "exported"
    base = [
        "resnet20",
        "synthetic",
        "--epochs",
        "1",
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "8",
        "--precision",
        "float32",
        "--quiet",
        "--output",
        run,
    ]
    assert _run_main(train_main, [*base, *TINY_SET], capsys)[0] == 0
    assert _run_main(export_main, [run, exported, "--version", "1"], capsys)[0] == 0
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    refused = [
        (train_main, [*base, "--set", "overrides.depths=[2,1,1]"], "another config"),
        (train_main, [*base, *TINY_SET, "--set", "momentum=0.5"], "another config"),
        (train_main, [*base, *TINY_SET, "--batch-size", "16"], "another config"),
        (train_main, [*base, *TINY_SET, "--set", "augment=none"], "another config"),
        (export_main, [run, exported, "--version", "1"], "already exists"),
        (export_main, ["resnet20", exported, "--version", "1"], "already exists"),
    ]
    for main, argv, message in refused:
        code, err = _run_main(main, argv, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before
