"""LiteRT, ONNX and OpenVINO exports, each loaded and run by its own runtime.

The runtimes are called here directly (ai-edge-litert's interpreter, onnxruntime, OpenVINO),
not through reszoo, and compared with the Keras model on the same images: float32 artifacts
within 1e-4 of the largest logit, float16 within 1e-2, and the int8 artifacts' accuracy on the
held-out digits within one point of the float model's. A small ResNet trained on digits for a
few epochs (module fixture) gives the logits and the accuracies a meaning.
"""

import json
import os
import re
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import reszoo
from reszoo import data
from reszoo.serving.keras_formats import KERAS_FORMATS, METADATA_FILE

TINY = {"depths": [1, 1, 1], "widths": [16, 32, 32], "stem_width": 16}
METADATA = {
    "model_name": "digits-resnet",
    "class_names": [f"digit {i}" for i in range(10)],
    "input_size": [32, 32],
    "preprocessing": "torch",
}
FLOAT_TOLERANCE = {"float32": 1e-4, "float16": 1e-2}  # relative to the largest |logit|


# ----------------------------------------------------------------------------- runtimes


def run_litert(directory, images, output="logits"):
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(directory / "model.tflite")).get_signature_runner()
    return runner(images=images)[output]


def run_onnx(directory, images, output="logits"):
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(directory / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    return session.run([output], {"images": images})[0]


def run_openvino(directory, images, output="logits"):
    import openvino as ov

    # float32 execution asked for: OpenVINO's CPU default is bfloat16 where the CPU has it.
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    compiled = ov.Core().compile_model(str(directory / "model.xml"), "CPU", config)
    return compiled(images)[compiled.output(output)]


RUNTIMES = {"litert": run_litert, "onnx": run_onnx, "openvino": run_openvino}


def relative_difference(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def accuracy(logits, labels):
    return float(np.mean(np.argmax(logits, axis=-1) == labels))


def write(fmt, model, target, **options):
    return KERAS_FORMATS[fmt].write(model, target, metadata=METADATA, options=options)


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small ResNet trained on digits (94% held-out accuracy here) and the held-out set."""
    run = tmp_path_factory.mktemp("runs") / "digits"
    result = reszoo.fit(
        "resnet20",
        "digits",
        epochs=5,
        batch_size=64,
        lr=0.1,
        augment="none",
        precision="float32",
        overrides=TINY,
        output_dir=str(run),
        verbose=0,
        seed=0,
    )
    _, val, _ = data.load("digits", batch_size=512, image_size=(32, 32), augment="none")
    images, labels = (np.concatenate(part) for part in zip(*[(x, y) for x, y in val]))
    return run, result.model, images.astype(np.float32), labels


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory):
    """Every format and LiteRT quantization, written once: {variant: directory}."""
    run, model, _, _ = trained
    root = tmp_path_factory.mktemp("exports")
    variants = {
        "litert-float32": ("litert", {}),
        "litert-float16": ("litert", {"quantize": "float16"}),
        "litert-dynamic_int8": ("litert", {"quantize": "dynamic_int8"}),
        "litert-int8": ("litert", {"quantize": "int8", "representative_data": run}),
        "onnx": ("onnx", {}),
        "openvino": ("openvino", {}),
    }
    for variant, (fmt, options) in variants.items():
        write(fmt, model, root / variant, **options)
    return {variant: root / variant for variant in variants}


# ----------------------------------------------------------------------------- accuracy


@pytest.mark.parametrize(
    "variant, runtime, precision",
    [
        ("litert-float32", "litert", "float32"),
        ("onnx", "onnx", "float32"),
        ("openvino", "openvino", "float32"),
        ("litert-float16", "litert", "float16"),
    ],
)
def test_float_exports_compute_the_keras_logits(exported, trained, variant, runtime, precision):
    _, model, images, _ = trained
    batch = images[:64]
    got = RUNTIMES[runtime](exported[variant], batch)
    want = model(batch, training=False).numpy()
    assert got.shape == want.shape == (64, 10)
    assert relative_difference(got, want) <= FLOAT_TOLERANCE[precision]
    np.testing.assert_array_equal(got.argmax(-1), want.argmax(-1))


@pytest.mark.parametrize("variant", ["litert-dynamic_int8", "litert-int8"])
def test_int8_accuracy_is_within_one_point_of_float(exported, trained, variant):
    _, model, images, labels = trained
    float_accuracy = accuracy(model.predict(images, batch_size=128, verbose=0), labels)
    int8_accuracy = accuracy(run_litert(exported[variant], images), labels)
    assert len(labels) >= 300 and float_accuracy > 0.85  # a model worth quantizing
    assert abs(int8_accuracy - float_accuracy) <= 0.01, (int8_accuracy, float_accuracy)


def test_full_integer_model_computes_in_int8_between_float_input_and_output(exported):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(exported["litert-int8"] / "model.tflite"))
    dtypes = [t["dtype"] for t in interpreter.get_tensor_details()]
    assert dtypes.count(np.float32) == 2  # the images in, the logits out
    assert dtypes.count(np.int8) > 10
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    float_size = (exported["litert-float32"] / "model.tflite").stat().st_size
    for variant in ("litert-int8", "litert-dynamic_int8"):
        assert (exported[variant] / "model.tflite").stat().st_size < float_size / 2


def test_int8_calibrates_on_a_folder_of_images(trained, tmp_path):
    _, model, images, labels = trained
    train, _, _ = data.load("digits", batch_size=100, image_size=(32, 32), augment="none")
    folder = tmp_path / "calibration"
    for i, image in enumerate(next(iter(train))[0].numpy()):
        (folder / str(i % 10)).mkdir(parents=True, exist_ok=True)
        png = tf.io.encode_png(np.clip(np.round(image), 0, 255).astype(np.uint8)).numpy()
        (folder / str(i % 10) / f"{i}.png").write_bytes(png)
    write("litert", model, tmp_path / "int8", quantize="int8", representative_data=folder)
    float_accuracy = accuracy(model.predict(images, batch_size=128, verbose=0), labels)
    int8_accuracy = accuracy(run_litert(tmp_path / "int8", images), labels)
    assert abs(int8_accuracy - float_accuracy) <= 0.01, (int8_accuracy, float_accuracy)


# ----------------------------------------------------------------------------- metadata


@pytest.mark.parametrize("variant", ["litert-float32", "litert-int8", "onnx", "openvino"])
def test_metadata_is_written_beside_and_inside_each_artifact(exported, variant):
    fmt = KERAS_FORMATS[variant.split("-")[0]]
    directory = exported[variant]
    beside = json.loads((directory / METADATA_FILE).read_text())
    inside = json.loads(fmt.read_embedded_metadata(directory / fmt.file_name))
    for key, value in METADATA.items():
        assert beside[key] == inside[key] == value
    assert beside["export_format"] == inside["export_format"]
    assert beside["export_format"]["name"] == fmt.name
    assert beside["export_format"]["inputs"]["images"]["shape"] == [-1, 32, 32, 3]
    assert beside["export_format"]["outputs"] == ["logits"]
    assert beside["verification"]["outputs"]["logits"]["max_relative"] < 0.1
    assert sorted(os.listdir(directory)) == sorted(
        [*beside["export_format"]["files"], METADATA_FILE]
    )


def test_litert_metadata_records_the_quantization(exported):
    modes = {
        variant: json.loads((exported[variant] / METADATA_FILE).read_text())["export_format"]
        for variant in ("litert-float32", "litert-int8")
    }
    assert modes["litert-float32"]["quantize"] == "float32"
    assert modes["litert-int8"]["quantize"] == "int8"


# ----------------------------------------------------------------------------- other models


@pytest.mark.parametrize("fmt", sorted(KERAS_FORMATS))
def test_a_model_with_several_outputs_keeps_their_names(trained, tmp_path, fmt):
    _, model, images, _ = trained
    stage = model.get_layer("stage2_block1").output
    features = keras.Model(model.inputs[0], {"stage2": stage, "logits": model.outputs[0]})
    write(fmt, features, tmp_path / fmt)
    want = features(images[:8], training=False)
    for name in ("stage2", "logits"):
        got = RUNTIMES[fmt](tmp_path / fmt, images[:8], output=name)
        assert relative_difference(got, want[name].numpy()) <= 1e-4


def test_a_mixed_precision_model_exports_its_weights_in_float32(tmp_path):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        mixed = reszoo.build("resnet20", **TINY)
    finally:
        keras.config.set_dtype_policy(previous)
    reference = reszoo.build("resnet20", **TINY)  # float32, given the same weights
    reference.set_weights(mixed.get_weights())
    write("onnx", mixed, tmp_path / "onnx")
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype(np.float32)
    got = run_onnx(tmp_path / "onnx", images)
    assert relative_difference(got, reference(images).numpy()) <= 1e-4
    assert mixed.dtype_policy.name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == previous.name


# ----------------------------------------------------------------------------- bad input


def assert_nothing_written(parent, target):
    assert not target.exists()
    assert not parent.exists() or not [p for p in os.listdir(parent) if p.startswith(".reszoo")]


@pytest.mark.parametrize(
    "fmt, module, extra",
    [
        ("litert", "ai_edge_litert.interpreter", "reszoo[litert]"),
        ("onnx", "tf2onnx", "reszoo[onnx]"),
        ("onnx", "onnxruntime", "reszoo[onnx]"),
        ("openvino", "openvino", "reszoo[openvino]"),
    ],
)
def test_a_missing_converter_names_the_pip_extra(monkeypatch, tmp_path, fmt, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # import now fails
    model = reszoo.build("resnet20", **TINY)
    with pytest.raises(reszoo.ExportError, match=rf"pip install \"{re.escape(extra)}\""):
        write(fmt, model, tmp_path / "out" / fmt)
    assert_nothing_written(tmp_path / "out", tmp_path / "out" / fmt)


def test_int8_without_representative_data_is_refused(tmp_path):
    model = reszoo.build("resnet20", **TINY)
    with pytest.raises(reszoo.ExportError, match="representative images and none were given"):
        write("litert", model, tmp_path / "out" / "int8", quantize="int8")
    assert_nothing_written(tmp_path / "out", tmp_path / "out" / "int8")


@keras.saving.register_keras_serializable(package="reszoo_tests")
class InverseErfGate(keras.layers.Layer):
    """A layer computing erfinv, an operation LiteRT's builtins, ONNX and OpenVINO all lack."""

    def call(self, x):
        return keras.ops.erfinv(0.5 * keras.ops.tanh(x))


@pytest.mark.parametrize("fmt", sorted(KERAS_FORMATS))
def test_an_operation_the_format_lacks_is_named_and_nothing_is_written(tmp_path, fmt):
    inputs = keras.Input((16, 16, 3), name="images")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    outputs = keras.layers.Dense(3, name="logits")(InverseErfGate(name="erf_gate")(x))
    model = keras.Model(inputs, outputs, name="odd")
    with pytest.raises(reszoo.ExportError, match=r"cannot express model 'odd'.*Erfinv.*erf_gate"):
        write(fmt, model, tmp_path / "out" / fmt)
    assert_nothing_written(tmp_path / "out", tmp_path / "out" / fmt)


def test_onnx_refuses_resnext_whose_grouped_convolutions_keras_compiles_with_xla(tmp_path):
    # Keras's TensorFlow backend runs a grouped convolution as an XLA-compiled nested function,
    # which tf2onnx keeps as an untranslated call; LiteRT and OpenVINO convert it.
    model = reszoo.build(
        "resnext50_32x4d",
        input_shape=(32, 32, 3),
        num_classes=3,
        depths=[1, 1, 1, 1],
        widths=[8, 16, 16, 16],
        stem_width=8,
        groups=2,
        base_width=64,
    )
    with pytest.raises(
        reszoo.ExportError, match=r"no onnx operation for StatefulPartitionedCall .*grouped conv"
    ):
        write("onnx", model, tmp_path / "out" / "onnx")
    assert_nothing_written(tmp_path / "out", tmp_path / "out" / "onnx")


def test_an_existing_export_is_replaced_only_when_asked(tmp_path):
    model = reszoo.build("resnet20", **TINY)
    target = tmp_path / "onnx"
    target.mkdir()
    (target / "keep.txt").write_text("earlier export")
    with pytest.raises(reszoo.ExportError, match="already exists.*overwrite=True"):
        write("onnx", model, target)
    assert os.listdir(target) == ["keep.txt"]
    files = write("onnx", model, target, overwrite=True)
    assert (
        sorted(p.name for p in files) == sorted(os.listdir(target)) == ["model.onnx", METADATA_FILE]
    )
    assert_nothing_written(tmp_path, tmp_path / "absent")


@pytest.mark.parametrize(
    "options, message",
    [
        ({"quantize": "int4"}, "quantize='int4' is not a LiteRT quantization"),
        ({"opset": 17}, "format 'litert' takes no option"),
        ({"representative_data": np.zeros((2, 32, 32))}, r"shape \[N, height, width, 3\]"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(tmp_path, options, message):
    model = reszoo.build("resnet20", **TINY)
    with pytest.raises(reszoo.ExportError, match=message):
        write("litert", model, tmp_path / "out", **options)
    assert_nothing_written(tmp_path, tmp_path / "out")


def test_a_model_with_two_inputs_is_refused(tmp_path):
    a, b = keras.Input((8, 8, 3), name="a"), keras.Input((8, 8, 3), name="b")
    model = keras.Model([a, b], keras.layers.Add()([a, b]))
    with pytest.raises(reszoo.ExportError, match="has 2 inputs; export needs one image input"):
        write("onnx", model, tmp_path / "out")
    assert_nothing_written(tmp_path, tmp_path / "out")


# ----------------------------------------------------------------------------- reszoo.export


def test_reszoo_export_writes_versions_of_every_format_from_a_run_directory(trained, tmp_path):
    """reszoo.export / `reszoo export --format`: versioned like the SavedModel, int8 calibrated
    on the run's own training data, class names from the run, the runtime's logits those of the
    trained model."""
    run, model, images, _ = trained
    base = tmp_path / "exported"
    path = reszoo.export(str(run), base, format="litert", options={"quantize": "int8"})
    assert path == base / "1" and sorted(p.name for p in path.iterdir()) == [
        "model.tflite", "reszoo_metadata.json",
    ]  # fmt: skip
    metadata = json.loads((path / "reszoo_metadata.json").read_text())
    assert metadata["class_names"] == [str(i) for i in range(10)] and metadata["version"] == 1
    assert metadata["export_format"]["quantize"] == "int8"
    assert reszoo.export(str(run), base, format="onnx") == base / "2"
    want = np.asarray(model(images[:16], training=False))
    assert relative_difference(run_onnx(base / "2", images[:16]), want) < FLOAT_TOLERANCE["float32"]


def test_saved_model_takes_no_format_options_and_writes_nothing(trained, tmp_path):
    run, _, _, _ = trained
    with pytest.raises(reszoo.ExportError, match="takes no option.*quantize"):
        reszoo.export(str(run), tmp_path / "out", options={"quantize": "int8"})
    assert not (tmp_path / "out").exists()
