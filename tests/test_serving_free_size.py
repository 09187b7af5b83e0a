"""Models built with free input dimensions: their signatures take each image at its own size
(no resizing), encoded files of different sizes in one request included; the batch and pixel
limits still apply, and the metadata says the size is free.

The model is a small Keras classifier written here with input_shape=(None, None, 3).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

import reszoo  # noqa: E402
from reszoo.serving.signatures import SIGNATURES, png_bytes  # noqa: E402


def _free_model(height=None, width=None):
    keras.utils.set_random_seed(3)
    inputs = keras.Input((height, width, 3), name="images")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x), name="free")


@pytest.fixture(scope="module")
def free_export(tmp_path_factory):
    model = _free_model()
    limits = dict(max_batch_size=3, max_image_pixels=60 * 60, max_request_pixels=5000)
    path = reszoo.export(model, tmp_path_factory.mktemp("free") / "free", **limits)
    return model, path, tf.saved_model.load(str(path)).signatures


def test_pixels_go_in_at_their_own_size(free_export):
    model, _, signatures = free_export
    rng = np.random.default_rng(0)
    for shape in [(2, 40, 56, 3), (1, 9, 13, 3), (3, 20, 20, 3)]:
        images = rng.uniform(0, 255, shape).astype(np.float32)
        served = signatures["serving_default"](images=tf.constant(images))["logits"].numpy()
        expected = model(images, training=False).numpy()  # no resize on the Keras side
        np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
        resized = model(tf.image.resize(images, (16, 16)), training=False).numpy()
        assert not np.allclose(served, resized, atol=1e-3)  # the size matters to this model


def test_files_of_different_sizes_in_one_request(free_export):
    model, _, signatures = free_export
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, shape).astype(np.uint8) for shape in [(30, 50, 3), (17, 9, 3)]]
    request = tf.constant([png_bytes(image) for image in images])
    served = signatures["serving_image_bytes"](image_bytes=request)["logits"].numpy()
    for row, image in zip(served, images):
        expected = model(image[None].astype(np.float32), training=False).numpy()[0]
        np.testing.assert_allclose(row, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "signature,shapes,limit",
    [
        ("serving_uint8", [(1, 61, 60)], "max_image_pixels=3600"),
        ("serving_uint8", [(2, 51, 50)], "max_request_pixels=5000"),
        ("serving_uint8", [(4, 5, 5)], "max_batch_size=3"),
        ("serving_image_bytes", [(61, 60)], "max_image_pixels=3600"),
        ("serving_image_bytes", [(50, 50), (50, 51)], "max_request_pixels=5000"),
    ],
)
def test_the_limits_still_apply(free_export, signature, shapes, limit):
    _, _, signatures = free_export
    if signature == "serving_uint8":
        request = {"images": tf.zeros((*shapes[0], 3), tf.uint8)}
    else:
        files = [png_bytes(np.zeros((*shape, 3), np.uint8)) for shape in shapes]
        request = {"image_bytes": tf.constant(files)}
    with pytest.raises(tf.errors.InvalidArgumentError, match=limit):
        signatures[signature](**request)


def test_metadata_and_warmup_say_the_size_is_free(free_export):
    _, path, _ = free_export
    metadata = json.loads((path / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["input_size"] == [None, None] and metadata["free_input_size"] is True
    records = tf.data.TFRecordDataset(str(path / "assets.extra" / "tf_serving_warmup_requests"))
    assert len(list(records)) == len(SIGNATURES)  # one per signature, each within the limits


def test_a_free_height_keeps_its_size_and_a_fixed_width_is_resized_to(tmp_path):
    model = _free_model(height=None, width=24)
    path = reszoo.export(model, tmp_path / "half")
    serving = tf.saved_model.load(str(path)).signatures["serving_default"]
    images = np.random.default_rng(2).uniform(0, 255, (2, 30, 40, 3)).astype(np.float32)
    served = serving(images=tf.constant(images))["logits"].numpy()
    expected = model(tf.image.resize(images, (30, 24)), training=False).numpy()
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
    metadata = json.loads((path / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["input_size"] == [None, 24]
