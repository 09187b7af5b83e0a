"""Shared helpers of the reszoo benchmarks: quiet TensorFlow, the machine's description, timing,
tables, and appending results to benchmarks/RESULTS.md (plus benchmarks/latest.json, the last
number each benchmark measured, which other benchmarks may reuse).

Import this module BEFORE tensorflow/keras (it sets TF_CPP_MIN_LOG_LEVEL).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS_MD = os.path.join(HERE, "RESULTS.md")
LATEST_JSON = os.path.join(HERE, "latest.json")
if os.path.dirname(HERE) not in sys.path:  # run as `python benchmarks/bench_x.py` from a checkout
    sys.path.insert(0, os.path.dirname(HERE))

SHARED_NOTE = (
    "shared machine: other engineers run tests on it now and then, so absolute numbers "
    "are noisy; compared variants are measured in the same run, back to back, and the "
    "ratios are what to read"
)


def cpu_model() -> str:
    from reszoo.training.devices import (
        cpu_name,
    )  # the same description fit writes into summary.json

    return cpu_name()


def cpu_flags() -> set:
    from reszoo.training.devices import cpu_flags as flags

    return flags()


def machine_description() -> dict:
    out = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "bf16": "avx512_bf16" in cpu_flags() or "amx_bf16" in cpu_flags(),
        "python": platform.python_version(),
        "note": SHARED_NOTE,
    }
    for mod, dist in (
        ("tensorflow", "tensorflow"),
        ("keras", "keras"),
        ("jax", None),
        ("torch", None),
    ):
        if mod in sys.modules:
            out[mod] = getattr(sys.modules[mod], "__version__", "?")
        elif dist:
            try:
                out[mod] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                try:
                    out[mod] = importlib.metadata.version(dist + "-cpu")
                except importlib.metadata.PackageNotFoundError:
                    pass
    return out


def timed(fn, *, warmup=1, repeats=3):
    """Run fn() warmup times untimed, then repeats times; the list of wall times (s)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def median(values):
    return statistics.median(values)


def table(headers, rows) -> str:
    """A GitHub-markdown table (also readable as plain text)."""

    def fmt(v):
        if isinstance(v, float):
            if v == 0 or abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 10:
                return f"{v:.1f}"
            return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
        return str(v)

    cells = [[fmt(v) for v in r] for r in rows]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(vals):
        return "| " + " | ".join(str(v).ljust(w) for v, w in zip(vals, widths)) + " |"

    out = [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in cells]
    return "\n".join(out)


def append_results(title: str, body: str, *, argv=None, record: bool = True) -> None:
    """Print and append a section (title, machine description, body) to RESULTS.md.

    record=False (the scripts' --no-record) only prints the body.
    """
    if not record:
        print(body)
        return
    m = machine_description()
    versions = ", ".join(
        f"{k} {m[k]}" for k in ("python", "tensorflow", "keras", "jax", "torch") if k in m
    )
    cmd = "python " + " ".join(
        [os.path.relpath(sys.argv[0], os.path.dirname(HERE))]
        + (sys.argv[1:] if argv is None else argv)
    )
    text = (
        f"\n## {title} ({m['date']})\n\n"
        f"Machine: {m['cpu']}, {m['cores']} cores (bf16: {m['bf16']}); {versions}.  \n"
        f"Command: `{cmd}`  \n"
        f"Note: {m['note']}.\n\n{body.rstrip()}\n"
    )
    print(text)
    if not os.path.exists(RESULTS_MD):
        with open(RESULTS_MD, "w") as f:
            f.write(
                "# reszoo benchmark results\n\nAppended by the scripts in benchmarks/ "
                "(newest last). See benchmarks/README.md for what each measures.\n"
            )
    with open(RESULTS_MD, "a") as f:
        f.write(text)


def save_latest(key: str, value) -> None:
    """Remember a measured number (benchmarks/latest.json) for other benchmarks to reuse."""
    data = load_latest()
    data[key] = {"value": value, "date": datetime.datetime.now().isoformat(timespec="seconds")}
    with open(LATEST_JSON, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)


def load_latest(key: str | None = None):
    try:
        with open(LATEST_JSON) as f:
            data = json.load(f)
    except (OSError, ValueError):
        data = {}
    if key is None:
        return data
    entry = data.get(key)
    return None if entry is None else entry["value"]


def training_flops_per_image(macs: int) -> float:
    """Forward + backward ~= 3 x forward; a multiply-accumulate is 2 FLOPs."""
    return 3.0 * 2.0 * float(macs)
