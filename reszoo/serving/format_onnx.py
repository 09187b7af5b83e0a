"""ONNX export: tf2onnx through Keras, checked with onnx's checker and run with onnxruntime.

tf2onnx writes an operation it has no ONNX translation for into the graph as it is and still
succeeds; the file then fails in every runtime. The full check of `onnx.checker` after
conversion turns that into an ExportError naming the operations. The metadata JSON is the
model's metadata_props entry "reszoo_metadata" (onnxruntime:
`session.get_modelmeta().custom_metadata_map`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from reszoo.errors import ExportError
from reszoo.serving.keras_export import METADATA_KEY, KerasFormat, unsupported_error


@dataclass(frozen=True)
class ONNXFormat(KerasFormat):
    OPTIONS: ClassVar[dict] = {"opset": None}  # None: tf2onnx's default opset

    def export_kwargs(self, options: dict, images: np.ndarray | None) -> dict:
        opset = options["opset"]
        if opset is not None and (isinstance(opset, bool) or not isinstance(opset, int)):
            raise ExportError(f"opset must be an integer ONNX opset version; got {opset!r}")
        return {"opset_version": opset}

    def record_options(self, options: dict) -> dict:
        return {"opset": options["opset"]}

    def check_artifact(self, path: Path, model) -> None:
        import onnx

        graph = onnx.load(str(path)).graph
        try:
            onnx.checker.check_model(str(path), full_check=True)
        except onnx.checker.ValidationError as e:
            missing = [n.op_type for n in graph.node if not onnx.defs.has(n.op_type, n.domain)]
            if missing:
                raise unsupported_error(self.name, model, missing) from e
            raise ExportError(f"the ONNX converter wrote an invalid model: {e}") from e

    def embed_metadata(self, path: Path, text: str) -> None:
        import onnx

        model = onnx.load(str(path))
        entry = next((p for p in model.metadata_props if p.key == METADATA_KEY), None)
        entry = entry or model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, text
        onnx.save(model, str(path))

    def load(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        settings = ort.SessionOptions()
        if threads:
            settings.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), settings, providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]

        def predict(images):
            values = session.run(names, {"images": np.asarray(images, np.float32)})
            return dict(zip(names, values))

        return predict

    def read_embedded_metadata(self, path) -> str:
        """The metadata JSON embedded in a .onnx file, as onnxruntime reads it."""
        import onnxruntime as ort

        meta = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).get_modelmeta()
        if METADATA_KEY not in meta.custom_metadata_map:
            raise ExportError(f"{path} has no embedded {METADATA_KEY!r} entry")
        return meta.custom_metadata_map[METADATA_KEY]


ONNX = ONNXFormat(
    name="onnx",
    extra="onnx",
    file_name="model.onnx",
    keras_format="onnx",
    modules=("tf2onnx", "onnx", "onnxruntime"),
    runtime="onnxruntime",
)
