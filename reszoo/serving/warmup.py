"""TF Serving warm-up records: assets.extra/tf_serving_warmup_requests.

TF Serving runs these requests when it loads a version, so the first real request does not pay
for graph optimization and lazy initialization: one batch-of-one request per exported signature,
a mid-grey image of the model's input size, encoded by the signature's own `encode`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from reszoo.serving.signatures import SIGNATURES

WARMUP_FILE = "tf_serving_warmup_requests"
GREY = 128


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (wire type 2: strings, bytes, messages)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(model_name: str, signature_name: str, inputs: dict) -> bytes:
    """A serialized tensorflow.serving.PredictionLog holding one PredictRequest.

    Written in protobuf's wire format by hand, from the field numbers of
    tensorflow_serving/apis/{prediction_log,predict,model}.proto: PredictionLog.predict_log = 6,
    PredictLog.request = 1, PredictRequest.model_spec = 1 and inputs = 2 (a map: entries with
    key = 1, value = 2), ModelSpec.name = 1 and signature_name = 3. The tensors are TensorFlow's
    own TensorProto (tf.make_tensor_proto). This avoids tensorflow-serving-api, which depends on
    the `tensorflow` distribution and would install a second TensorFlow next to tensorflow-cpu.
    """
    spec = _field(1, model_name.encode()) + _field(3, signature_name.encode())
    request = _field(1, spec)
    for name in sorted(inputs):
        tensor = tf.make_tensor_proto(inputs[name]).SerializeToString()
        request += _field(2, _field(1, name.encode()) + _field(2, tensor))
    return _field(6, _field(1, request))


def warmup_requests(model_name: str, height: int, width: int, signatures=None) -> list[bytes]:
    """One batch-of-one request per signature (a mid-grey image), as serialized PredictionLogs."""
    grey = np.full((1, height, width, 3), GREY, np.uint8)
    return [
        prediction_log(model_name, name, {entry.input_name: entry.encode(grey)})
        for name, entry in SIGNATURES.items()
        if signatures is None or name in signatures
    ]


def write_warmup_requests(path, records: list[bytes]) -> None:
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in records:
            writer.write(record)
