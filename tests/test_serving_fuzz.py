"""Exported signatures fed hostile requests: random and corrupted image bytes behind valid
magic numbers, headers claiming huge images, wrong shapes and dtypes, empty batches, and large
batches and images. Each bad request gets a clear error, the serving process never dies, the
next good request returns the same logits, and large batches match single-image answers.

The requests run in a subprocess that loads the SavedModel with TensorFlow alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")
import keras  # noqa: E402

import reszoo  # noqa: E402

SERVING_FUZZ = r"""
import json, sys, zlib
import numpy as np
import tensorflow as tf

export, n_random, size, classes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sigs = tf.saved_model.load(export).signatures
good = np.random.default_rng(1).uniform(0, 255, (1, size, size, 3)).astype("float32")
reference = sigs["serving_default"](images=tf.constant(good))["logits"].numpy()
report = {"tried": 0, "errors": 0, "accepted": [], "unexpected": [], "next_ok": 0, "large": {}}

def still_serving():
    out = sigs["serving_default"](images=tf.constant(good))["logits"].numpy()
    assert np.allclose(out, reference, atol=1e-5)
    report["next_ok"] += 1

def bad(name, fn):
    report["tried"] += 1
    try:
        out = fn()
        report["accepted"].append(name)
    except (tf.errors.InvalidArgumentError, TypeError, ValueError):
        report["errors"] += 1
    except Exception as e:
        report["unexpected"].append([name, type(e).__name__, str(e)[:300]])
    still_serving()

def as_bytes(items):
    return lambda: sigs["serving_image_bytes"](image_bytes=tf.constant(items, tf.string))

rng = np.random.default_rng(0)
png = tf.io.encode_png(tf.constant(rng.integers(0, 256, (size, size, 3)), tf.uint8)).numpy()
jpeg = tf.io.encode_jpeg(tf.constant(rng.integers(0, 256, (size, size, 3)), tf.uint8)).numpy()
magics = [b"", b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"GIF87a", b"BM"]
for i in range(n_random):
    kind = i % 4
    if kind == 0:    # random bytes behind a random (often valid) magic number
        data = magics[i % len(magics)] + rng.bytes(int(rng.integers(0, 3000)))
    elif kind == 1:  # a valid image with random bytes flipped
        base = bytearray(png if i % 8 == 1 else jpeg)
        for _ in range(int(rng.integers(1, 20))):
            base[int(rng.integers(0, len(base)))] = int(rng.integers(0, 256))
        data = bytes(base)
    elif kind == 2:  # a valid image cut at a random point
        base = png if i % 8 == 2 else jpeg
        data = base[: int(rng.integers(0, len(base)))]
    else:            # a BMP/GIF header claiming a huge image, then little data
        w, h = (int(x) for x in rng.integers(1, 2**31 - 1, 2))
        data = (b"BM" + (54 + 12).to_bytes(4, "little") + b"\0" * 4 + (54).to_bytes(4, "little")
                + (40).to_bytes(4, "little") + w.to_bytes(4, "little") + h.to_bytes(4, "little")
                + (1).to_bytes(2, "little") + (24).to_bytes(2, "little") + b"\0" * 24
                + rng.bytes(12)) if i % 8 == 3 else (
                b"GIF89a" + (w % 65536).to_bytes(2, "little") + (h % 65536).to_bytes(2, "little")
                + rng.bytes(int(rng.integers(0, 200))))
    batch = [data] + ([png] if i % 3 == 0 else [])
    bad(f"random_bytes_{i}", as_bytes(batch))

f = lambda dtype, shape: (lambda: sigs["serving_default" if dtype == "float32" else "serving_uint8"](
    images=tf.zeros(shape, dtype)))
for dtype in ("float32", "uint8"):
    for shape in ([size, size, 3], [1, size, size], [1, size, size, 1], [1, size, size, 4],
                  [1, 1, size, size, 3], [0, size, size, 3], [1, 0, size, 3], [1, size, 0, 3],
                  [3], []):
        bad(f"{dtype}_shape_{shape}", f(dtype, shape))
