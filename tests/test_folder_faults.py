"""An image folder of truncated, empty, non-image, grayscale, RGBA, CMYK and very large files,
trained end to end: the bad files are named in one warning and the odd-but-valid ones used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from robustness_support import (
    tiny_fit,
)

# ----------------------------------------------------------------------------- 5. bad image folder


def _image_bytes(array, fmt, mode=None):
    import io

    from PIL import Image

    image = Image.fromarray(array, mode) if mode is None else Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def test_training_on_a_folder_of_odd_and_broken_images(tmp_path):
    pytest.importorskip("PIL")
    root = tmp_path / "images"
    rng = np.random.RandomState(0)
    for label, colour in (("dark", 40), ("bright", 215)):
        d = root / label
        d.mkdir(parents=True)
        for i in range(12):
            pixels = np.clip(rng.normal(colour, 20, (24, 24, 3)), 0, 255).astype(np.uint8)
            (d / f"good{i}.jpg").write_bytes(_image_bytes(pixels, "JPEG"))
    odd = {  # usable: converted to RGB
        "dark/gray.png": _image_bytes(np.full((20, 20), 40, np.uint8), "PNG"),
        "dark/rgba.png": _image_bytes(np.full((16, 16, 3), 40, np.uint8), "PNG", "RGBA"),
        "bright/cmyk.jpg": _image_bytes(np.full((16, 16, 3), 215, np.uint8), "JPEG", "CMYK"),
        "bright/huge.jpg": _image_bytes(np.full((3000, 4000, 3), 215, np.uint8), "JPEG"),
    }
    full = _image_bytes(rng.randint(0, 255, (64, 64, 3)).astype(np.uint8), "JPEG")
    broken = {  # skipped, counted and named
        "dark/truncated.jpg": full[: len(full) // 2],
        "dark/empty.jpg": b"",
        "bright/notes.txt": b"not an image\n",
        "bright/fake.png": b"\x89PNG\r\n\x1a\n" + bytes(rng.randint(0, 255, 200, np.uint8)),
    }
    for rel, data in {**odd, **broken}.items():
        (root / rel).write_bytes(data)
    run = tmp_path / "run"
    with pytest.warns(UserWarning, match=r"skipped 4 file") as record:
        r = tiny_fit(
            "resnet20",
            str(root),
            epochs=2,
            batch_size=8,
            image_size=[32, 32],
            validation_split=0,
            output_dir=str(run),
        )
    message = " ".join(str(w.message) for w in record)
    for rel in broken:
        assert Path(rel).name in message, message
    for rel in odd:
        assert Path(rel).name not in message, message
    assert r.summary["status"] == "completed" and r.summary["global_step"] == 2 * (28 // 8)
    assert np.isfinite(r.history["loss"]).all()
    # item 7: the run's own model.keras loads in safe mode and computes the same function
    loaded = keras.saving.load_model(str(run / "model.keras"), safe_mode=True)
    x = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), r.model.predict(x, verbose=0), atol=1e-5
    )
