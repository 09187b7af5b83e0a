"""The serving side of tests/test_export.py: what TF Serving does with an export, without reszoo.

Run as a script in a fresh interpreter that cannot import reszoo (or Keras):

    python -I -S tests/export_client.py SPEC.json

-I -S leave the repository, PYTHONPATH and every .pth file (reszoo's editable install is one) off
sys.path; SPEC.json names the site-packages directories, of which a view without reszoo and
Keras is put back on sys.path, the SavedModel, the requests to send and where to write the
answers. This file imports nothing from reszoo, and the
functions below are usable on their own:

- rest_to_inputs: a TF Serving REST body ({"signature_name", "instances"} row format or
  {"inputs"} columnar format, {"b64": ...} for binary strings) -> named numpy arrays, following
  https://www.tensorflow.org/tfx/serving/api_rest.
- predictions_to_rest: outputs -> the REST response body ({"predictions": [...]}).
- read_warmup_requests: decode assets.extra/tf_serving_warmup_requests (TFRecord of
  tensorflow.serving.PredictionLog) with a protobuf descriptor written here from TF Serving's
  .proto field numbers, independently of the encoder in reszoo/serving/warmup.py.
"""

from __future__ import annotations

import base64
import json
import sys

# ------------------------------------------------------------------------------ REST (JSON)


def _decode_value(value, is_string: bool):
    """JSON value -> a Python value; {"b64": ...} objects become bytes (strings only)."""
    if isinstance(value, dict):
        if set(value) == {"b64"}:
            if not is_string:
                raise ValueError("{'b64': ...} is only allowed for string (DT_STRING) inputs")
            return base64.b64decode(value["b64"], validate=True)
        raise ValueError(f"unexpected JSON object {sorted(value)} in a tensor value")
    if isinstance(value, list):
        return [_decode_value(v, is_string) for v in value]
    if is_string and isinstance(value, str):
        return value.encode("utf-8")
    return value


def rest_to_inputs(body: dict, input_dtypes: dict) -> dict:
    """A REST predict body -> {input name: numpy array of the signature's dtype}.

    input_dtypes: {input name: numpy dtype (object for strings)} of the signature.
    Row format: "instances" is a list, one entry per example; with a single named input an entry
    is that input's value (or an object naming it), and the batch is the entries stacked on a
    new first axis. Columnar format: "inputs" is the value of the single input, or an object of
    named batched values.
    """
    import numpy as np

    if ("instances" in body) == ("inputs" in body):
        raise ValueError("the body needs exactly one of 'instances' (row) or 'inputs' (columnar)")
    names = sorted(input_dtypes)
    columns = {}
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise ValueError("'instances' must be a list")
        for name in names:
            columns[name] = []
        for instance in instances:
            if isinstance(instance, dict) and not (set(instance) == {"b64"}):
                if sorted(instance) != names:
                    raise ValueError(f"instance keys {sorted(instance)} != inputs {names}")
                for name in names:
                    columns[name].append(instance[name])
            elif len(names) == 1:
                columns[names[0]].append(instance)
            else:
                raise ValueError(f"the signature has inputs {names}: name them in each instance")
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and not (set(inputs) == {"b64"}):
            columns = dict(inputs)
        elif len(names) == 1:
            columns = {names[0]: inputs}
        else:
            raise ValueError(f"the signature has inputs {names}: name them in 'inputs'")
    out = {}
    for name in names:
        dtype = np.dtype(input_dtypes[name])
        is_string = dtype == np.dtype(object)
        value = _decode_value(columns[name], is_string)
        out[name] = np.array(value, dtype=object) if is_string else np.asarray(value, dtype)
    return out


def predictions_to_rest(outputs: dict) -> dict:
    """Signature outputs (numpy, batch-first) -> {"predictions": [{name: value}, ...]}.

    Strings are returned as text; TF Serving would base64 them only for names ending in _bytes.
    """
    names = sorted(outputs)
    batch = len(outputs[names[0]])
    predictions = []
    for i in range(batch):
        row = {}
        for name in names:
            value = outputs[name][i]
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            elif hasattr(value, "tolist"):
                value = value.tolist()
            row[name] = value
        predictions.append(row)
    return {"predictions": predictions}


