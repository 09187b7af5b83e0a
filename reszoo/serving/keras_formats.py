"""The export formats reached through Keras's own exporters, by name: LiteRT, ONNX, OpenVINO.

Each entry is a KerasFormat (reszoo.serving.keras_export) with `name`, `extra` (the pip extra
that installs its converter and runtime), `file_name`, `check_available()` and
`write(model, target_dir, *, metadata, options) -> list[Path]`. Adding a format is one entry
here and one module defining it.
"""

from __future__ import annotations

from reszoo.serving.format_litert import LITERT, QUANTIZATIONS
from reszoo.serving.format_onnx import ONNX
from reszoo.serving.format_openvino import OPENVINO
from reszoo.serving.keras_export import METADATA_FILE, METADATA_KEY, KerasFormat

KERAS_FORMATS: dict[str, KerasFormat] = {fmt.name: fmt for fmt in (LITERT, ONNX, OPENVINO)}

__all__ = ["KERAS_FORMATS", "KerasFormat", "METADATA_FILE", "METADATA_KEY", "QUANTIZATIONS"]
