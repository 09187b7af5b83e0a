"""Inference: the Keras model against its exported SavedModel.

For resnet20 (32x32) and resnet50 (224x224), each built untrained by ``reszoo.build`` under a
precision policy (float32 and mixed_bfloat16), then exported with ``reszoo.export.export`` and
loaded back with ``tf.saved_model.load`` (what TF Serving runs, without Keras or reszoo):

* batch-1 latency (ms, median of many single-image calls) and
* batch-64 throughput (images/s, median over repeats),

for three callers: ``model.predict_on_batch(x)`` (Keras, what a user calls), ``model(x)`` wrapped in
a ``tf.function`` (Keras, the fastest Keras path), and the SavedModel's ``serving_default``
signature (float32 pixels in; its outputs also include probabilities and classes). Inputs are
random pixels 0..255. Callers are interleaved repeat by repeat (the machine is shared).

    python benchmarks/bench_inference.py [--quick] [--models resnet20] [--precisions float32]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import common
import keras
import numpy as np
import tensorflow as tf

import reszoo
from reszoo.serving import export

SIZES = {"resnet20": 32, "resnet50": 224}


def time_calls(fn, x, n):
    fn(x)  # warm-up (tracing)
    fn(x)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        out = fn(x)
        _ = np.asarray(out["logits"] if isinstance(out, dict) else out)
        times.append(time.perf_counter() - t0)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--models", default="resnet20,resnet50")
    p.add_argument("--precisions", default="float32,mixed_bfloat16")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    rows = []
    tmp = tempfile.mkdtemp(prefix="reszoo-bench-export-")
    try:
        for name in args.models.split(","):
            size = SIZES[name]
            for policy in args.precisions.split(","):
                previous = keras.config.dtype_policy()
                keras.config.set_dtype_policy(policy)
                try:
                    model = reszoo.build(name)
                finally:
                    keras.config.set_dtype_policy(previous)
                path = export(model, os.path.join(tmp, f"{name}-{policy}"), version=1)
                loaded = tf.saved_model.load(str(path))
                serving = loaded.signatures["serving_default"]
                key = list(serving.structured_input_signature[1])[0]
                compiled = tf.function(lambda x, m=model: m(x, training=False))
                callers = {
                    "keras predict_on_batch": lambda x, m=model: m.predict_on_batch(x),
                    "keras tf.function(model)": compiled,
                    "SavedModel serving_default": lambda x, s=serving, k=key: s(**{k: x}),
                }
                rng = np.random.default_rng(0)
                x1 = tf.constant(rng.uniform(0, 255, (1, size, size, 3)).astype("float32"))
                x64 = tf.constant(rng.uniform(0, 255, (64, size, size, 3)).astype("float32"))
                small = name == "resnet20"
                n1 = (20 if args.quick else 50) if small else (5 if args.quick else 10)
                n64 = (5 if args.quick else 10) if small else (1 if args.quick else 2)
                lat = {c: [] for c in callers}
                thr = {c: [] for c in callers}
                rounds = 3
                for _ in range(rounds):  # interleave the callers
                    for c, fn in callers.items():
                        lat[c] += time_calls(fn, x1, n1)
                        thr[c] += [64 / t for t in time_calls(fn, x64, n64)]
                base_lat = common.median(lat["keras tf.function(model)"])
                base_thr = common.median(thr["keras tf.function(model)"])
                for c in callers:
                    ms = common.median(lat[c]) * 1e3
                    ips = common.median(thr[c])
                    rows.append(
                        [
                            name,
                            policy,
                            c,
                            ms,
                            f"{ms / (base_lat * 1e3):.2f}x",
                            ips,
                            f"{ips / base_thr:.2f}x",
                        ]
                    )
                    common.save_latest(f"inference/{name}/{policy}/{c}/batch1_ms", ms)
                    common.save_latest(f"inference/{name}/{policy}/{c}/batch64_ips", ips)
                    print("  ", rows[-1], flush=True)
                del loaded, serving, model
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    headers = [
        "model",
        "precision",
        "caller",
        "batch-1 latency ms (median)",
        "vs tf.function(model)",
        "batch-64 img/s (median)",
        "vs tf.function(model)",
    ]
    body = common.table(headers, rows)
    common.record_results(
        "inference",
        "Inference: Keras model vs exported SavedModel (bench_inference)",
        body,
        slot=f"models {args.models}; precisions {args.precisions}",
        current=not args.quick,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
