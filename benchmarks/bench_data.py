"""The tf.data input pipeline alone (images/s), as a multiple of the training rate.

* CIFAR-style: the shared CIFAR-10 training JPEGs (/work/shared/data/cifar10-train-jpeg.tar.gz,
  extracted to a temporary folder), ``reszoo.data.load(folder, batch_size=128,
  augment="cifar", validation_split=5000)``: decoded once, cached as uint8, then per batch the
  vectorised random crop (4-px reflect padding) + flip. Epoch 1 (JPEG decode + cache fill) and
  the steady state (later epochs, what training sees) are reported separately.
* ImageNet-style: generated 500x375 JPEGs (smooth random images, quality 90) in a class folder,
  ``reszoo.data.load(folder, batch_size=32, image_size=224, augment="imagenet")``: encoded bytes
  cached, random-resized crop fused with the JPEG decode (``decode_and_crop_jpeg``), flip,
  antialiased resize to 224. Steady state after one warm-up epoch.

The pipeline is iterated with nothing else running in the process; the rate is images/s over
``--batches`` batches. Multiples: against reszoo.fit's resnet20 training rate (precision "auto",
batch 128) measured in the same run (interleaved: training, pipeline, training, pipeline,
training), and against resnet50's latest rate from bench_training (benchmarks/latest.json; it is
about 11 img/s here, too slow to re-measure each time). Goals: >= 5x (CIFAR) and >= 1.5x (ImageNet-style).

    python benchmarks/bench_data.py [--quick] [--images 1000]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time

import common
import numpy as np
import tensorflow as tf

from reszoo import data as rdata

CIFAR_TAR = os.environ.get("RESZOO_CIFAR_TAR", "/work/shared/data/cifar10-train-jpeg.tar.gz")


def rate(ds, batches, batch_size):
    """Images/s over ``batches`` batches of the repeated data set, after one untimed batch, so
    that neither iterator start-up nor an epoch boundary's restart is counted."""
    it = iter(ds.repeat())
    next(it)
    t0 = time.perf_counter()
    n = 0
    for _ in range(batches):
        x, _ = next(it)
        n += int(x.shape[0])
    return n / (time.perf_counter() - t0)


def epoch_rate(ds):
    t0 = time.perf_counter()
    n = 0
    for x, _ in ds:
        n += int(x.shape[0])
    return n / (time.perf_counter() - t0), n


