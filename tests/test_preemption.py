"""Preemption: SIGTERM and SIGINT save a checkpoint, write summary.json "preempted" and stop.

The command line is run as a scheduler would: `python -m reszoo.train` on synthetic data with
far more steps than the test waits for, signalled once its first checkpoint exists; it must exit
143 (SIGTERM) or 130 (SIGINT), with a checkpoint at the step reached, and a rerun of the same
command must resume from that step. In-process, reszoo.fit raises PreemptedError at the step
boundary after the one where the signal arrived (a callback sends it), and the previous signal
handlers are back afterwards.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO

tf = pytest.importorskip("tensorflow")

import keras  # noqa: E402

from reszoo.errors import PreemptedError  # noqa: E402

TINY = ["--set", "overrides.depths=[1,1,1]", "--set", "examples=32", "--set", "validation_split=0"]
COMMAND = [
    *("resnet20", "synthetic", "--epochs", "1000", "--steps-per-epoch", "50"),
    *("--batch-size", "8", "--precision", "float32", "--checkpoint-every", "2", "--quiet"),
    *("--set", "steps_per_execution=1", *TINY),
]
HANG_GUARD_S = 600  # only against a hung child; nothing is timed


def _start(out):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("TF_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "reszoo.train", *COMMAND, "--output", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _latest_step(out):
    """The step of the newest checkpoint named in the state file, or None."""
    try:
        text = (out / "checkpoints" / "checkpoint").read_text()
    except OSError:
        return None
    match = re.search(r'^model_checkpoint_path: "ckpt-(\d+)"', text, re.M)
    return int(match[1]) if match else None


def _signal_after_checkpoint_beyond(proc, out, step, signum):
    """Wait until a checkpoint after ``step`` exists (training is under way), then signal."""
    deadline = time.monotonic() + HANG_GUARD_S
    while (_latest_step(out) or 0) <= step:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never wrote a checkpoint"
        time.sleep(0.2)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=HANG_GUARD_S)
    return proc.returncode, err


def _checkpoint_step(out):
    latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
    return int(tf.train.load_checkpoint(latest).get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.mark.parametrize("signum,status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_cli_saves_and_exits_with_the_signal_status_then_resumes(tmp_path, signum, status):
    out = tmp_path / "run"
    rc, err = _signal_after_checkpoint_beyond(_start(out), out, 0, signum)
    assert rc == status, err
    summary = json.loads((out / "summary.json").read_text())
    reached = summary["global_step"]
    assert summary["status"] == "preempted"
    assert 0 < reached < summary["total_steps"]
    assert _checkpoint_step(out) == reached
    assert f"preempted by {signal.Signals(signum).name} at global step {reached}" in err
    assert len(err.strip().splitlines()) == 1, err

    if signum != signal.SIGTERM:
        return
    rc, err = _signal_after_checkpoint_beyond(_start(out), out, reached, signum)
    assert rc == status, err
    again = json.loads((out / "summary.json").read_text())
    assert again["resumed_from_step"] == reached
    assert again["global_step"] > reached
    assert _checkpoint_step(out) == again["global_step"]


class _SignalAt(keras.callbacks.Callback):
    """Sends ``signum`` to this process at the end of chunk ``at`` (1 step per chunk)."""

    def __init__(self, signum, at):
        super().__init__()
        self.signum, self.at, self.calls = signum, at, 0

    def on_train_batch_end(self, batch, logs=None):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), self.signum)


def test_fit_raises_preempted_error_and_restores_the_handlers(tmp_path):
    from reszoo.training import fit

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with pytest.raises(PreemptedError) as info:
        fit(
            "resnet20",
            "synthetic",
            epochs=3,
            steps_per_epoch=4,
            batch_size=8,
            examples=32,
            validation_split=0,
            precision="float32",
            overrides={"depths": [1, 1, 1]},
            steps_per_execution=1,
            output_dir=str(tmp_path / "run"),
            callbacks=[_SignalAt(signal.SIGINT, 6)],
            verbose=0,
        )
    assert info.value.exit_status == 130 and info.value.signum == signal.SIGINT
    assert {s: signal.getsignal(s) for s in before} == before
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "preempted" and summary["global_step"] == 6
    assert _checkpoint_step(tmp_path / "run") == 6


@pytest.mark.slow
def test_multi_worker_run_stops_together_when_one_worker_is_signalled(tmp_path):
    from test_robustness_faults import _start_workers

    out = tmp_path / "run"
    procs = _start_workers(out, 100_000)  # 2 workers on 127.0.0.1, a checkpoint every 10 steps
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while not _latest_step(out):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            assert time.monotonic() < deadline, "the workers never wrote a checkpoint"
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGTERM)  # only the non-chief worker is signalled
        errors = [p.communicate(timeout=HANG_GUARD_S)[1] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [p.returncode for p in procs] == [143, 143], [e[-2000:] for e in errors]
    summary = json.loads((out / "summary.json").read_text())
    reached = summary["global_step"]
    assert summary["status"] == "preempted" and _checkpoint_step(out) == reached
    for err in errors:
        assert f"preempted by SIGTERM at global step {reached}" in err, err[-2000:]
