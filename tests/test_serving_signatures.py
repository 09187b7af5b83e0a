"""What TF Serving sees of a SavedModel export: signatures, outputs, errors, warm-up, layout.

No TF Serving binary runs here, so these tests check what it relies on: the export loads in a
fresh interpreter that cannot import reszoo or Keras (tests/export_client.py, run with -I -S),
its signatures compute the Keras model's outputs, `saved_model_cli` shows the documented
signatures, REST bodies converted the way TF Serving documents give the same answers, bad
requests fail clearly without killing the process, and the warm-up records decode and run.
Every entry of the SIGNATURES table is also run on its own encoding of the same pixels.
"""

from __future__ import annotations

import base64
import json
import os
import re
import site
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
import keras  # noqa: E402
from export_client import read_warmup_requests  # noqa: E402
from serving_support import DOCUMENTED_SIGNATURES as SIGNATURES  # noqa: E402
from serving_support import (  # noqa: E402
    NAMES,
    TINY,
    assert_matches,
    decoded,
    encode,
    reference,
)

import reszoo  # noqa: E402
from reszoo.serving.signatures import SIGNATURES as TABLE  # noqa: E402

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "export_client.py"


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def tiny_model():
    keras.utils.set_random_seed(0)
    return reszoo.build("resnet18", **TINY)


@pytest.fixture(scope="module")
def exported(tiny_model, tmp_path_factory):
    base = tmp_path_factory.mktemp("export") / "tiny"
    config = reszoo.zoo.resolve_config("resnet18", **{**TINY, "input_shape": [64, 64, 3]})
    path = reszoo.export(
        tiny_model,
        base,
        class_names=NAMES,
        config=config.to_dict(),
        summary={"note": "not trained"},
    )
    return path


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (7, 64, 64, 3)).astype(np.uint8)
    floats = rng.uniform(0, 255, (7, 64, 64, 3)).astype(np.float32)  # not whole numbers
    return {
        "float": floats,
        "uint8": pixels,
        "png": encode(pixels, "png"),
        "jpeg": encode(pixels, "jpeg"),
        "float_other_size": rng.uniform(0, 255, (2, 48, 80, 3)).astype(np.float32),
        "png_other_size": encode(rng.integers(0, 256, (3, 50, 70, 3)), "png"),
    }


@pytest.fixture(scope="module")
def served(exported, inputs, tmp_path_factory):
    """Run tests/export_client.py on the export in `python -I -S` (no reszoo, no Keras)."""
    work = tmp_path_factory.mktemp("serving")
    requests = {
        "serving_default/b1/images": inputs["float"][:1],
        "serving_default/b7/images": inputs["float"],
        "serving_default/resize/images": inputs["float_other_size"],
        "serving_uint8/b1/images": inputs["uint8"][:1],
        "serving_uint8/b7/images": inputs["uint8"],
        "serving_image_bytes/png1/image_bytes": np.array(inputs["png"][:1], dtype=object),
        "serving_image_bytes/png7/image_bytes": np.array(inputs["png"], dtype=object),
        "serving_image_bytes/jpeg7/image_bytes": np.array(inputs["jpeg"], dtype=object),
        "serving_image_bytes/resize/image_bytes": np.array(inputs["png_other_size"], dtype=object),
    }
    np.savez(work / "requests.npz", **requests)
    b64 = [base64.b64encode(d).decode() for d in inputs["png"][:3]]
    rest = {
        "default_rows": {
            "signature_name": "serving_default",
            "instances": inputs["float"][:3].tolist(),
        },
        "default_columnar": {"inputs": {"images": inputs["float"][:2].tolist()}},
        "uint8_rows": {
            "signature_name": "serving_uint8",
            "instances": inputs["uint8"][:3].tolist(),
        },
        "bytes_rows": {
            "signature_name": "serving_image_bytes",
            "instances": [{"b64": s} for s in b64],
        },
        "bytes_named_rows": {
            "signature_name": "serving_image_bytes",
            "instances": [{"image_bytes": {"b64": s}} for s in b64],
        },
    }
    spec = {
        "site_packages": [
            p for p in site.getsitepackages() + [site.getusersitepackages()] if os.path.isdir(p)
        ],
        "site_view": str(work / "site-packages"),
        "export": str(exported),
        "requests": str(work / "requests.npz"),
        "rest": rest,
        "good_request": "serving_default/b1/images",
        "size": [64, 64],
        "truncated_png_b64": base64.b64encode(inputs["png"][0][:60]).decode(),
        "warmup": str(exported / "assets.extra" / "tf_serving_warmup_requests"),
        "out_arrays": str(work / "out.npz"),
        "out_report": str(work / "report.json"),
    }
    (work / "spec.json").write_text(json.dumps(spec))
    env = {"PATH": os.environ.get("PATH", ""), "TF_CPP_MIN_LOG_LEVEL": "3", "HOME": str(work)}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", str(CLIENT), str(work / "spec.json")],
        capture_output=True,
        text=True,
        cwd=work,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    arrays = np.load(work / "out.npz", allow_pickle=True)
    report = json.loads((work / "report.json").read_text())
    return {"arrays": {k: arrays[k] for k in arrays.files}, "report": report, "rest": rest}


