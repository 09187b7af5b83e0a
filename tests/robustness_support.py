"""Helpers of the fault and hostile-input tests: tiny runs (resnet20 with one block per stage)
and file snapshots that show nothing was written or left behind."""

from __future__ import annotations

from pathlib import Path

TINY = {"depths": [1, 1, 1]}
TINY_SET = ["--set", "overrides.depths=[1,1,1]"]


def tiny_fit(*args, **kwargs):
    from reszoo.training import fit

    kwargs.setdefault("precision", "float32")
    kwargs.setdefault("overrides", TINY)
    kwargs.setdefault("verbose", 0)
    return fit(*args, **kwargs)


def tiny_synthetic(**kwargs):
    kwargs.setdefault("epochs", 2)
    kwargs.setdefault("steps_per_epoch", 3)
    kwargs.setdefault("batch_size", 8)
    return tiny_fit("resnet20", "synthetic", **kwargs)


def file_stamps(root: Path) -> dict:
    """relative path -> (size, mtime_ns) of every file under root."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def assert_no_leftovers(run: Path):
    names = [str(p.relative_to(run)) for p in run.rglob("*")]
    bad = [n for n in names if n.endswith(".tmp") or "_temp" in n or "-tmp" in n]
    assert not bad, bad
