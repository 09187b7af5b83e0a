"""Checkpoints that cannot be lost: a damaged state file or a damaged newest checkpoint.

One short run (resnet20 with one block per stage, synthetic data, 4 steps, a checkpoint after
every step: ckpt-1 .. ckpt-4) is copied for each case, damaged, then resumed with a second epoch.
Each case checks the step the rerun resumed from (the restored step variable, reported in
summary.json) against the damage done, and that the older checkpoints are still on disk, byte
for byte. Without reszoo/training/checkpoint_store.py a lost state file restarts from step 0
and a damaged newest checkpoint stops the run as a "mismatch".
"""

import os
import shutil

import pytest

tf = pytest.importorskip("tensorflow")

from reszoo.errors import RunFailedError, TrainingError  # noqa: E402

RUN = dict(
    steps_per_epoch=4,
    batch_size=8,
    examples=32,
    validation_split=0,
    precision="float32",
    overrides={"depths": [1, 1, 1]},
    checkpoint_every=1,
    steps_per_execution=1,
    keep_checkpoints=10,
    verbose=0,
)
DATA = "ckpt-4.data-00000-of-00001"


def _fit(out, epochs):
    from reszoo.training import fit

    return fit("resnet20", "synthetic", epochs=epochs, output_dir=str(out), **RUN)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "run"
    result = _fit(out, 1)
    assert result.summary["global_step"] == 4
    names = os.listdir(out / "checkpoints")
    assert all(f"ckpt-{s}.index" in names for s in (1, 2, 3, 4)), names
    return out


@pytest.fixture
def run_copy(first_run, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(first_run, out)
    return out


def _files(run, steps):
    """The bytes of the checkpoints ``steps`` (index and data), to check they are untouched."""
    ck = run / "checkpoints"
    return {
        name: (ck / name).read_bytes()
        for name in sorted(os.listdir(ck))
        if name.split(".")[0] in {f"ckpt-{s}" for s in steps}
    }


def _resume_and_check(run, expected_step, untouched_steps):
    before = _files(run, untouched_steps)
    result = _fit(run, 2)
    assert result.summary["resumed_from_step"] == expected_step
    assert result.summary["global_step"] == 8
    history = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == ["1", "2"]
    assert _files(run, untouched_steps) == before  # older checkpoints kept, not rewritten
    assert tf.train.latest_checkpoint(str(run / "checkpoints")).endswith("ckpt-8")
    return result


@pytest.mark.parametrize(
    "content",
    [None, "", 'model_checkpoint_path: "ckpt-4\n\x00\x01 {{{ not a state file'],
    ids=["deleted", "empty", "garbled"],
)
def test_lost_state_file_resumes_from_the_newest_checkpoint(run_copy, content):
    state = run_copy / "checkpoints" / "checkpoint"
    state.unlink()
    if content is not None:
        state.write_text(content)
    _resume_and_check(run_copy, 4, [1, 2, 3, 4])


def _drop_index(path):
    (path / "ckpt-4.index").unlink()


def _truncate(path):
    data = path / DATA
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def _flip_bytes(path):
    data = path / DATA
    raw = bytearray(data.read_bytes())
    middle = len(raw) // 2
    raw[middle : middle + 64] = bytes(b ^ 0xFF for b in raw[middle : middle + 64])
    data.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    "damage,reason",
    [(_drop_index, "incomplete"), (_truncate, "corrupt"), (_flip_bytes, "corrupt")],
    ids=["missing-index", "truncated-data", "corrupted-bytes"],
)
def test_damaged_newest_checkpoint_resumes_from_the_one_before(run_copy, damage, reason, capfd):
    damage(run_copy / "checkpoints")
    result = _resume_and_check(run_copy, 3, [1, 2, 3])
    err = capfd.readouterr().err
    assert f"skipped checkpoint ckpt-4 ({reason}" in err
    assert "does not match this run's model" not in err
    # the damaged files are kept aside, not written over by the new ckpt-4
    kept = os.listdir(run_copy / "checkpoints" / "unusable")
    assert kept and all(name.startswith("ckpt-4.") for name in kept)
    assert result.summary["status"] == "completed"


def test_nothing_restorable_is_refused_not_restarted(run_copy, capsys):
    ck = run_copy / "checkpoints"
    for step in (1, 2, 3, 4):
        _flip_bytes_of(ck / f"ckpt-{step}.data-00000-of-00001")
    before = sorted(os.listdir(ck))
    history = (run_copy / "history.csv").read_bytes()
    with pytest.raises(TrainingError, match="none of them can be restored") as info:
        _fit(run_copy, 2)
    assert not isinstance(info.value, RunFailedError)  # bad input: exit 2 from the CLI
    assert "\n" not in str(info.value) and "ckpt-4 corrupt" in str(info.value)
    assert sorted(os.listdir(ck)) == before
    assert (run_copy / "history.csv").read_bytes() == history
    code, err = _cli(run_copy, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "none of them can be restored" in err
    assert sorted(os.listdir(ck)) == before


def _cli(run, capsys):
    """`reszoo train` with the options of RUN and a second epoch: (exit code, stderr)."""
    from reszoo.cli import main

    flags = ["--steps-per-epoch", "4", "--batch-size", "8", "--precision", "float32"]
    flags += ["--checkpoint-every", "1", "--epochs", "2", "--quiet"]
    for key, value in [
        ("examples", 32),
        ("validation_split", 0),
        ("overrides.depths", "[1,1,1]"),
        ("steps_per_execution", 1),
        ("keep_checkpoints", 10),
    ]:
        flags += ["--set", f"{key}={value}"]
    code = main(["train", "resnet20", "synthetic", "--output", str(run), *flags])
    return code, capsys.readouterr().err


def _flip_bytes_of(data):
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))


def test_readable_checkpoint_of_another_model_stays_a_mismatch(run_copy):
    import keras

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    prefix = str(run_copy / "checkpoints" / "ckpt-5")
    tf.train.Checkpoint(model=other, step=tf.Variable(5, dtype=tf.int64)).write(prefix)
    with pytest.raises(TrainingError, match="does not match") as info:
        _fit(run_copy, 2)
    assert "ckpt-5" in str(info.value)
