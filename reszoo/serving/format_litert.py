"""LiteRT (TFLite) export: TensorFlow's converter through Keras, checked with ai-edge-litert.

Keras's LiteRT exporter hands its keyword arguments to `tf.lite.TFLiteConverter` as attributes
(`optimizations`, `representative_dataset`, `target_spec={...}`); each quantization mode below is
one such set. Every mode keeps float32 inputs and outputs (the integer model quantizes and
dequantizes at its edges), so one client works for all of them. Only LiteRT's builtin
operations are allowed: Keras would otherwise add TensorFlow ("Flex") operations, which
ai-edge-litert and a plain mobile runtime cannot run.

The metadata JSON is embedded as the model's metadata entry "reszoo_metadata" (a TFLite model
carries named byte buffers); `read_embedded_metadata` reads it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from reszoo.errors import ExportError
from reszoo.serving.keras_export import METADATA_KEY, KerasFormat


@dataclass(frozen=True)
class Quantization:
    """One LiteRT quantization mode: converter settings, and whether it calibrates on images."""

    description: str
    calibrates: bool
    weights_only_types: tuple[str, ...] = ()  # target_spec.supported_types
    optimize: bool = True


QUANTIZATIONS = {
    "float32": Quantization("float32 weights and activations", False, optimize=False),
    "float16": Quantization("float16 weights, float32 compute", False, ("float16",)),
    "dynamic_int8": Quantization("int8 weights, activations quantized on the fly", False),
    "int8": Quantization("full-integer int8 weights and activations", True),
}


def _tf():
    import tensorflow as tf

    return tf


@dataclass(frozen=True)
class LiteRTFormat(KerasFormat):
    OPTIONS: ClassVar[dict] = {"quantize": "float32"}

    def _quantization(self, options: dict) -> Quantization:
        mode = options["quantize"]
        if mode not in QUANTIZATIONS:
            raise ExportError(
                f"quantize={mode!r} is not a LiteRT quantization; choose one of "
                f"{', '.join(QUANTIZATIONS)}"
            )
        return QUANTIZATIONS[mode]

    def calibration(self, options: dict) -> str | None:
        if self._quantization(options).calibrates:
            return f"LiteRT quantize={options['quantize']!r} ({self._quantization(options).description})"
        return None

    def record_options(self, options: dict) -> dict:
        return {"quantize": options["quantize"]}

    def export_kwargs(self, options: dict, images: np.ndarray | None) -> dict:
        tf = _tf()
        mode = self._quantization(options)
        ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
            if mode.calibrates
            else tf.lite.OpsSet.TFLITE_BUILTINS
        ]
        target_spec = {"supported_ops": ops}
        if mode.weights_only_types:
            target_spec["supported_types"] = [tf.as_dtype(t) for t in mode.weights_only_types]
        kwargs = {"target_spec": target_spec}
        if mode.optimize:
            kwargs["optimizations"] = [tf.lite.Optimize.DEFAULT]
        if mode.calibrates:
            kwargs["representative_dataset"] = _one_at_a_time(images)
        return kwargs

    def unsupported_ops(self, error_text: str) -> list[str]:
        found = re.findall(r"'tfl?\.(\w+)' op is neither a custom op nor a flex op", error_text)
        for listed in re.findall(r"(?:Custom|Flex) ops: ([\w, ]+)", error_text):
            found += [op.strip() for op in listed.split(",") if op.strip()]
        return found

    def embed_metadata(self, path: Path, text: str) -> None:
        from tensorflow.lite.python import schema_py_generated as schema
        from tensorflow.lite.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model(str(path))
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(text.encode("utf-8"), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = METADATA_KEY
        entry.buffer = len(model.buffers) - 1
        model.metadata = [*(model.metadata or []), entry]
        flatbuffer_utils.write_model(model, str(path))

    def load(self, path: Path, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        runner = Interpreter(model_path=str(path), num_threads=threads).get_signature_runner()
        return lambda images: runner(images=np.asarray(images, np.float32))

    def read_embedded_metadata(self, path) -> str:
        """The metadata JSON embedded in a .tflite file (readable without TensorFlow)."""
        from ai_edge_litert.tools import flatbuffer_utils

        model = flatbuffer_utils.read_model(str(path))
        for entry in model.metadata or []:
            name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
            if name == METADATA_KEY:
                return bytes(model.buffers[entry.buffer].data).decode("utf-8")
        raise ExportError(f"{path} has no embedded {METADATA_KEY!r} entry")


def _one_at_a_time(images: np.ndarray):
    """The converter's representative_dataset: a generator of one-image batches."""

    def generate():
        for i in range(len(images)):
            yield [images[i : i + 1]]

    return generate


LITERT = LiteRTFormat(
    name="litert",
    extra="litert",
    file_name="model.tflite",
    keras_format="litert",
    modules=("tensorflow.lite", "ai_edge_litert.interpreter"),
    runtime="ai_edge_litert",
)
