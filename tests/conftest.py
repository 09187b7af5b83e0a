"""Shared test setup: quiet TensorFlow, the `slow` marker switch, and small shared helpers."""

import os
import socket
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_addoption(parser):
    parser.addoption(
        "--runslow",
        action="store_true",
        default=False,
        help="also run tests marked slow (the whole battery)",
    )


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow") or "slow" in (config.getoption("-m") or ""):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


def run_python(code: str, *, env: dict | None = None, timeout: int = 300, cwd=None):
    """Run `code` in a fresh interpreter (a clean Keras/TF state); returns the CompletedProcess."""
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd or REPO,
    )


def free_ports(count: int) -> list[int]:
    """`count` TCP ports on 127.0.0.1 that were free a moment ago (for multi-worker TF_CONFIG)."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def newest_complete_checkpoint(directory: Path) -> Path | None:
    """The prefix of the highest-numbered ckpt-N in ``directory`` whose index file and every
    data shard are on disk (what a resume starts from; the state file is not consulted)."""
    complete = []
    for index in directory.glob("ckpt-*.index"):
        number = index.name[len("ckpt-") : -len(".index")]
        shards = list(directory.glob(f"ckpt-{number}.data-*-of-*"))
        if number.isdigit() and shards:
            if len(shards) == int(shards[0].name.rsplit("-of-", 1)[1]):
                complete.append(int(number))
    return directory / f"ckpt-{max(complete)}" if complete else None


def assert_checkpoint_restores(run: Path) -> int:
    """The run's newest complete checkpoint reads tensor by tensor and restores, with reszoo's
    loader, into a model rebuilt from config.json, with finite weights; returns its step."""
    import json

    import numpy as np
    import tensorflow as tf

    import reszoo
    from reszoo.training import load_checkpoint_weights

    latest = newest_complete_checkpoint(run / "checkpoints")
    assert latest is not None, os.listdir(run / "checkpoints")
    latest = str(latest)
    reader = tf.train.load_checkpoint(latest)
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)
    build = json.loads((run / "config.json").read_text())["build"]
    model = reszoo.build(
        build["name"],
        num_classes=build["num_classes"],
        input_shape=tuple(build["input_shape"]),
        **build["overrides"],
    )
    step = load_checkpoint_weights(model, str(run))
    assert step == int(latest.rsplit("-", 1)[1])
    assert all(np.isfinite(w).all() for w in model.get_weights())
    return step
