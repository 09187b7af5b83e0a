"""Bad command-line input: every option of the training CLI with a bad value exits 2 with one
line on stderr and nothing written; a run directory or an export version is never overwritten.
(The export CLI's bad values are in test_export_cli.py, evaluate's and predict's in their own
test files.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

tf = pytest.importorskip("tensorflow")
from conftest import REPO
from robustness_support import (
    TINY_SET,
    file_stamps,
)

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
    before = file_stamps(tmp_path)
    short = [] if any("epochs" in a for a in args) else ["--epochs", "1"]
    code, err = _run_main(main, [*positional, *args, *output, *short, "--quiet"], capsys)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("reszoo.train: error: "), err
    assert message in lines[0], lines[0]
    assert file_stamps(tmp_path) == before, "a refused command wrote something"


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