# ------------------------------------------------------------------------------ warm-up records


def prediction_log_class():
    """tensorflow.serving.PredictionLog (the predict_log branch), from hand-written descriptors.

    Field numbers, from tensorflow_serving/apis/{prediction_log,predict,model}.proto:
    PredictionLog.predict_log = 6; PredictLog.request = 1; PredictRequest.model_spec = 1,
    inputs = 2 (map<string, tensorflow.TensorProto>); ModelSpec.name = 1, signature_name = 3.
    """
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    from tensorflow.core.framework import tensor_pb2

    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(file_descriptor):
        if file_descriptor.name in added:
            return
        for dependency in file_descriptor.dependencies:
            add(dependency)
        proto = descriptor_pb2.FileDescriptorProto()
        file_descriptor.CopyToProto(proto)
        pool.Add(proto)
        added.add(file_descriptor.name)

    add(tensor_pb2.DESCRIPTOR)
    F = descriptor_pb2.FieldDescriptorProto
    f = descriptor_pb2.FileDescriptorProto(
        name="reszoo_test/prediction_log.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=[tensor_pb2.DESCRIPTOR.name],
    )

    def message(name, fields, nested=()):
        m = f.message_type.add(name=name)
        for entry in nested:
            m.nested_type.add().CopyFrom(entry)
        for field_name, number, kind, type_name, label in fields:
            m.field.add(
                name=field_name,
                number=number,
                type=kind,
                label=label,
                **({"type_name": type_name} if type_name else {}),
            )
        return m

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    message(
        "ModelSpec",
        [("name", 1, F.TYPE_STRING, None, opt), ("signature_name", 3, F.TYPE_STRING, None, opt)],
    )
    entry = descriptor_pb2.DescriptorProto(name="InputsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=opt)
    entry.field.add(
        name="value", number=2, type=F.TYPE_MESSAGE, label=opt, type_name=".tensorflow.TensorProto"
    )
    message(
        "PredictRequest",
        [
            ("model_spec", 1, F.TYPE_MESSAGE, ".tensorflow.serving.ModelSpec", opt),
            ("inputs", 2, F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest.InputsEntry", rep),
        ],
        nested=[entry],
    )
    message(
        "PredictLog", [("request", 1, F.TYPE_MESSAGE, ".tensorflow.serving.PredictRequest", opt)]
    )
    message(
        "PredictionLog", [("predict_log", 6, F.TYPE_MESSAGE, ".tensorflow.serving.PredictLog", opt)]
    )
    pool.Add(f)
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("tensorflow.serving.PredictionLog")
    )


def read_warmup_requests(path: str) -> list:
    """[(model name, signature name, {input name: numpy array})] from a warm-up file."""
    import tensorflow as tf
    from tensorflow.core.framework import tensor_pb2

    PredictionLog = prediction_log_class()
    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = PredictionLog.FromString(record.numpy())
        if not log.HasField("predict_log"):
            raise ValueError("a warm-up record is not a predict_log")
        request = log.predict_log.request
        inputs = {
            name: tf.make_ndarray(tensor_pb2.TensorProto.FromString(tensor.SerializeToString()))
            for name, tensor in request.inputs.items()
        }
        requests.append((request.model_spec.name, request.model_spec.signature_name, inputs))
    return requests


# ------------------------------------------------------------------------------ the script

_HIDDEN = ("reszoo", "__editable__", "keras", "tf_keras")


def _serving_path(site_packages: list, view: str) -> list:
    """A view of site-packages without reszoo and Keras: a folder of links to everything else.

    TensorFlow looks for Keras (importlib.util.find_spec) while importing; here it finds none,
    as on a server with TensorFlow and nothing else.
    """
    import os

    os.makedirs(view, exist_ok=True)
    for directory in site_packages:
        for entry in os.listdir(directory):
            if entry.startswith(_HIDDEN) or entry.endswith(".pth"):
                continue
            link = os.path.join(view, entry)
            if not os.path.lexists(link):
                os.symlink(os.path.join(directory, entry), link)
    return [view]


def _serve(spec: dict) -> None:
    import importlib.util

    sys.path.extend(_serving_path(spec["site_packages"], spec["site_view"]))
    report = {
        "reszoo_spec": importlib.util.find_spec("reszoo") is not None,
        "keras_spec": importlib.util.find_spec("keras") is not None,
    }

    import numpy as np
    import tensorflow as tf

    report["keras_imported"] = "keras" in sys.modules
    loaded = tf.saved_model.load(spec["export"])
    signatures = loaded.signatures
    report["signatures"] = {
        name: {
            "inputs": {
                k: [v.dtype.name, v.shape.as_list()]
                for k, v in fn.structured_input_signature[1].items()
            },
            "outputs": {
                k: [v.dtype.name, v.shape.as_list()] for k, v in fn.structured_outputs.items()
            },
        }
        for name, fn in signatures.items()
    }

    def call(signature, inputs):
        outputs = signatures[signature](**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}

    arrays = {}
    requests = np.load(spec["requests"], allow_pickle=True)
    for key in requests.files:  # "<signature>/<case>/<input name>"
        signature, case, input_name = key.split("/")
        for out_name, value in call(signature, {input_name: requests[key]}).items():
            arrays[f"{signature}/{case}/{out_name}"] = value

    report["rest"] = {}
    for case, body in spec["rest"].items():
        signature = body.get("signature_name", "serving_default")
        fn = signatures[signature]
        dtypes = {
            k: (object if v.dtype == tf.string else v.dtype.as_numpy_dtype)
            for k, v in fn.structured_input_signature[1].items()
        }
        report["rest"][case] = predictions_to_rest(call(signature, rest_to_inputs(body, dtypes)))

    good = requests[spec["good_request"]]
    good_signature = spec["good_request"].split("/")[0]
    report["bad"] = {}
    for case, (signature, input_name, array) in _bad_requests(spec, np).items():
        try:
            call(signature, {input_name: array})
            error = None
        except Exception as e:  # noqa: BLE001 - recorded for the test to judge
            error = {"type": type(e).__name__, "message": str(e)}
        after = call(good_signature, {spec["good_request"].split("/")[2]: good})
        report["bad"][case] = {"error": error, "next_ok_logits": after["logits"].tolist()}

    report["warmup"] = []
    for model_name, signature, inputs in read_warmup_requests(spec["warmup"]):
        outputs = call(signature, inputs)
        report["warmup"].append(
            {
                "model_name": model_name,
                "signature": signature,
                "inputs": {k: [str(v.dtype), list(v.shape)] for k, v in inputs.items()},
                "logits_shape": list(outputs["logits"].shape),
            }
        )
    report["keras_imported_after"] = "keras" in sys.modules
    np.savez(spec["out_arrays"], **arrays)
    with open(spec["out_report"], "w") as f:
        json.dump(report, f)


def _bad_requests(spec, np):
    h, w = spec["size"]
    image = np.full((1, h, w, 3), 100, np.float32)
    return {
        "wrong_dtype": ("serving_default", "images", image.astype(np.int32)),
        "wrong_dtype_uint8": ("serving_uint8", "images", image),
        "wrong_rank": ("serving_default", "images", image[0]),
        "wrong_rank_5d": ("serving_uint8", "images", image[None].astype(np.uint8)),
        "wrong_channels": ("serving_default", "images", np.zeros((1, h, w, 4), np.float32)),
        "empty_batch": ("serving_default", "images", np.zeros((0, h, w, 3), np.float32)),
        "empty_batch_uint8": ("serving_uint8", "images", np.zeros((0, h, w, 3), np.uint8)),
        "empty_batch_bytes": ("serving_image_bytes", "image_bytes", np.array([], dtype=object)),
        "zero_size_image": ("serving_default", "images", np.zeros((1, 0, w, 3), np.float32)),
        "not_an_image": (
            "serving_image_bytes",
            "image_bytes",
            np.array([b"this is not an image"], dtype=object),
        ),
        "truncated_png": (
            "serving_image_bytes",
            "image_bytes",
            np.array([spec_png_prefix(spec)], dtype=object),
        ),
        "bytes_rank_2": ("serving_image_bytes", "image_bytes", np.array([[b"x"]], dtype=object)),
    }


def spec_png_prefix(spec) -> bytes:
    return base64.b64decode(spec["truncated_png_b64"])


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        _serve(json.load(f))
