"""Items 1 and 2 of the robustness battery (README, Robustness): kill -9 during training and a lost multi-worker peer.

1. A training process killed with SIGKILL (from outside at random moments, and from inside at two
   points of a checkpoint write: data written but the state file not yet updated, and half-way
   through the state file's atomic write): after each kill the checkpoint directory reads and
   restores; rerunning the same command completes the planned steps; with 7 kills the final
   accuracy on digits is within noise of an uninterrupted run (slow).
2. MultiWorkerMirroredStrategy, 2 workers on 127.0.0.1 (python -m reszoo.train): a worker killed
   (SIGKILL) or frozen (SIGSTOP) mid-epoch makes the other exit 1 within a bounded time with a
   one-line "run failed: another worker ... died or stopped answering" (TF's coordination service
   notices within seconds); starting both again resumes from the last checkpoint.

The kill -9 after the first checkpoint (not during a write) is tests/test_fit.py::
test_kill_minus_9_then_rerun_completes_planned_steps.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, assert_checkpoint_restores, free_ports

tf = pytest.importorskip("tensorflow")


CHILD = r"""
import json, os, signal, sys, time
out, mode, at, dataset, epochs, spe, batch = sys.argv[1:8]
at, epochs, batch = int(at), int(epochs), int(batch)
import tensorflow as tf
from tensorflow.python.checkpoint import checkpoint_management as cm
from tensorflow.python.lib.io import file_io

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if mode == "state":  # the checkpoint's data and index are written, its state file not yet
    original = cm.update_checkpoint_state_internal
    def patched(save_dir, model_checkpoint_path, *args, **kwargs):
        if model_checkpoint_path.endswith(f"ckpt-{at}"):
            die()
        return original(save_dir, model_checkpoint_path, *args, **kwargs)
    cm.update_checkpoint_state_internal = patched
