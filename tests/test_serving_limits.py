"""Bounded serving: every signature refuses, in the graph and before decoding or resizing, a
request over the export's max_batch_size, max_image_pixels or max_request_pixels, naming the
limit; float pixels must be finite; the limits are recorded and the TF Serving batching example
matches them. Decompression bombs and batch floods are measured in a fresh process
(tests/serving_bombs.py): refused with the limit named, without the memory they used to take,
and the next request is served.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402

import reszoo  # noqa: E402
from reszoo.errors import ExportError  # noqa: E402
from reszoo.serving import SIGNATURES  # noqa: E402
from reszoo.serving.image_headers import decode_rgb, encoded_sizes  # noqa: E402

HERE = Path(__file__).resolve().parent
BOMBS = HERE / "serving_bombs.py"
# Peak memory growth allowed while a bomb is refused (before the limits: 3.8 GB for the 16000 x
# 16000 PNG, 1.9 GB for two 8000 x 8000 in one request; see README's Serving section).
REFUSAL_MB = 100


def _tiny_model(input_shape=(16, 16, 3)):
    keras.utils.set_random_seed(0)
    return reszoo.build(
        "resnet20",
        input_shape=input_shape,
        num_classes=3,
        depths=[1, 1, 1],
        widths=[8, 8, 8],
        stem_width=8,
    )


@pytest.fixture(scope="module")
def default_export(tmp_path_factory):
    return reszoo.export(_tiny_model(), tmp_path_factory.mktemp("limits") / "default")


SMALL = dict(max_batch_size=4, max_image_pixels=40 * 40, max_request_pixels=3 * 40 * 40)


@pytest.fixture(scope="module")
def small_limits_export(tmp_path_factory):
    path = reszoo.export(_tiny_model(), tmp_path_factory.mktemp("limits") / "small", **SMALL)
    return path, tf.saved_model.load(str(path))


# ----------------------------------------------------------------------------- every signature


def _call(loaded, name, pixels):
    entry = SIGNATURES[name]
    request = tf.constant(entry.encode(pixels), tf.as_dtype(entry.dtype))
    return loaded.signatures[name](**{entry.input_name: request})


@pytest.mark.parametrize("name", list(SIGNATURES))
@pytest.mark.parametrize(
    "shape,limit",
    [
        ((5, 8, 8), "max_batch_size=4"),
        ((1, 41, 40), "max_image_pixels=1600"),
        ((4, 40, 40), "max_request_pixels=4800"),
        ((2, 40, 41), "max_image_pixels=1600"),
    ],
)
def test_every_signature_enforces_every_limit(small_limits_export, name, shape, limit):
    _, loaded = small_limits_export
    pixels = np.random.default_rng(0).integers(0, 256, (*shape, 3)).astype(np.uint8)
    with pytest.raises(tf.errors.InvalidArgumentError, match=limit):
        _call(loaded, name, pixels)
    # at the limits a request is served, and the batch gives the model's answers
    fits = pixels[:3, :40, :40]
    served = _call(loaded, name, fits)["logits"].numpy()
    assert served.shape == (len(fits), 3)
    single = _call(loaded, name, fits[-1:])["logits"].numpy()
    np.testing.assert_allclose(served[-1:], single, atol=1e-5, rtol=0)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_float_pixels_are_refused(default_export, value):
    serving = tf.saved_model.load(str(default_export)).signatures["serving_default"]
    images = np.full((2, 16, 16, 3), 100.0, np.float32)
    images[1, 3, 4, 2] = value
    with pytest.raises(tf.errors.InvalidArgumentError, match="every pixel must be a finite"):
        serving(images=tf.constant(images))
    logits = serving(images=tf.constant(images[:1]))["logits"].numpy()
    assert logits.shape == (1, 3) and np.isfinite(logits).all()


# ----------------------------------------------------------------------------- recorded limits


def _batching_parameters_class():
    """tensorflow.serving.BatchingParameters from hand-written descriptors (field numbers of
    tensorflow_serving/servables/tensorflow/session_bundle_config.proto)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    proto = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(proto)
    pool.Add(proto)
    file = descriptor_pb2.FileDescriptorProto(
        name="reszoo_test/batching.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[wrappers_pb2.DESCRIPTOR.name],
    )
    message = file.message_type.add(name="BatchingParameters")
    fields = ["max_batch_size", "batch_timeout_micros", "max_enqueued_batches", "num_batch_threads"]
    for number, name in enumerate(fields, start=1):
        message.field.add(
            name=name,
            number=number,
            type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
            label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
            type_name=".google.protobuf.Int64Value",
        )
    pool.Add(file)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters")
    )


