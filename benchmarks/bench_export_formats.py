"""Export formats on this CPU: file size, batch-1 latency and batch-32 throughput, next to the
SavedModel, all measured in one run.

For each model (resnet20 at 32x32, resnet50 at 224x224; built untrained, float32) this writes
the TF Serving SavedModel (reszoo.serving.export, run with tf.saved_model.load's
serving_default) and every Keras-exporter format (reszoo.serving.keras_formats: LiteRT in each
quantization, ONNX, OpenVINO), each run by its own runtime with as many threads as the machine
has cores. Inputs are random pixels 0..255 (int8 calibrates on 32 of them: the speed of an int8
model does not depend on what it was calibrated on). The variants are interleaved round by
round and each number is a median over rounds, because the machine is shared and noisy; the
ratios to the SavedModel are the numbers to read.

    python benchmarks/bench_export_formats.py [--models resnet20,resnet50] [--rounds 5] [--quick]

Prints the table; records it, with the machine and the command, in benchmarks/RESULTS.md
(the models' current table) and benchmarks/history/export_formats.md (every run).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common  # first: it quiets TensorFlow and puts the repository on sys.path
import numpy as np
import tensorflow as tf

import reszoo
from reszoo.serving import export as export_saved_model
from reszoo.serving.keras_formats import KERAS_FORMATS

SIZES = {"resnet20": 32, "resnet50": 224}
BATCH = 32
VARIANTS = {  # row name -> (format, options)
    "litert float32": ("litert", {"quantize": "float32"}),
    "litert float16": ("litert", {"quantize": "float16"}),
    "litert dynamic_int8": ("litert", {"quantize": "dynamic_int8"}),
    "litert int8": ("litert", {"quantize": "int8"}),
    "onnx": ("onnx", {}),
    "openvino": ("openvino", {}),
}


def saved_model_predictor(model, root: Path):
    """(predict, size in bytes) of the TF Serving export, run as TF Serving would."""
    path = export_saved_model(model, root / "saved_model")
    signature = tf.saved_model.load(str(path)).signatures["serving_default"]
    return (lambda x: signature(images=tf.constant(x))["logits"].numpy()), directory_size(path)


def format_predictor(model, root: Path, variant: str, calibration: np.ndarray):
    fmt_name, options = VARIANTS[variant]
    fmt = KERAS_FORMATS[fmt_name]
    target = root / variant.replace(" ", "-")
    options = {**options, "representative_data": calibration}
    files = fmt.write(model, target, metadata={"model_name": model.name}, options=options)
    artifact_bytes = sum(f.stat().st_size for f in files if f.name in fmt.artifact_files)
    predict = fmt.load(target / fmt.file_name, threads=os.cpu_count())
    return (lambda x: predict(x)["logits"]), artifact_bytes


def directory_size(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def time_round(predict, single: np.ndarray, batch: np.ndarray, calls: int) -> tuple[float, float]:
    """(median batch-1 latency in ms, batch throughput in images/s) over one round."""
    latencies = []
    for _ in range(calls):
        start = time.perf_counter()
        predict(single)
        latencies.append(time.perf_counter() - start)
    start = time.perf_counter()
    predict(batch)
    return 1000 * statistics.median(latencies), len(batch) / (time.perf_counter() - start)


def measure_model(name: str, args, root: Path) -> list[list]:
    size = SIZES[name]
    model = reszoo.build(name)
    rng = np.random.default_rng(0)
    pixels = rng.uniform(0, 255, (BATCH, size, size, 3)).astype(np.float32)
    predictors = {"saved_model (TF Serving)": saved_model_predictor(model, root / name)}
    for variant in VARIANTS:
        print(f"{name}: exporting {variant}", file=sys.stderr, flush=True)
        predictors[variant] = format_predictor(model, root / name, variant, pixels)
    timings = {variant: [] for variant in predictors}
    for predict, _ in predictors.values():  # warm-up: first calls allocate and compile
        predict(pixels[:1])
        predict(pixels)
    for _ in range(args.rounds):
        for variant, (predict, _) in predictors.items():
            timings[variant].append(time_round(predict, pixels[:1], pixels, args.calls))
    return summarize(name, predictors, timings)


def summarize(name: str, predictors: dict, timings: dict) -> list[list]:
    baseline = None
    rows = []
    for variant, (_, size_bytes) in predictors.items():
        latency = statistics.median(t[0] for t in timings[variant])
        throughput = statistics.median(t[1] for t in timings[variant])
        baseline = baseline or (size_bytes, latency, throughput)
        rows.append(
            [
                name,
                variant,
                size_bytes / 1e6,
                size_bytes / baseline[0],
                latency,
                baseline[1] / latency,
                throughput,
                throughput / baseline[2],
            ]
        )
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="resnet20,resnet50")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (medians)")
    parser.add_argument("--calls", type=int, default=20, help="batch-1 calls per round")
    parser.add_argument("--quick", action="store_true", help="resnet20 only, 3 rounds")
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.rounds = "resnet20", 3
    rows = []
    with tempfile.TemporaryDirectory(prefix="reszoo-bench-formats-") as tmp:
        for name in args.models.split(","):
            rows += measure_model(name, args, Path(tmp))
    headers = [
        "model",
        "format",
        "size MB",
        "size x",
        "batch-1 ms",
        "speed-up x",
        f"batch-{BATCH} img/s",
        "throughput x",
    ]
    note = (
        "- Ratios (x) are to the SavedModel of the same model, measured in the same rounds; "
        "untrained weights, random pixels."
    )
    common.record_results(
        "export_formats",
        "Export formats: size, latency, throughput (bench_export_formats)",
        common.table(headers, rows) + "\n\n" + note,
        slot=args.models,
        current=not args.quick,
        argv=argv,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