elif mode == "atomic":  # half of the state file's temporary copy written, not renamed
    original_write = file_io.atomic_write_string_to_file
    def patched_write(filename, contents, overwrite=True):
        if os.path.basename(filename) == "checkpoint" and f'ckpt-{at}"' in contents:
            with open(filename + ".tmp0123456789abcdef", "w") as f:
                f.write(contents[: len(contents) // 2])
            die()
        return original_write(filename, contents, overwrite)
    file_io.atomic_write_string_to_file = patched_write

from reszoo.training import fit
r = fit("resnet20", dataset, epochs=epochs, steps_per_epoch=None if spe == "auto" else int(spe),
        batch_size=batch, precision="float32", overrides={"depths": [1, 1, 1]}, output_dir=out,
        checkpoint_every=1, steps_per_execution=1, verbose=0)
print("RESULT", json.dumps({"step": r.summary["global_step"], "total": r.summary["total_steps"],
                            "resumed": r.summary["resumed_from_step"],
                            "val_accuracy": r.history["val_accuracy"][-1] if r.history["val_accuracy"] else None}))
"""


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env.pop("TF_CONFIG", None)
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _child(out, mode="none", at=0, dataset="synthetic", epochs=2, spe=6, batch=8):
    return [
        sys.executable,
        "-c",
        CHILD,
        str(out),
        mode,
        str(at),
        dataset,
        str(epochs),
        str(spe),
        str(batch),
    ]


def _result(stdout):
    return json.loads(stdout.split("RESULT", 1)[1])


def _latest_step(out: Path):
    latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
    return None if latest is None else int(latest.rsplit("-", 1)[1])


def _kill_inside(out, mode, at, **kwargs):
    p = subprocess.run(
        _child(out, mode, at, **kwargs),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == -signal.SIGKILL, p.stderr[-3000:]
    return assert_checkpoint_restores(out)


def test_kill_9_during_a_checkpoint_write_then_rerun_completes(tmp_path):
    out = tmp_path / "run"
    # killed after ckpt-3's files were written, before the state file named it: the files on
    # disk decide, so ckpt-3 is what the rerun resumes from
    assert _kill_inside(out, "state", 3) == 3
    assert not (out / "summary.json").exists()
    p = subprocess.run(
        _child(out), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300
    )
    assert p.returncode == 0, p.stderr[-3000:]
    result = _result(p.stdout)
    assert result["step"] == result["total"] == 12 and result["resumed"] == 3
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
    assert assert_checkpoint_restores(out) == 12


@pytest.mark.slow
def test_seven_kills_then_accuracy_within_noise_of_an_uninterrupted_run(tmp_path):
    pytest.importorskip("sklearn")
    common = dict(dataset="digits", epochs=6, spe="auto", batch=64)
    clean = subprocess.run(
        _child(tmp_path / "clean", **common),
        cwd=REPO,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert clean.returncode == 0, clean.stderr[-3000:]
    clean = _result(clean.stdout)
    out = tmp_path / "killed"
    rng = random.Random(6)
    steps_seen = []
    # two kills inside a checkpoint write, at steps reached after a few external kills
    plan = ["outside", "outside", "state", "outside", "atomic", "outside", "outside"]
    for fault in plan:
        start = _latest_step(out) or 0
        if fault in ("state", "atomic"):
            steps_seen.append(_kill_inside(out, fault, start + 3, **common))
            continue
        p = subprocess.Popen(
            _child(out, **common),
            cwd=REPO,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.time() + 240
            while time.time() < deadline and p.poll() is None:  # wait for a new checkpoint
                latest = _latest_step(out) if (out / "checkpoints").exists() else None
                if latest is not None and latest > start:
                    break
                time.sleep(0.02)
            assert p.poll() is None, p.stderr.read().decode()[-3000:]
            time.sleep(rng.uniform(0.0, 1.5))  # a random moment: a step or a checkpoint write
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=60)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        steps_seen.append(assert_checkpoint_restores(out))
    assert steps_seen == sorted(steps_seen) and steps_seen[-1] < clean["total"], steps_seen
    final = subprocess.run(
        _child(out, **common), cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600
    )
    assert final.returncode == 0, final.stderr[-3000:]
    final = _result(final.stdout)
    assert final["step"] == final["total"] == clean["total"]
    assert final["resumed"] == steps_seen[-1]
    print(
        f"\nrobustness: kill steps {steps_seen}; accuracy uninterrupted "
        f"{clean['val_accuracy']}, killed 7 times {final['val_accuracy']}"
    )
    assert clean["val_accuracy"] > 0.6, clean
    assert abs(final["val_accuracy"] - clean["val_accuracy"]) <= 0.12, (clean, final)


# ----------------------------------------------------------------------------- multi-worker


def _start_workers(out: Path, steps: int):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(2)]}
    procs = []
    for i in range(2):
        env = _env(
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "reszoo.train",
                    "resnet20",
                    "synthetic",
                    "--epochs",
                    "1",
                    "--steps-per-epoch",
                    str(steps),
                    "--batch-size",
                    "16",
                    "--precision",
                    "float32",
                    "--strategy",
                    "multi_worker",
                    "--checkpoint-every",
                    "10",
                    "--quiet",
                    "--output",
                    str(out),
                    "--set",
                    "overrides.depths=[1,1,1]",
                    "--set",
                    "steps_per_execution=1",
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    return procs


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSTOP], ids=["SIGKILL", "SIGSTOP"])
def test_multi_worker_lost_peer_fails_fast_then_both_resume(tmp_path, sig):
    out = tmp_path / "run"
    steps = 150
    procs = _start_workers(out, steps)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and all(p.poll() is None for p in procs):
            if (out / "checkpoints").exists() and _latest_step(out):
                break
            time.sleep(0.05)
        assert all(p.poll() is None for p in procs), [p.stderr.read()[-2000:] for p in procs]
        time.sleep(1.0)
        procs[1].send_signal(sig)
        killed_at = time.time()
        try:
            _, stderr = procs[0].communicate(timeout=120)  # bounded: no endless hang
        except subprocess.TimeoutExpired:
            pytest.fail("the surviving worker hung for 120 s after its peer was lost")
        waited = time.time() - killed_at
        print(f"\nrobustness: {sig.name} of worker 1 -> worker 0 stopped after {waited:.1f} s")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    lines = stderr.strip().splitlines()
    assert procs[0].returncode == 1, stderr[-3000:]
    assert lines and "run failed: another worker" in lines[-1], stderr[-3000:]
    assert "restart every worker with the same command to resume from" in lines[-1]
    assert "Traceback" not in stderr
    resume_from = _latest_step(out)
    assert resume_from and resume_from < steps
    assert_checkpoint_restores(out)
    # both again: resumes from the last checkpoint and completes
    procs = _start_workers(out, steps)
    try:
        for p in procs:
            _, err = p.communicate(timeout=300)
            assert p.returncode == 0, err[-3000:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == steps
    assert summary["resumed_from_step"] == resume_from