def outputs_of(served, signature, case) -> dict:
    arrays = served["arrays"]
    return {
        name: arrays[f"{signature}/{case}/{name}"]
        for name in ("logits", "probabilities", "classes", "class_names")
    }


# ----------------------------------------------------------------------------- serving side


def test_serving_process_cannot_import_reszoo_or_keras(served):
    report = served["report"]
    assert report["reszoo_spec"] is False and report["keras_spec"] is False
    assert report["keras_imported"] is False and report["keras_imported_after"] is False


@pytest.mark.parametrize(
    "signature,case,source,batch",
    [
        ("serving_default", "b1", "float", 1),
        ("serving_default", "b7", "float", 7),
        ("serving_uint8", "b1", "uint8", 1),
        ("serving_uint8", "b7", "uint8", 7),
        ("serving_image_bytes", "png1", "png", 1),
        ("serving_image_bytes", "png7", "png", 7),
        ("serving_image_bytes", "jpeg7", "jpeg", 7),
    ],
)
def test_signature_gives_the_keras_outputs(
    served, inputs, tiny_model, signature, case, source, batch
):
    images = inputs[source]
    if source in ("png", "jpeg"):
        images = decoded(images)  # what the graph decodes (lossless for PNG)
    expected = reference(tiny_model, images.astype(np.float32)[:batch])
    outputs = outputs_of(served, signature, case)
    assert outputs["logits"].dtype == np.float32 and outputs["logits"].shape == (batch, 5)
    assert outputs["classes"].dtype == np.int64
    assert_matches(outputs, expected)


def test_png_bytes_equal_uint8_pixels(served):
    np.testing.assert_array_equal(
        outputs_of(served, "serving_image_bytes", "png7")["logits"],
        outputs_of(served, "serving_uint8", "b7")["logits"],
    )


def test_other_image_sizes_are_resized_in_the_graph(served, inputs, tiny_model):
    resized = tf.image.resize(inputs["float_other_size"], (64, 64)).numpy()
    assert_matches(outputs_of(served, "serving_default", "resize"), reference(tiny_model, resized))
    pngs = decoded(inputs["png_other_size"])
    resized = tf.image.resize(pngs, (64, 64)).numpy()
    assert_matches(
        outputs_of(served, "serving_image_bytes", "resize"), reference(tiny_model, resized)
    )