def make_jpegs(root, count, classes=4, size=(375, 500)):
    """Smooth random RGB images (low-frequency noise, upsampled), like photos in JPEG size."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        os.makedirs(os.path.join(root, f"class{c}"), exist_ok=True)
    for i in range(count):
        small = rng.uniform(0, 255, (size[0] // 25, size[1] // 25, 3)).astype("float32")
        img = tf.image.resize(small[None], size, method="bicubic")[0]
        img = img + rng.normal(0, 8, img.shape).astype("float32")  # some texture
        jpeg = tf.io.encode_jpeg(tf.cast(tf.clip_by_value(img, 0, 255), tf.uint8), quality=90)
        tf.io.write_file(os.path.join(root, f"class{i % classes}", f"{i:05d}.jpg"), jpeg)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batches", type=int, help="batches timed per measurement")
    p.add_argument("--images", type=int, help="generated ImageNet-style JPEGs")
    p.add_argument(
        "--no-training",
        action="store_true",
        help="take resnet20's training rate from latest.json instead of measuring",
    )
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    batches = args.batches or (60 if args.quick else 150)
    n_images = args.images or (256 if args.quick else 640)
    rows, notes = [], []
    tmp = tempfile.mkdtemp(prefix="reszoo-bench-data-")
    try:
        # ---------------------------------------------------------------- training rates
        train20 = []
        runner = None
        if not args.no_training:
            import bench_training as bt

            runner = bt.Runner("resnet20", {}, False)

        def train_rate():
            if runner is not None:
                train20.append(runner.run("reszoo_auto", 12, 3)[0])
                print(f"  resnet20 reszoo.fit auto: {train20[-1]:.0f} img/s", flush=True)

        # ---------------------------------------------------------------- CIFAR-style
        if os.path.exists(CIFAR_TAR):
            t0 = time.perf_counter()
            subprocess.run(["tar", "-xzf", CIFAR_TAR, "-C", tmp], check=True)
            print(f"  extracted CIFAR-10 JPEGs in {time.perf_counter() - t0:.1f}s", flush=True)
            train_ds, _, info = rdata.load(
                os.path.join(tmp, "train"), batch_size=128, augment="cifar", validation_split=5000
            )
            first, n = epoch_rate(train_ds)  # decode + cache fill
            print(f"  CIFAR epoch 1 (decode + cache): {first:.0f} img/s over {n}", flush=True)
            cifar = []
            train_rate()
            for _ in range(2):
                cifar.append(rate(train_ds, batches, 128))
                print(f"  CIFAR steady: {cifar[-1]:.0f} img/s", flush=True)
                train_rate()
            ref20 = (
                common.median(train20)
                if train20
                else common.load_latest("train_ips/resnet20/reszoo_auto")
            )
            src = "this run" if train20 else "latest.json"
            steady = common.median(cifar)
            common.save_latest("data_ips/cifar_steady", steady)
            for label, value in (
                ("CIFAR-style, epoch 1 (JPEG decode + cache fill)", first),
                ("CIFAR-style, steady state (cached, crop+flip)", steady),
            ):
                rows.append(
                    [
                        label,
                        128,
                        value,
                        f"resnet20 auto {ref20:.0f} ({src})" if ref20 else "-",
                        f"{value / ref20:.1f}x" if ref20 else "-",
                    ]
                )
            if ref20:
                m = steady / ref20
                notes.append(
                    f"Goal CIFAR pipeline >= 5x resnet20 training: {m:.1f}x: "
                    f"{'MET' if m >= 5 else 'MISSED'} (per round: "
                    f"{', '.join(f'{c:.0f}' for c in cifar)} img/s; training "
                    f"{', '.join(f'{t:.0f}' for t in train20) or ref20} img/s)."
                )
        else:
            notes.append(f"CIFAR-style skipped: {CIFAR_TAR} not found.")

        # ---------------------------------------------------------------- ImageNet-style
        folder = os.path.join(tmp, "imagenet_style")
        t0 = time.perf_counter()
        make_jpegs(folder, n_images)
        kb = (
            sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(folder) for f in fs)
            / n_images
            / 1024
        )
        print(
            f"  generated {n_images} 500x375 JPEGs (~{kb:.0f} KB each) in "
            f"{time.perf_counter() - t0:.1f}s",
            flush=True,
        )
        train_ds, _, _ = rdata.load(
            folder, batch_size=32, image_size=224, augment="imagenet", validation_split=0
        )
        epoch_rate(train_ds)  # fills the encoded-bytes cache
        inet = []
        for _ in range(2):
            inet.append(rate(train_ds, max(10, batches // 3), 32))
            print(f"  ImageNet-style steady: {inet[-1]:.0f} img/s", flush=True)
        steady = common.median(inet)
        common.save_latest("data_ips/imagenet_steady", steady)
        ref50 = common.load_latest("train_ips/resnet50/reszoo_auto")
        ref50_src = "latest.json"
        if not ref50:
            ref50, ref50_src = 4.0, "an earlier measurement (keras.applications f32)"
        rows.append(
            [
                "ImageNet-style 500x375 JPEG -> RRC 224 + flip",
                32,
                steady,
                f"resnet50 auto {ref50:.1f} ({ref50_src})",
                f"{steady / ref50:.1f}x",
            ]
        )
        m = steady / ref50
        notes.append(
            f"Goal ImageNet-style pipeline >= 1.5x resnet50 training: {m:.1f}x: "
            f"{'MET' if m >= 1.5 else 'MISSED'}. Per core: {steady / os.cpu_count():.0f} "
            "img/s/core, so the pipeline needs about "
            f"{1.5 * ref50 / (steady / os.cpu_count()):.2f} cores' worth for 1.5x."
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    headers = ["pipeline", "batch", "img/s", "training rate compared (img/s)", "multiple"]
    body = common.table(headers, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)
    common.record_results(
        "data",
        "tf.data pipeline alone (bench_data)",
        body,
        current=not args.quick,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
