"""Helpers shared by the serving and export tests (tests/test_serving_*.py, test_export*.py).

Small models, the Keras model's own answers to compare a signature with, and image encoders.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

import reszoo

TINY = dict(
    input_shape=(64, 64, 3),
    num_classes=5,
    depths=[1, 1, 1, 1],
    widths=[8, 16, 16, 16],
    stem_width=8,
)
NAMES = ["cat", "dog", "grüner frosch", "bird", "fish 2"]
# The signatures README documents: pinned here, not read from reszoo.serving.SIGNATURES.
DOCUMENTED_SIGNATURES = {
    "serving_default": ("images", "float32"),
    "serving_uint8": ("images", "uint8"),
    "serving_image_bytes": ("image_bytes", "string"),
    "serving_unit_float": ("images", "float32"),
}


def tiny_overrides(name: str, size: int = 32, classes: int = 3) -> dict:
    """A few-thousand-parameter variant of a zoo model with its family's blocks."""
    config = reszoo.get_config(name)
    stages = len(config["depths"])
    overrides = dict(
        depths=[1] * stages,
        widths=[16] * stages,
        stem_width=8,
        num_classes=classes,
        input_shape=(size, size, 3),
    )
    if config["groups"] > 1:
        overrides.update(groups=4, base_width=16)
    return overrides


def families() -> dict:
    out = {}
    for name in reszoo.list_models():
        out.setdefault(reszoo.get_config(name)["family"], name)
    return out


def reference(model, images: np.ndarray) -> dict:
    logits = model(tf.constant(images, tf.float32), training=False).numpy()
    classes = logits.argmax(-1)
    return {
        "logits": logits,
        "probabilities": tf.nn.softmax(logits).numpy(),
        "classes": classes,
        "class_names": [NAMES[c] for c in classes],
    }


def assert_matches(outputs: dict, expected: dict, atol: float = 1e-5):
    np.testing.assert_allclose(outputs["logits"], expected["logits"], atol=atol, rtol=0)
    np.testing.assert_allclose(
        outputs["probabilities"], expected["probabilities"], atol=atol, rtol=0
    )
    np.testing.assert_array_equal(np.asarray(outputs["classes"]), expected["classes"])
    names = [n.decode() if isinstance(n, bytes) else n for n in outputs["class_names"]]
    assert names == expected["class_names"]


def encode(images: np.ndarray, fmt: str) -> list[bytes]:
    fn = tf.io.encode_png if fmt == "png" else (lambda x: tf.io.encode_jpeg(x, quality=90))
    return [fn(tf.constant(image.astype(np.uint8))).numpy() for image in images]


def decoded(data: list[bytes]) -> np.ndarray:
    return np.stack([tf.io.decode_image(d, channels=3).numpy() for d in data]).astype(np.float32)


def files_snapshot(root: Path) -> dict:
    """relative path -> (size, mtime_ns) of every file under root."""
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_cli(main, argv, capsys) -> tuple[int, str]:
    """(exit code, stderr) of a command's main(argv), argparse's SystemExit included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    return code, capsys.readouterr().err
