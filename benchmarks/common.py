"""Shared helpers of the reszoo benchmarks: quiet TensorFlow, the machine's description, timing,
tables, and recording results: each run is appended to benchmarks/history/<benchmark>.md and
becomes its configuration's table on the results page benchmarks/RESULTS.md (plus
benchmarks/latest.json, the last number each benchmark measured, which others may reuse).

Import this module BEFORE tensorflow/keras (it sets TF_CPP_MIN_LOG_LEVEL).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import platform
import re
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
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


# --------------------------------------------------------------------------- results page
# RESULTS.md holds, per benchmark, the latest run of each configuration ("slot"); every run,
# dated, is appended to history/<benchmark>.md. A new benchmark is one entry here.

BENCHMARKS = {  # key -> (heading on the results page, goal; "" when there is none)
    "training": (
        "Training throughput (bench_training)",
        "reszoo.fit with precision auto >= 1.3x plain Keras float32 (resnet20 and resnet50), "
        "and never slower than Keras in the same precision",
    ),
    "inference": ("Inference: Keras model vs exported SavedModel (bench_inference)", ""),
    "data": (
        "tf.data pipeline alone (bench_data)",
        "CIFAR pipeline >= 5x resnet20 training; ImageNet-style pipeline >= 1.5x resnet50 training",
    ),
    "ceiling": (
        "Ceiling: matmul GFLOP/s and achieved training FLOP/s (bench_ceiling)",
        "resnet20 training >= 40% of the bfloat16 matmul ceiling",
    ),
    "time_to_accuracy": (
        "Time to accuracy: resnet20 on the CIFAR-10 training JPEGs (bench_time_to_accuracy)",
        "none set for these short schedules; He et al. 2016 report 91.25% CIFAR-10 test "
        "accuracy for resnet20 after 182 epochs",
    ),
    "layers": ("Single-layer choices (bench_layers)", "reszoo's choice faster (speed-up > 1x)"),
    "profile_step": ("Where the step time goes (profile_step)", ""),
    "export_formats": ("Export formats: size, latency, throughput (bench_export_formats)", ""),
}
HISTORY_DIR = "history"
PAGE_HEADER = (
    "# reszoo benchmark results\n\n"
    "The latest run of each benchmark configuration, with its date, machine and command, "
    "rewritten by the scripts in benchmarks/ (see README.md there). Every run, dated, is in "
    "history/. Note: {note}.\n"
)


@dataclasses.dataclass(frozen=True)
class Run:
    """One benchmark run as recorded: what it was, when, where, how, and its tables."""

    title: str
    date: str
    machine: str
    command: str
    note: str
    body: str


def describe_run(title: str, body: str, argv=None) -> Run:
    """The run just measured, described with this machine and this process's command line."""
    m = machine_description()
    versions = ", ".join(
        f"{k} {m[k]}" for k in ("python", "tensorflow", "keras", "jax", "torch") if k in m
    )
    command = "python " + " ".join(
        [os.path.relpath(sys.argv[0], os.path.dirname(HERE))]
        + (sys.argv[1:] if argv is None else list(argv))
    )
    machine = f"{m['cpu']}, {m['cores']} cores (bf16: {m['bf16']}); {versions}"
    return Run(title, m["date"], machine, command, m["note"], body.rstrip())


def history_entry(run: Run) -> str:
    """The dated record appended to history/<benchmark>.md."""
    return (
        f"\n## {run.title} ({run.date})\n\n"
        f"Machine: {run.machine}.  \n"
        f"Command: `{run.command}`  \n"
        f"Note: {run.note}.\n\n{run.body}\n"
    )


def record_results(
    benchmark: str,
    title: str,
    body: str,
    *,
    slot="latest",
    current=True,
    argv=None,
    record=True,
    root=HERE,
) -> Run:
    """Print a run; unless record is False (--no-record), append it to history/<benchmark>.md
    and, when it is current (not a --quick check or a one-off experiment), make it the ``slot``
    table of the benchmark's section in RESULTS.md."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {benchmark!r}: add it to common.BENCHMARKS")
    run = describe_run(title, body, argv)
    print(history_entry(run))
    if record:
        append_history(root, benchmark, run)
        if current:
            update_results_page(root, benchmark, slot, run)
    return run


def append_history(root: str, benchmark: str, run: Run) -> None:
    path = os.path.join(root, HISTORY_DIR, f"{benchmark}.md")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        heading = BENCHMARKS[benchmark][0]
        _write_atomically(
            path,
            f"# History: {heading}\n\nEvery recorded run, dated, newest last. The current "
            "figures are in ../RESULTS.md.\n",
        )
    with open(path, "a") as f:
        f.write(history_entry(run))


def slot_block(slot: str, run: Run) -> str:
    """One configuration's current table on the results page, between markers."""
    return (
        f"<!-- slot: {slot} -->\n### {slot}\n\n"
        f"Latest: {run.date}, {run.title}.  \n"
        f"Machine: {run.machine}.  \n"
        f"Command: `{run.command}`\n\n{run.body}\n<!-- /slot -->\n"
    )


def section_text(benchmark: str, blocks: list[str]) -> str:
    heading, goal = BENCHMARKS[benchmark]
    about = f"Goal: {goal or 'none'}. Every run: [{HISTORY_DIR}/{benchmark}.md]"
    about += f"({HISTORY_DIR}/{benchmark}.md)."
    inner = "\n".join(blocks)
    return (
        f"<!-- section: {benchmark} -->\n## {heading}\n\n{about}\n\n{inner}\n"
        f"<!-- /section: {benchmark} -->"
    )


_SLOT = re.compile(r"<!-- slot: (.+?) -->\n.*?<!-- /slot -->\n", re.DOTALL)


def _section_pattern(benchmark: str):
    key = re.escape(benchmark)
    return re.compile(rf"<!-- section: {key} -->\n.*?<!-- /section: {key} -->", re.DOTALL)


def update_results_page(root: str, benchmark: str, slot: str, run: Run) -> None:
    """Rewrite one slot of one section of RESULTS.md; the rest of the page is kept as it is."""
    path = os.path.join(root, "RESULTS.md")
    try:
        with open(path) as f:
            page = f.read()
    except FileNotFoundError:
        page = PAGE_HEADER.format(note=run.note)
    found = _section_pattern(benchmark).search(page)
    blocks = {m.group(1): m.group(0) for m in _SLOT.finditer(found.group(0))} if found else {}
    blocks[slot] = slot_block(slot, run)
    section = section_text(benchmark, list(blocks.values()))
    if found:
        page = page[: found.start()] + section + page[found.end() :]
    else:
        page = page.rstrip("\n") + "\n\n" + section + "\n"
    _write_atomically(path, page)


def _write_atomically(path: str, text: str) -> None:
    """Readers never see half a file: write beside it, then rename over it."""
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


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
