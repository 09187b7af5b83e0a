"""Hostile requests against a SavedModel export, measured in a fresh process.

    python tests/serving_bombs.py make BOMBS_DIR                     # write the bomb files
    python tests/serving_bombs.py measure EXPORT BOMBS_DIR CASE      # one JSON line on stdout

`measure` loads the export (a version directory) with TensorFlow alone, sends one normal request
to the case's signature (so lazy initialisation is not counted), then the case's request, and
reports what the server answered, the growth of the process's peak resident memory during that
request (resource.getrusage ru_maxrss, in MB) and whether the next normal request still works.
It imports nothing from reszoo, so it runs against exports written by any reszoo version (to
measure before and after a change). The files are made by `make` in another process, so that
making them does not raise the measuring process's peak.

Cases (CASES): a 16000x16000 all-zero PNG (about 249 KB), two 8000x8000 ones in one request
(about 62 KB each), three 4000x4000 ones (each within the default per-image limit, together
over the per-request one), a 1 KB JPEG whose header claims 20000x20000, 8,000 one-pixel uint8
images, and a 40-frame 2000x2000 GIF animation (a valid image: served from its first frame).
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys
import zlib


def zero_png(height: int, width: int) -> bytes:
    """An all-zero 8-bit grayscale PNG, compressed row by row (never held decoded)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    compressor = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte 0, then zeros
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def jpeg_claiming(height: int, width: int) -> bytes:
    """A small real JPEG whose frame header (SOF0) is edited to claim height x width."""
    import numpy as np
    import tensorflow as tf

    data = bytearray(tf.io.encode_jpeg(np.zeros((16, 16, 3), np.uint8)).numpy())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def animated_gif(frames: int, side: int) -> bytes:
    """A GIF animation of alternating black and white frames (black first)."""
    import io

    from PIL import Image

    images = [Image.new("P", (side, side), color=i % 2) for i in range(frames)]
    for image in images:
        image.putpalette([0, 0, 0, 255, 255, 255] + [0] * 762)
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], optimize=False)
    return buffer.getvalue()


def make(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    files = {
        "png_16000.png": lambda: zero_png(16000, 16000),
        "png_8000.png": lambda: zero_png(8000, 8000),
        "png_4000.png": lambda: zero_png(4000, 4000),
        "jpeg_20000.jpg": lambda: jpeg_claiming(20000, 20000),
        "gif_40x2000.gif": lambda: animated_gif(40, 2000),
    }
    for name, maker in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(maker())


# case -> (signature, input name, files to send (or None), uint8 array shape (or None))
CASES = {
    "png_16000": ("serving_image_bytes", "image_bytes", ["png_16000.png"], None),
    "two_png_8000": ("serving_image_bytes", "image_bytes", ["png_8000.png"] * 2, None),
    "three_png_4000": ("serving_image_bytes", "image_bytes", ["png_4000.png"] * 3, None),
    "jpeg_header_20000": ("serving_image_bytes", "image_bytes", ["jpeg_20000.jpg"], None),
    "uint8_8000_one_pixel": ("serving_uint8", "images", None, (8000, 1, 1, 3)),
    "gif_40_frames": ("serving_image_bytes", "image_bytes", ["gif_40x2000.gif"], None),
}


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(export: str, directory: str, case: str) -> dict:
    import numpy as np
    import tensorflow as tf

    signature_name, input_name, files, shape = CASES[case]
    loaded = tf.saved_model.load(export)
    signature = loaded.signatures[signature_name]
    grey = np.full((1, 32, 32, 3), 128, np.uint8)
    normal = grey if input_name == "images" else np.array([tf.io.encode_png(grey[0]).numpy()])
    if files:
        request = [open(os.path.join(directory, name), "rb").read() for name in files]
        request = tf.constant(request, tf.string)
    else:
        request = tf.zeros(shape, tf.uint8)
    expected_normal = signature(**{input_name: tf.constant(normal)})["logits"].numpy()
    before = _peak_mb()
    try:
        answer = {"logits": signature(**{input_name: request})["logits"].numpy().tolist()}
    except tf.errors.InvalidArgumentError as error:
        answer = {"error": " ".join(error.message.split())[:600]}
    growth = _peak_mb() - before
    after = signature(**{input_name: tf.constant(normal)})["logits"].numpy()
    black = np.zeros((1, 32, 32, 3), np.uint8)
    uint8 = loaded.signatures["serving_uint8"]
    return {
        "case": case,
        **answer,
        "peak_growth_mb": round(growth, 1),
        "next_ok": bool(np.allclose(after, expected_normal, atol=1e-5)),
        "black_logits": uint8(images=tf.constant(black))["logits"].numpy().tolist(),
    }


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        print(json.dumps(measure(*sys.argv[2:5])))
