"""Where the training step's time goes (find where the time goes before tuning).

For resnet20 (32x32, batch 128) and optionally resnet50 (224, batch 32), in float32 and
mixed_bfloat16, times (median of interleaved repeats, one synthetic batch in memory):

* ``forward``: ``model(x, training=True)`` in a tf.function;
* ``forward+backward``: the same under tf.GradientTape plus ``tape.gradient``;
* ``fit step``: reszoo.fit's own train function (``reszoo.fit.make_train_function``, one step
  per call, the recipe's SGD + L2 + LR schedule), i.e. forward + backward + optimizer;

for reszoo's model and the plain Keras model of bench_training (same architecture written with
``padding="same"``, slicing shortcuts and Keras's BatchNormalization), so the cost of the
model's own layers and of the optimizer/loop shows separately. ``--trace DIR`` also writes a
TensorFlow profiler trace of a few reszoo mixed_bfloat16 fit steps and prints (and records) the
time per TensorFlow op type summed from it: the view that found the BatchNormalization cost
(RESULTS.md). TensorFlow ships the trace's protobuf schema, so no profiler plugin is needed; the
same directory opens in TensorBoard's profile plugin / xprof for the timeline.

    python benchmarks/profile_step.py [--quick] [--resnet50] [--trace /tmp/trace]
"""

from __future__ import annotations

import argparse
import collections
import glob
import time

import common
import keras
import numpy as np
import tensorflow as tf

import reszoo
import reszoo.training.trainer as rfit
from reszoo.training import recipes
from reszoo.training.config import TrainConfig

TRACED_STEPS = 3


def build(kind, name, policy, classes):
    import bench_training as bt

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return reszoo.build(name) if kind == "reszoo" else bt.plain_keras_model(name, classes)
    finally:
        keras.config.set_dtype_policy(previous)


def callables(model, batch, size, classes, policy):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (batch, size, size, 3)).astype("float32"))
    y = tf.constant(rng.integers(0, classes, (batch,)).astype("int32"))

    @tf.function
    def forward():
        return tf.reduce_sum(tf.cast(model(x, training=True), tf.float32))

    @tf.function
    def forward_backward():
        with tf.GradientTape() as tape:
            logits = tf.cast(model(x, training=True), tf.float32)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits))
        grads = tape.gradient(loss, model.trainable_variables)
        return tf.add_n([tf.reduce_sum(tf.cast(g, tf.float32)) for g in grads])

    cfg = TrainConfig.from_dict(
        {
            **recipes.defaults(),
            "lr": 0.1,
            "kind": "cifar",
            "model": "profiled",
            "dataset": "synthetic",
            "reszoo_config_version": recipes.CONFIG_VERSION,
        }
    )
    opt, _ = rfit.make_optimizer(cfg, 100, policy)
    opt.build(model.trainable_variables)
    strategy = tf.distribute.get_strategy()
    fn = rfit.make_train_function(strategy, model, opt, cfg, batch, classes)
    it = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    one = tf.constant(1, tf.int32)
    return {
        "forward": forward,
        "forward+backward": forward_backward,
        "fit step": lambda: fn(it, one)[0],
    }


def op_time_by_type(trace_dir: str, steps: int, top: int = 15) -> list[list]:
    """[op type, ms per step, share] from a tf.profiler trace, summed over the executor's threads.

    The executor's own events (``ExecutorState::Process``, which enclose the ops) are left out,
    so shares are of op time.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    path = sorted(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    picoseconds = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if ":" in name and "::" not in name:  # "op name:OpType", not ExecutorState::
                    picoseconds[name.rsplit(":", 1)[1]] += event.duration_ps
    total = sum(picoseconds.values()) or 1
    return [
        [op, ps / 1e9 / steps, f"{100 * ps / total:.1f}%"]
        for op, ps in picoseconds.most_common(top)
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--resnet50", action="store_true")
    p.add_argument("--trace", help="write a tf.profiler trace of reszoo resnet20 steps here")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    cases = [("resnet20", 32, 128, 10)] + ([("resnet50", 224, 32, 1000)] if args.resnet50 else [])
    rows, trace_rows = [], []
    for name, size, batch, classes in cases:
        reps = (5 if args.quick else 10) if name == "resnet20" else 2
        for policy in ("float32", "mixed_bfloat16"):
            fns = {}
            for kind in ("reszoo", "plain"):
                model = build(kind, name, policy, classes)
                for part, fn in callables(model, batch, size, classes, policy).items():
                    np.asarray(fn())  # trace + warm-up
                    np.asarray(fn())
                    fns[(kind, part)] = fn
            times = {k: [] for k in fns}
            for _ in range(reps):  # interleaved
                for k, fn in fns.items():
                    t0 = time.perf_counter()
                    np.asarray(fn())
                    times[k].append(time.perf_counter() - t0)
            for part in ("forward", "forward+backward", "fit step"):
                r, pl = (common.median(times[(k, part)]) for k in ("reszoo", "plain"))
                rows.append(
                    [name, policy, part, r * 1e3, batch / r, pl * 1e3, batch / pl, f"{r / pl:.2f}x"]
                )
                print("  ", rows[-1], flush=True)
            if args.trace and name == "resnet20" and policy == "mixed_bfloat16":
                tf.profiler.experimental.start(args.trace)
                for _ in range(TRACED_STEPS):
                    np.asarray(fns[("reszoo", "fit step")]())
                tf.profiler.experimental.stop()
                print(f"  profiler trace written to {args.trace}")
                trace_rows = op_time_by_type(args.trace, TRACED_STEPS)
    headers = [
        "model",
        "precision",
        "part",
        "reszoo ms",
        "reszoo img/s",
        "plain Keras ms",
        "plain img/s",
        "reszoo/plain time",
    ]
    body = common.table(headers, rows)
    if trace_rows:
        body += (
            "\n\nreszoo resnet20 mixed_bfloat16 fit step, op time by TensorFlow op type "
            f"(tf.profiler trace of {TRACED_STEPS} steps, summed over threads):\n\n"
            + common.table(["op type", "ms per step", "share of op time"], trace_rows)
        )
    common.record_results(
        "profile_step",
        "Where the step time goes (profile_step)",
        body,
        slot="resnet20,resnet50" if args.resnet50 else "resnet20",
        current=not args.quick,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
