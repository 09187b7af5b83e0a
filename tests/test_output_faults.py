"""An output location that cannot be written: a path under a regular file, /proc, and a full
disk (ENOSPC injected at checkpoint, model.keras and summary.json time). A clear error, no
partial file, and the last good checkpoint still restores."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from conftest import assert_checkpoint_restores
from robustness_support import (
    TINY_SET,
    assert_no_leftovers,
    tiny_synthetic,
)

from reszoo.errors import TrainingError  # noqa: E402

# ----------------------------------------------------------------------------- 4. output location


def test_output_under_a_regular_file_is_refused_before_anything(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(TrainingError, match=r"cannot be created: .*file is a file"):
        tiny_synthetic(output_dir=str(a_file / "run"))
    with pytest.raises(TrainingError, match="is a file"):
        tiny_synthetic(output_dir=str(a_file))
    assert sorted(os.listdir(tmp_path)) == ["file"] and a_file.read_text() == "x"


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_output_in_proc_is_a_clear_error():
    with pytest.raises(TrainingError, match="/proc/reszoo-robustness"):
        tiny_synthetic(output_dir="/proc/reszoo-robustness/run")


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
        tiny_synthetic(
            output_dir=str(run), checkpoint_every=2, steps_per_execution=1, steps_per_epoch=4
        )
    assert isinstance(info.value, RunFailedError) and isinstance(info.value, TrainingError)
    assert calls == [2, 4]
    assert not list((run / "checkpoints").glob("ckpt-4*")), "partial checkpoint left behind"
    assert assert_checkpoint_restores(run) == 2
    assert_no_leftovers(run)
    assert json.loads((run / "summary.json").read_text())["status"] == "failed"
    assert not (run / "model.keras").exists()
    # rerunning the same call once the disk has room resumes and completes
    monkeypatch.undo()
    r = tiny_synthetic(
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
        tiny_synthetic(output_dir=str(run))
    monkeypatch.setattr(keras.Model, "save", original)
    assert not (run / "model.keras").exists()
    assert_no_leftovers(run)
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
    assert_no_leftovers(run)


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