def test_loaded_signatures_have_documented_specs(served):
    signatures = served["report"]["signatures"]
    assert set(signatures) == set(SIGNATURES)
    for name, (input_name, dtype) in SIGNATURES.items():
        shape = [None] if dtype == "string" else [None, None, None, 3]
        assert signatures[name]["inputs"] == {input_name: [dtype, shape]}
        assert signatures[name]["outputs"] == {
            "logits": ["float32", [None, 5]],
            "probabilities": ["float32", [None, 5]],
            "classes": ["int64", [None]],
            "class_names": ["string", [None]],
        }


def test_saved_model_cli_lists_the_signatures(exported):
    cli = Path(sys.executable).with_name("saved_model_cli")
    command = [str(cli)] if cli.exists() else ["saved_model_cli"]
    proc = subprocess.run(
        command + ["show", "--all", "--dir", str(exported)],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    blocks = dict(
        re.findall(r"signature_def\['(\w+)'\]:\n(.*?)(?=\nsignature_def\[|\n\n|\Z)", text, re.S)
    )
    assert set(SIGNATURES) <= set(blocks)
    tf_dtype = {"float32": "DT_FLOAT", "uint8": "DT_UINT8", "string": "DT_STRING"}
    for name, (input_name, dtype) in SIGNATURES.items():
        block = blocks[name]
        shape = "(-1)" if dtype == "string" else "(-1, -1, -1, 3)"
        assert re.search(
            rf"inputs\['{input_name}'\] tensor_info:\s+dtype: {tf_dtype[dtype]}\s+"
            rf"shape: {re.escape(shape)}",
            block,
        ), block
        for output, odtype, oshape in [
            ("logits", "DT_FLOAT", "(-1, 5)"),
            ("probabilities", "DT_FLOAT", "(-1, 5)"),
            ("classes", "DT_INT64", "(-1)"),
            ("class_names", "DT_STRING", "(-1)"),
        ]:
            assert re.search(
                rf"outputs\['{output}'\] tensor_info:\s+dtype: {odtype}\s+"
                rf"shape: {re.escape(oshape)}",
                block,
            ), (output, block)
        assert "Method name is: tensorflow/serving/predict" in block


def test_rest_bodies_give_the_same_answers(served, inputs, tiny_model):
    rest = served["report"]["rest"]
    cases = {
        "default_rows": inputs["float"][:3],
        "default_columnar": inputs["float"][:2],
        "uint8_rows": inputs["uint8"][:3],
        "bytes_rows": decoded(inputs["png"][:3]),
        "bytes_named_rows": decoded(inputs["png"][:3]),
    }
    for case, images in cases.items():
        expected = reference(tiny_model, images.astype(np.float32))
        predictions = rest[case]["predictions"]
        assert len(predictions) == len(images), case
        outputs = {
            name: [p[name] for p in predictions]
            for name in ("logits", "probabilities", "classes", "class_names")
        }
        assert_matches(outputs, expected)


@pytest.mark.parametrize(
    "case,pattern",
    [
        ("wrong_dtype", r"float.*int32"),
        ("wrong_dtype_uint8", r"uint8.*float"),
        ("wrong_rank", r"images.*\[\?,\?,\?,3\]"),
        ("wrong_rank_5d", r"images.*\[\?,\?,\?,3\]"),
        ("wrong_channels", r"images.*\[\?,\?,\?,3\]"),
        ("empty_batch", r"empty batch: send at least one image"),
        ("empty_batch_uint8", r"empty batch: send at least one image"),
        ("empty_batch_bytes", r"empty batch: send at least one image"),
        ("zero_size_image", r"height and width of at least 1 pixel"),
        ("not_an_image", r"image_bytes: every element must be an encoded JPEG, PNG"),
        ("truncated_png", r"PNG"),
        ("bytes_rank_2", r"image_bytes"),
    ],
)
def test_bad_request_fails_clearly_and_the_next_one_succeeds(
    served, tiny_model, inputs, case, pattern
):
    result = served["report"]["bad"][case]
    assert result["error"] is not None, f"{case} was accepted"
    assert result["error"]["type"] in ("InvalidArgumentError", "TypeError", "ValueError")
    assert re.search(pattern, result["error"]["message"], re.S), result["error"]["message"][:600]
    np.testing.assert_allclose(
        result["next_ok_logits"], reference(tiny_model, inputs["float"][:1])["logits"], atol=1e-5
    )


def test_warmup_requests_decode_and_run(served, exported):
    warmup = served["report"]["warmup"]
    assert [w["signature"] for w in warmup] == list(SIGNATURES)
    assert all(w["model_name"] == exported.parent.name for w in warmup)
    assert all(w["logits_shape"] == [1, 5] for w in warmup)
    assert warmup[0]["inputs"] == {"images": ["float32", [1, 64, 64, 3]]}
    assert warmup[1]["inputs"] == {"images": ["uint8", [1, 64, 64, 3]]}
    assert warmup[2]["inputs"] == {"image_bytes": ["object", [1]]}


def test_layout_class_names_asset_and_metadata(exported):
    assert exported.name == "1"
    assert sorted(p.name for p in exported.parent.iterdir()) == ["1"]  # no temporary left
    assert (exported / "saved_model.pb").is_file()
    assert (exported / "variables" / "variables.index").is_file()
    lines = (exported / "assets" / "class_names.txt").read_text(encoding="utf-8").splitlines()
    assert lines == NAMES
    metadata = json.loads((exported / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["model_name"] == "resnet18"
    assert metadata["class_names"] == NAMES and metadata["num_classes"] == 5
    assert metadata["input_size"] == [64, 64] and metadata["version"] == 1
    assert metadata["config"]["depths"] == [1, 1, 1, 1]
    assert metadata["config"]["family"] == "resnet"
    assert metadata["training_summary"] == {"note": "not trained"}
    assert set(metadata["signatures"]) == set(SIGNATURES)
    assert metadata["versions"]["reszoo"] == reszoo.__version__
    assert metadata["versions"]["keras"] == keras.__version__
    assert metadata["versions"]["tensorflow"] == tf.__version__


# ----------------------------------------------------------------------------- the table


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(str(exported))


@pytest.mark.parametrize("name", list(TABLE))
def test_every_signature_of_the_table_serves_its_own_encoding(loaded, exported, tiny_model, name):
    """A new entry of SIGNATURES gets this check for free: pixels carried by its own `encode`
    give the Keras model's outputs (resized in the graph when not of the model's size), and
    the metadata and the warm-up records list it."""
    entry = TABLE[name]
    rng = np.random.default_rng(5)
    for shape, resize in [((3, 64, 64, 3), False), ((2, 50, 70, 3), True)]:
        pixels = rng.integers(0, 256, shape).astype(np.uint8)
        request = tf.constant(entry.encode(pixels), tf.as_dtype(entry.dtype))
        outputs = loaded.signatures[name](**{entry.input_name: request})
        images = pixels.astype(np.float32)
        if resize:
            images = tf.image.resize(images, (64, 64)).numpy()
        assert_matches({k: v.numpy() for k, v in outputs.items()}, reference(tiny_model, images))
    metadata = json.loads((exported / "assets.extra" / "reszoo_metadata.json").read_text())
    assert metadata["signatures"][name] == entry.metadata()
    warmup = read_warmup_requests(str(exported / "assets.extra" / "tf_serving_warmup_requests"))
    assert name in [signature for _, signature, _ in warmup]


def test_unit_float_pixels_give_the_answers_of_the_same_uint8_pixels(loaded):
    pixels = np.random.default_rng(6).integers(0, 256, (4, 48, 64, 3)).astype(np.uint8)
    unit = loaded.signatures["serving_unit_float"](images=tf.constant(pixels / np.float32(255)))
    uint8 = loaded.signatures["serving_uint8"](images=tf.constant(pixels))
    np.testing.assert_allclose(unit["logits"].numpy(), uint8["logits"].numpy(), atol=1e-4)
    np.testing.assert_array_equal(unit["classes"].numpy(), uint8["classes"].numpy())
