"""Export formats: one table, FORMATS, from a `--format` name to the object that writes it.

An entry is any object with (SavedModelFormat below is the reference):

    name: str            the choice (`reszoo export ... --format NAME`, `export(format=NAME)`)
    description: str     one line for `reszoo export --help`
    metadata_file: str   where the format keeps reszoo_metadata.json, relative to the version
                         directory (at least a file beside the artifact); the exporter
                         rewrites its "version" field when the version is settled
    check(job)           before anything is written: raise reszoo.ExportError if this format
                         cannot write the job (a converter that is not installed: name its pip
                         extra; layers the format cannot express)
    write(job, target, scratch)
                         write the artifact and job.metadata into `target`, a path that does
                         not exist yet inside a hidden staging folder of the export directory;
                         `scratch` is an empty folder for temporary files. The exporter renames
                         `target` to EXPORT_DIR/<version> when write returns and removes the
                         staging folder either way, so a version is complete or absent.

`job` is an ExportJob: the model and what is recorded about it. This module does not import
TensorFlow (the command line lists the choices before TensorFlow starts): entries import what
they need inside `check` and `write`.

Besides the SavedModel, the formats Keras's own exporters write (LiteRT, ONNX, OpenVINO;
reszoo/serving/keras_formats.py) are entries through KerasExporterFormat: one version directory
holds the artifact and reszoo_metadata.json beside it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reszoo.errors import ExportError


@dataclasses.dataclass(frozen=True)
class ExportJob:
    """What the exporter hands to a format.

    source: the reszoo.serving.sources.ModelSource (source.model is the keras.Model).
    class_names: one name per class. metadata: the content of reszoo_metadata.json.
    limits: the ServingLimits. signatures: names from reszoo.serving.signatures.SIGNATURES.
    serving_name: the export directory's name (TF Serving's MODEL_NAME, used by warm-up).
    """

    source: object
    class_names: list
    metadata: dict
    limits: object
    signatures: tuple
    serving_name: str
    options: dict = dataclasses.field(default_factory=dict)


class SavedModelFormat:
    """A TensorFlow SavedModel that TF Serving loads as it is (reszoo/serving/saved_model.py):
    the signatures of SIGNATURES, warm-up records, a batching example and the metadata in
    assets.extra/."""

    name = "saved_model"
    description = "SavedModel for TF Serving (signatures with preprocessing, limits, warm-up)"
    metadata_file = "assets.extra/reszoo_metadata.json"

    def check(self, job: ExportJob) -> None:
        from reszoo.serving.saved_model import check_saved_model

        if job.options:
            raise ExportError(
                f"format 'saved_model' takes no option(s) {', '.join(sorted(job.options))}; "
                "they belong to the LiteRT/ONNX formats (--format litert, onnx)"
            )
        check_saved_model(job)

    def write(self, job: ExportJob, target: Path, scratch: Path) -> None:
        from reszoo.serving.saved_model import write_saved_model

        write_saved_model(job, target, scratch)


class KerasExporterFormat:
    """A format written by Keras's own exporter and checked by its runtime
    (reszoo/serving/keras_formats.py: KERAS_FORMATS[name]). The serving limits and signatures
    are the SavedModel's: a LiteRT/ONNX/OpenVINO runtime takes float32 pixels 0..255 as they are,
    at the model's input size."""

    metadata_file = "reszoo_metadata.json"

    def __init__(self, name: str, description: str):
        self.name = name
        self.description = description

    def _exporter(self):
        from reszoo.serving.keras_formats import KERAS_FORMATS

        return KERAS_FORMATS[self.name]

    def _options(self, job: ExportJob) -> dict:
        """The job's options; int8 from a run directory calibrates on that run's training data."""
        options = dict(job.options)
        run_dir = getattr(job.source, "run_dir", None)
        if options.get("quantize") == "int8" and not options.get("representative_data") and run_dir:
            options["representative_data"] = str(run_dir)
        return options

    def check(self, job: ExportJob) -> None:
        exporter = self._exporter()
        exporter.check_available()
        exporter.resolve_options(self._options(job))

    def write(self, job: ExportJob, target: Path, scratch: Path) -> None:
        metadata = {k: v for k, v in job.metadata.items() if k not in ("signatures", "limits")}
        self._exporter().write(
            job.source.model, target, metadata=metadata, options=self._options(job)
        )


FORMATS = {
    "saved_model": SavedModelFormat(),
    "litert": KerasExporterFormat(
        "litert", "LiteRT (TFLite) flatbuffer: float32, float16 or int8 (--quantize)"
    ),
    "onnx": KerasExporterFormat("onnx", "ONNX graph for onnxruntime (tf2onnx)"),
    "openvino": KerasExporterFormat("openvino", "OpenVINO IR (model.xml + model.bin)"),
}
