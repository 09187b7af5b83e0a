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
"""

from __future__ import annotations

import dataclasses
from pathlib import Path


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


class SavedModelFormat:
    """A TensorFlow SavedModel that TF Serving loads as it is (reszoo/serving/saved_model.py):
    the signatures of SIGNATURES, warm-up records, a batching example and the metadata in
    assets.extra/."""

    name = "saved_model"
    description = "SavedModel for TF Serving (signatures with preprocessing, limits, warm-up)"
    metadata_file = "assets.extra/reszoo_metadata.json"

    def check(self, job: ExportJob) -> None:
        from reszoo.serving.saved_model import check_saved_model

        check_saved_model(job)

    def write(self, job: ExportJob, target: Path, scratch: Path) -> None:
        from reszoo.serving.saved_model import write_saved_model

        write_saved_model(job, target, scratch)


FORMATS = {"saved_model": SavedModelFormat()}
