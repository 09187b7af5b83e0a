"""collective_timeout: a multi-worker peer that stays alive but stops stepping fails the run.

Without a bound, TensorFlow's collectives wait forever for a peer whose process is alive (its
coordination-service heartbeats still answer) but whose training loop no longer steps. With
``collective_timeout`` the waiting worker's collective fails after that many seconds and the run
ends as a lost worker: exit 1 with one line. The stall is made inside the peer's main thread
(SIGUSR1 there sleeps), so its TensorFlow threads, heartbeats included, keep running; a SIGSTOP
freezes those too and is already caught by the heartbeat (tests/test_robustness_faults.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, free_ports

from reszoo.errors import ConfigError
from reszoo.training import recipes

# python -m reszoo.train, with SIGUSR1 stalling the main thread (the training loop) for good.
STALLABLE_TRAIN = """
import runpy, signal, sys, time
signal.signal(signal.SIGUSR1, lambda *_: time.sleep(10**6))
sys.argv = ["reszoo.train"] + sys.argv[1:]
runpy.run_module("reszoo.train", run_name="__main__", alter_sys=True)
"""


def _resolve(**options):
    return recipes.resolve(None, "synthetic", options=options)


def test_default_bounds_collectives_and_bad_values_are_refused():
    assert _resolve()["collective_timeout"] == 600
    assert _resolve(collective_timeout=10)["collective_timeout"] == 10
    unbounded = recipes.resolve(None, "synthetic", config={"collective_timeout": None})
    assert unbounded["collective_timeout"] is None
    for bad in (0, -5, "ten", True, float("inf")):
        with pytest.raises(ConfigError, match="collective_timeout must be a number > 0"):
            _resolve(collective_timeout=bad)


def test_a_run_directory_written_before_the_option_still_resumes():
    new = _resolve(collective_timeout=30)
    old = {k: v for k, v in new.items() if k != "collective_timeout"}
    assert recipes.config_differences(old, new) == []
    assert recipes.config_differences({**old, "collective_timeout": 600}, new) == []


def _start_workers(out: Path, timeout: int):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env["TF_CONFIG"] = json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}
        )
        args = (
            "resnet20 synthetic --epochs 1 --steps-per-epoch 400 --batch-size 16 --precision float32"
            " --strategy multi_worker --checkpoint-every 10 --quiet --set overrides.depths=[1,1,1]"
            f" --set steps_per_execution=1 --set collective_timeout={timeout} --output {out}"
        ).split()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", STALLABLE_TRAIN, *args],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


def _wait_until_stepping(out: Path, procs, limit=300):
    """Both workers have taken steps: the chief has written its first checkpoint."""
    deadline = time.time() + limit
    while time.time() < deadline and all(p.poll() is None for p in procs):
        if list((out / "checkpoints").glob("ckpt-*.index")):
            return
        time.sleep(0.05)
    pytest.fail(f"the workers did not start stepping: {[p.stderr.read()[-2000:] for p in procs]}")


@pytest.mark.slow
def test_a_stalled_peer_fails_the_other_worker_as_lost(tmp_path):
    out = tmp_path / "run"
    procs = _start_workers(out, timeout=10)
    try:
        _wait_until_stepping(out, procs)
        time.sleep(1.0)
        procs[1].send_signal(signal.SIGUSR1)  # alive, heartbeats answering, no more steps
        try:
            _, stderr = procs[0].communicate(timeout=120)  # bounds the suite, not the feature
        except subprocess.TimeoutExpired:
            pytest.fail("worker 0 still waited 120 s after its peer stalled")
        assert procs[1].poll() is None, "the stalled worker must still be alive"
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    lines = stderr.strip().splitlines()
    assert procs[0].returncode == 1, stderr[-3000:]
    assert "run failed: another worker" in lines[-1], stderr[-3000:]
    assert "died or stopped answering" in lines[-1]
    assert "Traceback" not in stderr
    assert json.loads((out / "config.json").read_text())["collective_timeout"] == 10