for dtype in (tf.int32, tf.float64, tf.float16, tf.string):
    bad(f"dtype_{dtype.name}", lambda: sigs["serving_default"](images=tf.zeros([1, size, size, 3], dtype)))
bad("bytes_rank_0", lambda: sigs["serving_image_bytes"](image_bytes=tf.constant(png)))
bad("bytes_rank_2", as_bytes([[png]]))
bad("bytes_empty_batch", lambda: sigs["serving_image_bytes"](image_bytes=tf.zeros([0], tf.string)))
bad("bytes_empty_string", as_bytes([b""]))
bad("missing_input", lambda: sigs["serving_default"]())
bad("wrong_input_name", lambda: sigs["serving_default"](pixels=tf.constant(good)))

# very large batches and images: served, and each row equals the single-image answer
n = 512
pixels = rng.integers(0, 256, (n, size, size, 3)).astype("uint8")
outs = {
    "float32": sigs["serving_default"](images=tf.constant(pixels.astype("float32"))),
    "uint8": sigs["serving_uint8"](images=tf.constant(pixels)),
    "png": sigs["serving_image_bytes"](image_bytes=tf.constant(
        [tf.io.encode_png(tf.constant(p)).numpy() for p in pixels])),
}
single = sigs["serving_default"](images=tf.constant(pixels[-1:].astype("float32")))["logits"].numpy()
for key, out in outs.items():
    logits = out["logits"].numpy()
    report["large"][key] = {"shape": list(logits.shape), "classes": int(out["classes"].shape[0]),
                            "last_matches": bool(np.allclose(logits[-1], single[0], atol=1e-4)),
                            "float_equal": bool(np.allclose(logits, outs["float32"]["logits"].numpy(), atol=1e-4))}
big = rng.uniform(0, 255, (1, 2000, 3000, 3)).astype("float32")
report["large"]["image_2000x3000"] = list(sigs["serving_default"](images=tf.constant(big))["logits"].shape)
big_jpeg = tf.io.encode_jpeg(tf.constant(big[0].astype("uint8")), quality=50).numpy()
report["large"]["jpeg_2000x3000"] = list(sigs["serving_image_bytes"](image_bytes=tf.constant([big_jpeg]))["logits"].shape)
still_serving()
print("REPORT", json.dumps(report))
"""


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory):
    keras.utils.set_random_seed(0)
    model = reszoo.build(
        "resnet20",
        input_shape=(16, 16, 3),
        num_classes=3,
        depths=[1, 1, 1],
        widths=[8, 8, 8],
        stem_width=8,
    )
    # the battery sends batches of 512 images: above the default limit, so raised here
    return reszoo.export(model, tmp_path_factory.mktemp("serving") / "tiny", max_batch_size=512)


def _serving_fuzz(export_path, n_random):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    p = subprocess.run(
        [sys.executable, "-c", SERVING_FUZZ, str(export_path), str(n_random), "16", "3"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert p.returncode == 0, f"the serving process died (rc {p.returncode}): {p.stderr[-3000:]}"
    return json.loads(p.stdout.split("REPORT", 1)[1])


def _check_serving_report(report, n_random):
    assert report["unexpected"] == [], report["unexpected"][:5]
    assert report["next_ok"] == report["tried"] + 1
    fixed = [name for name in report["accepted"] if not name.startswith("random_bytes_")]
    assert fixed == [], f"bad requests accepted: {fixed}"
    assert report["errors"] + len(report["accepted"]) == report["tried"] >= n_random + 25
    for key in ("float32", "uint8", "png"):
        large = report["large"][key]
        assert large["shape"] == [512, 3] and large["classes"] == 512 and large["last_matches"]
        assert large["float_equal"]
    assert report["large"]["image_2000x3000"] == [1, 3]
    assert report["large"]["jpeg_2000x3000"] == [1, 3]


def test_signatures_survive_random_bytes_bad_shapes_and_large_batches(tiny_export):
    n = 120
    _check_serving_report(_serving_fuzz(tiny_export, n), n)


@pytest.mark.slow
def test_signatures_survive_many_random_inputs_slow(tiny_export):
    n = 2000
    _check_serving_report(_serving_fuzz(tiny_export, n), n)
