"""OpenVINO IR export (model.xml + model.bin, float32) through Keras, run with OpenVINO.

OpenVINO's converter refuses a TensorFlow operation it has no rule for ("No conversion rule
found for operations: ..."); that becomes an ExportError naming them. The metadata JSON is the
model's runtime-info entry "reszoo_metadata" (`core.read_model(xml).get_rt_info()`), written
into model.xml.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reszoo.errors import ExportError
from reszoo.serving.keras_export import METADATA_KEY, KerasFormat


@dataclass(frozen=True)
class OpenVINOFormat(KerasFormat):
    @property
    def artifact_files(self) -> tuple[str, ...]:
        return (self.file_name, Path(self.file_name).with_suffix(".bin").name)

    def unsupported_ops(self, error_text: str) -> list[str]:
        found = []
        for listed in re.findall(r"No conversion rule found for operations: ([\w, ]+)", error_text):
            found += [op.strip() for op in listed.split(",") if op.strip()]
        return found

    def embed_metadata(self, path: Path, text: str) -> None:
        """Re-save the IR with the metadata in its rt_info (weights kept float32)."""
        import openvino as ov

        model = ov.Core().read_model(str(path))
        model.set_rt_info(text, [METADATA_KEY])
        staged = path.with_name(".embedding-" + path.name)
        ov.save_model(model, str(staged), compress_to_fp16=False)
        del model
        os.replace(staged, path)
        os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))

    def load(self, path: Path, threads: int | None = None):
        import openvino as ov

        # float32 execution: on CPUs with bfloat16 units (AMX, AVX512_BF16) OpenVINO's default
        # inference precision is bfloat16, which would check the runtime's rounding, not the IR.
        config = {"INFERENCE_PRECISION_HINT": "f32"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        compiled = ov.Core().compile_model(str(path), "CPU", config)
        ports = {name: compiled.output(name) for name in self._output_names(compiled)}

        def predict(images):
            result = compiled(np.asarray(images, np.float32))
            return {name: np.asarray(result[port]) for name, port in ports.items()}

        return predict

    @staticmethod
    def _output_names(compiled) -> list[str]:
        """Each output under the name the export gave it (OpenVINO keeps tensor aliases too)."""
        names = []
        for output in compiled.outputs:
            plain = [n for n in output.get_names() if "/" not in n and ":" not in n]
            names.append(plain[0] if plain else output.get_any_name())
        return names

    def read_embedded_metadata(self, path) -> str:
        """The metadata JSON embedded in an OpenVINO model.xml, as OpenVINO reads it."""
        import openvino as ov

        info = ov.Core().read_model(str(path)).get_rt_info()
        if METADATA_KEY not in info:
            raise ExportError(f"{path} has no embedded {METADATA_KEY!r} entry")
        return info[METADATA_KEY].astype(str)


OPENVINO = OpenVINOFormat(
    name="openvino",
    extra="openvino",
    file_name="model.xml",
    keras_format="openvino",
    modules=("openvino",),
    runtime="openvino",
)
