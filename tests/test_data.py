"""reszoo.data: tf.data pipelines on real data.

Digits, CIFAR-10 JPEGs from ../shared/data, generated image files and mocked TFDS."""

import base64
import os
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from reszoo import data, data_sources  # noqa: E402
from reszoo.errors import DataError  # noqa: E402

CIFAR_TAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-train-jpeg.tar.gz"
CIFAR_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
# A 16x12 CMYK JPEG, pure red (C=0, M=255, Y=255, K=0), written by Pillow 13 (Adobe marker).
CMYK_JPEG = base64.b64decode(
    "/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwADAgIDAgIDAwMDBAMDBAUIBQUEBAUKBwcGCAwKDAwLCgsLDQ4SEA0OEQ4LCxAW"
    "EBETFBUVFQwPFxgWFBgSFBUU/8AAFAgADAAQBEMRAE0RAFkRAEsRAP/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYH"
    "CAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQcicRQygZGhCCNCscEVUtHwJDNicoIJChYXGBka"
    "JSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SVlpeYmZqio6Slpqeo"
    "qaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/aAA4EQwBNAFkASwAAPwD9U6/K"
    "qvyqr9U6KKKKKKKKKKKK/9k="
)


def _epoch(ds):
    """All (images, labels) of one pass, concatenated as numpy."""
    xs, ys = [], []
    for x, y in ds:
        xs.append(x.numpy())
        ys.append(y.numpy())
    return np.concatenate(xs), np.concatenate(ys)


def _solid(h, w, rgb, channels=3):
    return tf.constant(np.broadcast_to(np.array(rgb, np.uint8), (h, w, channels)).copy())


def _write(path, contents):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(contents)
    return path


def _jpeg(image, quality=95):
    return tf.io.encode_jpeg(image, quality=quality).numpy()


def _png(image):
    return tf.io.encode_png(image).numpy()


# ---------------------------------------------------------------------------------- digits


