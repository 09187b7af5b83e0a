"""Single-layer choices, forward + backward, in one process (keep what measures faster).

Each row times one layer's forward and backward pass in a tf.function on resnet20-sized
activations (batch 128, bfloat16 unless --float32), the alternative and reszoo's choice
interleaved round by round, and checks that both compute the same gradient:

* option-A shortcut: strided slice + channel pad (the usual way) vs reszoo's one 1x1 conv with a
  0/1 placement kernel (``reszoo.layers.Shortcut``);
* BatchNormalization + ReLU in training: ``keras.layers.BatchNormalization`` vs
  ``reszoo.batchnorm.FusedBatchNormalization``;
* layout: a 3x3 conv's forward and both gradients with channels-first (NCHW) tensors vs the
  channels-last (NHWC) layout reszoo and Keras use (the layer's output gradient and the
  kernel's are both computed; the kernel's is compared).

    python benchmarks/bench_layers.py [--quick] [--float32] [--no-record]
"""

from __future__ import annotations

import argparse
import time

import common
import keras
import numpy as np
import tensorflow as tf

from reszoo import layers as L
from reszoo.batchnorm import FusedBatchNormalization


def timed_gradient(fn, x, upstream):
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.cast(fn(x), tf.float32) * upstream)
        return tape.gradient(loss, x)

    return step


def cases(policy):
    dtype = tf.bfloat16 if policy == "mixed_bfloat16" else tf.float32
    rng = np.random.default_rng(0)
    x16 = tf.cast(rng.normal(size=(128, 32, 32, 16)).astype("float32"), dtype)

    def slice_and_pad(x):
        return tf.pad(x[:, ::2, ::2, :], [[0, 0], [0, 0], [0, 0], [8, 8]])

    shortcut = L.Shortcut("A", 32, strides=2, dtype=policy)
    up_shortcut = tf.constant(rng.normal(size=(128, 16, 16, 32)).astype("float32"))
    norms = []
    for cls in (keras.layers.BatchNormalization, FusedBatchNormalization):
        norm = cls(momentum=0.9, epsilon=1e-5, dtype=policy)
        norm.build(x16.shape)
        norms.append(norm)
    up_norm = tf.constant(rng.normal(size=(128, 32, 32, 16)).astype("float32"))
    kernel = tf.Variable(rng.normal(0, 0.1, (3, 3, 16, 16)).astype("float32"))
    up_conv = rng.normal(size=(128, 32, 32, 16)).astype("float32")

    def conv_step(data_format):
        images = x16 if data_format == "NHWC" else tf.transpose(x16, [0, 3, 1, 2])
        upstream = tf.constant(up_conv if data_format == "NHWC" else up_conv.transpose(0, 3, 1, 2))

        @tf.function
        def step():
            with tf.GradientTape() as tape:
                tape.watch(images)
                y = tf.nn.conv2d(images, tf.cast(kernel, dtype), 1, "SAME", data_format=data_format)
                loss = tf.reduce_sum(tf.cast(y, tf.float32) * upstream)
            d_images, d_kernel = tape.gradient(loss, [images, kernel])
            return d_kernel + 0.0 * tf.reduce_sum(tf.cast(d_images, tf.float32))  # keep both

        return step

    return [
        (
            "3x3 conv 32x32x16 -> 16, layout",
            "channels-first NCHW",
            "channels-last NHWC",
            conv_step("NCHW"),
            conv_step("NHWC"),
        ),
        (
            "option-A shortcut 32x32x16 -> 16x16x32",
            "slice + pad",
            "placement 1x1 conv",
            timed_gradient(slice_and_pad, x16, up_shortcut),
            timed_gradient(shortcut, x16, up_shortcut),
        ),
        (
            "BatchNorm + ReLU, training, 32x32x16",
            "keras BatchNormalization",
            "FusedBatchNormalization",
            timed_gradient(lambda x: tf.nn.relu(norms[0](x, training=True)), x16, up_norm),
            timed_gradient(lambda x: tf.nn.relu(norms[1](x, training=True)), x16, up_norm),
        ),
    ]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--float32", action="store_true", help="float32 instead of mixed_bfloat16")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    policy = "float32" if args.float32 else "mixed_bfloat16"
    rounds = 10 if args.quick else 40
    rows = []
    for what, usual_name, ours_name, usual, ours in cases(policy):
        for fn in (usual, ours):
            fn(), fn()  # trace + warm-up
        np.testing.assert_allclose(
            *(tf.cast(fn(), tf.float32).numpy() for fn in (usual, ours)),
            rtol=2e-2,
            atol=2e-2 * (policy != "float32") + 1e-4,
        )
        times = {usual_name: [], ours_name: []}
        for _ in range(rounds):
            for name, fn in ((usual_name, usual), (ours_name, ours)):
                t0 = time.perf_counter()
                fn().numpy()
                times[name].append(time.perf_counter() - t0)
        a, b = common.median(times[usual_name]), common.median(times[ours_name])
        rows.append([what, policy, usual_name, a * 1e3, ours_name, b * 1e3, f"{a / b:.2f}x"])
        print("  ", rows[-1], flush=True)
    headers = [
        "layer (forward + backward, batch 128)",
        "precision",
        "alternative",
        "ms (median)",
        "reszoo's choice",
        "ms (median)",
        "reszoo speed-up",
    ]
    common.record_results(
        "layers",
        "Single-layer choices (bench_layers)",
        common.table(headers, rows),
        slot=policy,
        current=not args.quick,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
