"""python -m reszoo.train: help, exit codes (0 ok, 2 bad input with one line on stderr, 1 run
failure), the run directory, resume and refusal of another config's directory, --export."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--set", "overrides.depths=[1,1,1]"]


def _cli(*args, env=None, timeout=240):
    e = dict(os.environ)
    e["PYTHONPATH"] = ROOT + os.pathsep + e.get("PYTHONPATH", "")
    e.pop("TF_CONFIG", None)
    e.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "reszoo.train", *map(str, args)],
        cwd=ROOT,
        env=e,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _main(*args):
    from reszoo.train import main

    try:
        return main([str(a) for a in args])
    except SystemExit as e:  # argparse
        return e.code


def test_help_has_examples_and_exit_codes(capsys):
    assert _main("--help") == 0
    out = capsys.readouterr().out
    assert "MODEL" in out.upper() and "examples:" in out and "--set" in out
    assert "python -m reszoo.train resnet20 digits" in out and "exit codes" in out


@pytest.mark.parametrize(
    "args, env, expected",
    [
        (["resnet21", "digits"], {}, "unknown model 'resnet21'"),
        (["resnet20", "digits", "--epochs", "0"], {}, "--epochs: expected a positive integer"),
        (["resnet20", "synthetic", "--epochs", "1"], {"TF_CONFIG": "{oops"}, "TF_CONFIG"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, args, env, expected):
    p = _cli(*args, "--output", tmp_path / "run", env=env)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--set", "momentun=0.5"], "did you mean 'momentum'"),
        (["--set", "novalue"], "key=value"),
        (["--set", "schedule=no_such_schedule"], "schedule must be one of"),
        (["--batch-size", "x"], "--batch-size"),
        (["--config", "/nonexistent.json"], "config file not found"),
    ],
)
def test_bad_options_exit_2_in_process(tmp_path, capsys, args, expected):
    assert _main("resnet20", "synthetic", "--output", tmp_path / "run", *args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "run").exists()


def test_run_resume_refusal_and_export(tmp_path, capsys):
    out = tmp_path / "run"
    base = [
        "resnet20",
        "synthetic",
        "--epochs",
        "2",
        "--steps-per-epoch",
        "2",
        "--batch-size",
        "16",
        "--precision",
        "float32",
        "--output",
        out,
        "--quiet",
        *TINY,
    ]
    export_dir = tmp_path / "exported"
    try:
        import reszoo.serving  # noqa: F401

        has_export = True
    except ImportError:
        has_export = False
    extra = ["--export", export_dir] if has_export else []
    assert _main(*base, *extra) == 0, capsys.readouterr().err
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "resnet20" and cfg["dataset"] == "synthetic"
    assert cfg["build"]["overrides"] == {"depths": [1, 1, 1]} and cfg["epochs"] == 2
    assert len(cfg["class_names"]) == cfg["build"]["num_classes"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == 4
    if has_export:
        assert (export_dir / "1" / "saved_model.pb").exists()
    listing = sorted(os.listdir(out))
    stamp = (out / "summary.json").stat().st_mtime_ns
    # another config in the same directory: refused, nothing written
    capsys.readouterr()
    assert _main(*base[:-2], "--set", "overrides.depths=[2,1,1]") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds a run of another config" in err[0], err
    assert sorted(os.listdir(out)) == listing
    assert (out / "summary.json").stat().st_mtime_ns == stamp
    # more epochs with the same config: resumes at step 4 and runs 2 more
    assert _main(*[a if a != "2" else "3" for a in base[:4]], *base[4:]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["resumed_from_step"] == 4 and summary["global_step"] == 6


def test_divergence_exits_1(tmp_path, capsys):
    code = _main(
        "resnet20",
        "synthetic",
        "--epochs",
        "3",
        "--steps-per-epoch",
        "3",
        "--batch-size",
        "16",
        "--precision",
        "float32",
        "--lr",
        "1e30",
        "--quiet",
        "--output",
        tmp_path / "run",
        *TINY,
    )
    err = capsys.readouterr().err
    assert code == 1 and "global step" in err and "run failed" in err, err