def test_limits_are_recorded_and_the_batching_example_matches(small_limits_export):
    from google.protobuf import text_format

    path, loaded = small_limits_export
    metadata = json.loads((path / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["limits"] == SMALL
    text = (path / "assets.extra" / "batching_parameters.txt").read_text()
    parameters = text_format.Parse(text, _batching_parameters_class()())
    assert parameters.max_batch_size.value == SMALL["max_batch_size"]
    assert parameters.num_batch_threads.value >= 1
    uint8 = loaded.signatures["serving_uint8"]
    batch = parameters.max_batch_size.value
    assert uint8(images=tf.zeros([batch, 8, 8, 3], tf.uint8))["logits"].shape == (batch, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="max_batch_size"):
        uint8(images=tf.zeros([batch + 1, 8, 8, 3], tf.uint8))


def test_default_limits_are_documented_values(default_export):
    metadata = json.loads((default_export / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["limits"] == {
        "max_batch_size": 256,
        "max_image_pixels": 2**24,
        "max_request_pixels": 2**25,
    }


@pytest.mark.parametrize(
    "options,message",
    [
        ({"max_batch_size": 0}, "max_batch_size must be a positive integer"),
        ({"max_image_pixels": 2.5}, "max_image_pixels must be a positive integer"),
        ({"max_request_pixels": True}, "max_request_pixels must be a positive integer"),
        ({"max_image_pixels": 2**30}, "above 2\\*\\*29"),
        ({"max_image_pixels": 255}, "max_image_pixels=255 is below one 16x16 image"),
        ({"max_request_pixels": 100}, "max_request_pixels=100 is below one 16x16 image"),
    ],
)
def test_bad_limits_are_refused_before_anything_is_written(tmp_path, options, message):
    with pytest.raises(ExportError, match=message):
        reszoo.export(_tiny_model(), tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- headers


def _pil(array, fmt, **options):
    from PIL import Image

    buffer = io.BytesIO()
    image = Image.fromarray(array)
    if "mode" in options:
        image = image.convert(options.pop("mode"))
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def test_sizes_read_from_headers_are_the_decoded_sizes():
    pytest.importorskip("PIL")
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3)).astype(np.uint8)
    gray16 = (rng.integers(0, 65535, (21, 34))).astype(np.uint16)
    files = [
        _pil(rgb, "PNG"),
        _pil(rgb, "PNG", mode="L"),
        _pil(rgb, "PNG", mode="RGBA"),
        _pil(gray16, "PNG"),
        _pil(rgb, "JPEG"),
        _pil(rgb, "JPEG", progressive=True),
        _pil(rgb, "JPEG", mode="CMYK"),
        _pil(rgb, "GIF"),
        _pil(rgb, "BMP"),
        _pil(rgb, "BMP", mode="RGBA"),
        tf.io.encode_png(rgb[:5, :3]).numpy(),
    ]
    declared = encoded_sizes(tf.constant(files)).numpy()
    for data, (height, width, length) in zip(files, declared):
        decoded = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        assert (height, width) == decoded.shape[:2]
        # the bytes kept for decoding (a GIF's up to its first frame's end) decode the same
        assert length == len(data) or data.startswith(b"GIF")
        np.testing.assert_array_equal(decode_rgb(tf.constant(data), length).numpy(), decoded)


def test_an_animated_gif_is_served_from_its_first_frame(default_export):
    pytest.importorskip("PIL")
    from PIL import Image

    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, (30, 20, 3)).astype(np.uint8) for _ in range(4)]
    images = [Image.fromarray(frame).convert("P") for frame in frames]
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:])
    gif = buffer.getvalue()
    first = tf.io.decode_image(gif, channels=3, expand_animations=False).numpy()
    assert tf.io.decode_image(gif).shape[0] == 4  # the file really has four frames
    signatures = tf.saved_model.load(str(default_export)).signatures
    served = signatures["serving_image_bytes"](image_bytes=tf.constant([gif]))["logits"]
    pixels = signatures["serving_uint8"](images=tf.constant(first[None]))["logits"]
    np.testing.assert_array_equal(served.numpy(), pixels.numpy())


# ----------------------------------------------------------------------------- bombs


@pytest.fixture(scope="module")
def bombs_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("bombs")
    proc = subprocess.run(
        [sys.executable, str(BOMBS), "make", str(directory)], capture_output=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return directory


def _measure(export, bombs_dir, case) -> dict:
    proc = subprocess.run(
        [sys.executable, str(BOMBS), "measure", str(export), str(bombs_dir), case],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "case,limit",
    [
        ("png_16000", "max_image_pixels=16777216"),
        ("two_png_8000", "max_image_pixels=16777216"),
        ("three_png_4000", "max_request_pixels=33554432"),
        ("jpeg_header_20000", "max_image_pixels=16777216"),
        ("uint8_8000_one_pixel", "max_batch_size=256"),
    ],
)
def test_a_bomb_is_refused_naming_the_limit_and_the_next_request_works(
    default_export, bombs_dir, case, limit
):
    report = _measure(default_export, bombs_dir, case)
    assert "error" in report, f"{case} was served"
    assert limit in report["error"], report["error"]
    assert report["peak_growth_mb"] < REFUSAL_MB, report
    assert report["next_ok"]


def test_a_many_frame_gif_costs_one_frame(default_export, bombs_dir):
    report = _measure(default_export, bombs_dir, "gif_40_frames")
    assert "error" not in report, report
    np.testing.assert_allclose(report["logits"], report["black_logits"], atol=1e-5)
    # 40 frames of 2000 x 2000 used to be read whole (4 MB each) to return the first
    assert report["peak_growth_mb"] < REFUSAL_MB, report
    assert report["next_ok"]