def test_digits_shapes_dtypes_ranges_and_split():
    train, val, info = data.load("digits", batch_size=100)
    assert info.name == "digits" and info.num_classes == 10
    assert info.class_names == tuple(str(i) for i in range(10))
    assert info.image_shape == (32, 32, 3)
    assert info.train_examples + info.validation_examples == 1797
    assert 340 <= info.validation_examples <= 380  # default 20%, held out per class

    x, y = _epoch(train)
    assert x.dtype == np.float32 and y.dtype == np.int32
    assert x.shape == (info.train_examples // 100 * 100, 32, 32, 3)  # drop_remainder
    assert x.min() >= 0.0 and x.max() <= 255.0 and x.max() > 200.0  # pixel values, not normalized
    assert np.array_equal(x[..., 0], x[..., 2])  # gray -> 3 equal channels
    assert set(np.unique(y)) == set(range(10))

    vx, vy = _epoch(val)
    assert vx.shape == (info.validation_examples, 32, 32, 3)  # validation keeps the remainder
    counts = np.bincount(vy, minlength=10)
    assert counts.min() >= 30  # every class is represented (~36 each)


def test_digits_split_is_deterministic_and_independent_of_seed():
    _, val_a, _ = data.load("digits", batch_size=64, seed=0)
    _, val_b, _ = data.load("digits", batch_size=64, seed=7)
    xa, ya = _epoch(val_a)
    xb, yb = _epoch(val_b)
    assert np.array_equal(xa, xb) and np.array_equal(ya, yb)
    train, _, info = data.load("digits", batch_size=64, validation_split=0.5, image_size=(16, 24))
    assert info.image_shape == (16, 24, 3)
    assert abs(info.validation_examples - 898) <= 10
    x, _ = next(iter(train))
    assert x.shape == (64, 16, 24, 3)


def test_training_epochs_are_reshuffled():
    train, _, _ = data.load("digits", batch_size=64, augment="none")
    _, y1 = _epoch(train)
    _, y2 = _epoch(train)
    assert len(y1) == len(y2) and not np.array_equal(y1, y2)


# ---------------------------------------------------------------------------------- synthetic


def test_synthetic_shapes_classes_determinism_and_learnability():
    train, val, info = data.load("synthetic", batch_size=32, num_classes=5, examples=320, seed=3)
    assert info.num_classes == 5 and len(info.class_names) == 5
    assert info.image_shape == (32, 32, 3)
    assert info.train_examples == 320 and info.validation_examples == 64
    x, y = next(iter(train))
    assert x.shape == (32, 32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert int(tf.reduce_max(y)) < 5

    vx, vy = _epoch(val)
    vx2, vy2 = _epoch(data.load("synthetic", batch_size=32, num_classes=5, examples=320, seed=3)[1])
    vx3, _ = _epoch(data.load("synthetic", batch_size=32, num_classes=5, examples=320, seed=4)[1])
    assert np.array_equal(vx, vx2) and np.array_equal(vy, vy2)
    assert not np.array_equal(vx, vx3)

    # Learnable: nearest class-mean colour (fitted on train) classifies validation well.
    tx, ty = _epoch(
        data.load("synthetic", batch_size=32, num_classes=5, examples=320, seed=3, augment="none")[
            0
        ]
    )
    means = np.stack([tx[ty == c].mean(axis=(0, 1, 2)) for c in range(5)])
    pred = np.argmin(((vx.mean(axis=(1, 2))[:, None, :] - means[None]) ** 2).sum(-1), axis=1)
    assert (pred == vy).mean() > 0.9


def test_synthetic_larger_images_use_imagenet_style_pipeline():
    train, val, info = data.load("synthetic", batch_size=8, image_size=(96, 72), examples=16)
    assert info.image_shape == (96, 72, 3)
    x, y = next(iter(train))
    assert x.shape == (8, 96, 72, 3)
    assert next(iter(val))[0].shape[1:] == (96, 72, 3)


# ---------------------------------------------------------------------------------- image folders


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory):
    if not CIFAR_TAR.exists():
        pytest.skip(f"{CIFAR_TAR} is absent")
    root = tmp_path_factory.mktemp("cifar")
    with tarfile.open(CIFAR_TAR, "r:gz") as tar:
        members = [
            m
            for m in tar
            if m.isfile()
            and m.name.startswith("train/")
            and os.path.basename(m.name)[:3] in ("000", "001")
        ]
        tar.extractall(root, members=members, filter="data")
    return root / "train"


def test_cifar_jpeg_folder(cifar_folder):
    train, val, info = data.load(str(cifar_folder), batch_size=20)
    assert info.class_names == CIFAR_CLASSES
    assert info.num_classes == 10
    assert info.image_shape == (32, 32, 3)  # the images' own size
    assert info.train_examples + info.validation_examples == 200  # 20 per class
    assert info.validation_examples == 20

    x, y = _epoch(train)
    assert x.shape == (180, 32, 32, 3) and x.dtype == np.float32
    assert np.array_equal(np.bincount(y, minlength=10), np.full(10, 18))
    vx, vy = _epoch(val)
    assert np.array_equal(np.bincount(vy, minlength=10), np.full(10, 2))  # held out per class
    assert 20 < vx.mean() < 235 and vx.std() > 20  # real photographs, not blank

    _, val2, _ = data.load(str(cifar_folder), batch_size=20, seed=123)
    vx2, vy2 = _epoch(val2)
    assert np.array_equal(vx, vx2) and np.array_equal(vy, vy2)  # stable hold-out


def test_sibling_validation_folder(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        for c, colour in (("cat", (200, 10, 10)), ("dog", (10, 10, 200))):
            for i in range(n):
                _write(tmp_path / split / c / f"{i}.png", _png(_solid(8, 8, colour)))
    for path in (tmp_path / "train", tmp_path):
        train, val, info = data.load(str(path), batch_size=2, augment="none", drop_remainder=False)
        assert info.class_names == ("cat", "dog")
        assert (info.train_examples, info.validation_examples) == (6, 4)
        vx, vy = _epoch(val)
        assert sorted(vy.tolist()) == [0, 0, 1, 1]
        assert np.allclose(vx[vy == 0].mean(axis=(0, 1, 2)), (200, 10, 10), atol=1)


def test_corrupt_and_odd_files(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    good = {}
    for i in range(5):
        colour = (40 * i, 255 - 40 * i, 90)
        _write(a / f"good{i}.jpg", _jpeg(_solid(20 + i, 30, colour)))
        _write(b / f"good{i}.jpg", _jpeg(_solid(30, 20 + i, colour)))
    good["cmyk"] = _write(a / "cmyk.jpg", CMYK_JPEG)
    good["gray"] = _write(b / "gray.png", _png(_solid(9, 11, (128,), channels=1)))
    good["rgba"] = _write(b / "rgba.png", _png(_solid(10, 10, (10, 200, 30, 128), channels=4)))
    good["large"] = _write(b / "large.jpg", _jpeg(_solid(2400, 3200, (250, 250, 5)), quality=50))
    good["trailing"] = _write(
        a / "trailing.jpg", _jpeg(_solid(16, 16, (5, 5, 250))) + b"\0" * 20 + b"tail"
    )
    _write(a / "empty.jpg", b"")
    truncated = _jpeg(tf.cast(tf.random.uniform([64, 64, 3], 0, 255, seed=1), tf.uint8))
    _write(a / "truncated.jpg", truncated[: len(truncated) // 2])
    _write(b / "notes.txt", b"not an image\n")
    _write(a / ".DS_Store", b"\0\1")  # hidden: ignored silently

    with pytest.warns(UserWarning, match=r"skipped 3 file") as record:
        train, val, info = data.load(
            str(tmp_path),
            batch_size=4,
            image_size=(32, 32),
            augment="none",
            validation_split=0,
            drop_remainder=False,
        )
    message = " ".join(str(w.message) for w in record)
    for name in ("empty.jpg", "truncated.jpg", "notes.txt"):
        assert name in message
    assert "good0" not in message and "cmyk" not in message and "large" not in message
    assert val is None and info.validation_examples == 0
    assert info.train_examples == 10 + len(good)

    x, y = _epoch(train)
    assert x.shape == (info.train_examples, 32, 32, 3)
    assert np.array_equal(np.bincount(y), [5 + 2, 5 + 3])
    colours = x.mean(axis=(1, 2))

    def has(rgb):
        return bool(np.any(np.all(np.abs(colours - rgb) < 6, axis=1)))

    assert has((255, 0, 0))  # CMYK red decoded as RGB
    assert has((128, 128, 128))  # grayscale PNG
    assert has((10, 200, 30))  # RGBA PNG without its alpha
    assert has((250, 250, 5))  # the large image, resized
    _, y2 = _epoch(train)  # a second epoch runs just as well
    assert len(y2) == info.train_examples


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        data.load(str(tmp_path / "missing" / "train"), batch_size=4)
    (tmp_path / "one" / "only").mkdir(parents=True)
    with pytest.raises(DataError, match="at least 2"):
        data.load(str(tmp_path / "one"), batch_size=4)
    (tmp_path / "empty" / "x").mkdir(parents=True)
    (tmp_path / "empty" / "y").mkdir(parents=True)
    with pytest.raises(DataError, match="no readable"):
        data.load(str(tmp_path / "empty"), batch_size=4)


# ---------------------------------------------------------------------------------- TFDS


def test_tfds_mocked_cifar10(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=24):
        train, val, info = data.load("cifar10", batch_size=8, data_dir=str(tmp_path))
        x, y = next(iter(train))
        vx, vy = next(iter(val))
    assert x.shape == (8, 32, 32, 3) and x.dtype == tf.float32 and y.dtype == tf.int32
    assert vx.shape[1:] == (32, 32, 3)
    # (mock data has no metadata: label names are "0".."9"; real cifar10 names its classes)
    assert info.num_classes == len(info.class_names) == 10 and info.image_shape == (32, 32, 3)
    assert info.train_examples == 24 and info.validation_examples == 24


def test_tfds_mocked_large_images_are_decoded_with_the_crop(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=8):
        train, val, info = data.load("imagenette", batch_size=4, data_dir=str(tmp_path))
        x, y = _epoch(train)
        vx, _ = _epoch(val)
    assert info.image_shape == (224, 224, 3) and info.num_classes == 10
    assert x.shape == (8, 224, 224, 3) and vx.shape == (8, 224, 224, 3)
    assert y.dtype == np.int32 and x.min() >= 0 and x.max() <= 255


def test_tfds_unprepared_offline_fails_fast(tmp_path, monkeypatch):
    pytest.importorskip("tensorflow_datasets")
    monkeypatch.setattr(data_sources, "_network_available", lambda *a, **k: False)
    start = time.monotonic()
    with pytest.raises(DataError) as err:
        data.load("mnist", batch_size=8, data_dir=str(tmp_path))
    assert time.monotonic() - start < 10
    message = str(err.value)
    assert "mnist" in message and "not prepared" in message and str(tmp_path) in message
    assert "tfds build mnist --data_dir" in message and "image folder" in message


def test_unknown_tfds_name_suggests(tmp_path):
    pytest.importorskip("tensorflow_datasets")
    with pytest.raises(DataError, match="cifar10"):
        data.load("cifar1O", batch_size=8, data_dir=str(tmp_path))


def test_network_probe_is_quick():
    start = time.monotonic()
    assert isinstance(data_sources._network_available(timeout=1.0), bool)
    assert time.monotonic() - start < 3


# ---------------------------------------------------------------------------------- augmentation


def test_cifar_augmentation_crops_and_flips():
    plain, _, _ = data.load("digits", batch_size=128, augment="none", validation_split=0)
    aug, _, info = data.load("digits", batch_size=128, augment="cifar", validation_split=0)
    px, _ = _epoch(plain)
    ax, _ = _epoch(aug)
    assert ax.shape[1:] == (32, 32, 3) == info.image_shape
    originals = {img.tobytes() for img in px}
    unchanged = np.mean([img.tobytes() in originals for img in ax])
    assert unchanged < 0.2  # nearly every image was shifted and/or flipped
    assert ax.min() >= 0 and ax.max() <= 255


def test_imagenet_augmentation_on_large_jpegs(tmp_path):
    # 375x500 photos-like JPEGs: a 20 px red border around a green centre.
    img = np.zeros((375, 500, 3), np.uint8)
    img[...] = (220, 20, 20)
    img[20:-20, 20:-20] = (20, 220, 20)
    for c in ("x", "y"):
        for i in range(6):
            _write(tmp_path / c / f"{i}.jpg", _jpeg(tf.constant(img)))
        _write(tmp_path / c / "6.png", _png(tf.constant(img)))  # not JPEG: crop after decoding
    train, val, info = data.load(
        str(tmp_path), batch_size=4, image_size=(96, 80), augment="imagenet", validation_split=0.25
    )
    assert info.image_shape == (96, 80, 3)
    x, y = next(iter(train))
    assert x.shape == (4, 96, 80, 3) and x.dtype == tf.float32
    vx, _ = _epoch(val)
    assert vx.shape == (4, 96, 80, 3)
    # Evaluation is resize-then-center-crop: the border is cropped away.
    assert np.all(vx[..., 1] > 150) and np.all(vx[..., 0] < 100)

    everything, _, default = data.load(str(tmp_path), batch_size=7, validation_split=0)
    assert default.image_shape == (224, 224, 3)  # large images: ImageNet default size
    x, y = _epoch(everything)  # "auto" is "imagenet" here: every JPEG and PNG is cropped
    assert x.shape == (14, 224, 224, 3) and sorted(y.tolist()) == [0] * 7 + [1] * 7


def test_mixup_cutmix_give_soft_labels():
    train, val, info = data.load("digits", batch_size=64, augment="cifar+mixup")
    _, y = _epoch(train)
    assert y.shape[1:] == (10,) and y.dtype == np.float32
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-5)
    assert (y.max(axis=1) < 0.99).any()  # some labels are mixed
    assert next(iter(val))[1].dtype == tf.int32  # validation stays hard int labels

    train, _, _ = data.load("digits", batch_size=64, augment="+cutmix+mixup", examples=256)
    x, y = next(iter(train))
    assert x.shape == (64, 32, 32, 3) and y.shape == (64, 10)
    np.testing.assert_allclose(tf.reduce_sum(y, axis=1), 1.0, atol=1e-5)


def test_randaugment_and_erasing_run():
    train, _, _ = data.load(
        "digits", batch_size=32, augment="cifar+randaugment+erasing", examples=64
    )
    x, y = _epoch(train)
    assert x.shape == (64, 32, 32, 3) and x.dtype == np.float32 and y.dtype == np.int32
    assert x.min() >= 0 and x.max() <= 255


def test_augment_spec_errors():
    with pytest.raises(DataError, match="randaugment"):
        data.load("digits", batch_size=8, augment="cifar+blur")
    with pytest.raises(DataError, match="augment"):
        data.load("digits", batch_size=8, augment="autoaugment")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size"),
        (dict(batch_size=4, image_size=(0, 32)), "image_size"),
        (dict(batch_size=4, validation_split=1.5), "validation_split"),
        (dict(batch_size=4, validation_split=1797), "validation_split"),
        (dict(batch_size=4, num_classes=5), "10 classes"),
        (dict(batch_size=4000), "batch_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(DataError, match=match):
        data.load("digits", **kwargs)
