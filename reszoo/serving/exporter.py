"""reszoo.export: write a model as EXPORT_DIR/<version>/ in one of FORMATS.

    import reszoo
    reszoo.export(model, "exported/resnet20", class_names=["airplane", ...])  # -> .../1
    reszoo export runs/resnet20-digits exported/resnet20          # a run directory
    reszoo export resnet50 exported/resnet50 --version 3          # untrained: for plumbing

The steps, each in its own module: the model comes from reszoo/serving/sources.py, the
destination is checked and staged by destination.py, the metadata is built by metadata.py,
and the format (formats.py; "saved_model" by default, see saved_model.py, signatures.py,
graph.py, limits.py) writes the version, which is then renamed into place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from reszoo.errors import ExportError
from reszoo.serving import sources
from reszoo.serving.destination import Staging, check_export_dir
from reszoo.serving.formats import FORMATS, ExportJob
from reszoo.serving.limits import (
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_REQUEST_PIXELS,
    ServingLimits,
)
from reszoo.serving.metadata import check_class_names, export_metadata, read_summary
from reszoo.serving.signatures import SIGNATURES, check_names

__all__ = ["export", "check_export_dir"]


def _format(name):
    if name not in FORMATS:
        raise ExportError(f"unknown export format {name!r}; choose one of {sorted(FORMATS)}")
    return FORMATS[name]


def _exportable(source, *, model_name, config, summary) -> sources.ModelSource:
    """The loaded source with the caller's overrides; an export cannot be exported again."""
    if source.model is None:
        origin = (source.metadata or {}).get("run_dir") or "the model it was written from"
        raise ExportError(f"{source.export_path} is already an export; export {origin} instead")
    sources.classifier_size(source.model)
    return dataclasses.replace(
        source,
        name=model_name or source.name,
        config=config if config is not None else source.config,
        summary=read_summary(summary) if summary is not None else source.summary,
    )


def _job(source, class_names, export_dir: Path, writer, limits, signatures, options) -> ExportJob:
    names = check_class_names(
        class_names if class_names is not None else source.class_names,
        sources.classifier_size(source.model)[2],
    )
    chosen = {name: SIGNATURES[name] for name in signatures}
    metadata = export_metadata(
        source, class_names=names, signatures=chosen, limits=limits, format_name=writer.name
    )
    return ExportJob(
        source=source,
        class_names=names,
        metadata=metadata,
        limits=limits,
        signatures=tuple(signatures),
        serving_name=export_dir.resolve().name,
        options={k: v for k, v in (options or {}).items() if v is not None},
    )


def export(
    model,
    export_dir,
    *,
    format="saved_model",
    version=None,
    class_names=None,
    model_name=None,
    config=None,
    summary=None,
    overwrite=False,
    signatures=None,
    max_batch_size=DEFAULT_MAX_BATCH_SIZE,
    max_image_pixels=DEFAULT_MAX_IMAGE_PIXELS,
    max_request_pixels=DEFAULT_MAX_REQUEST_PIXELS,
    options=None,
) -> Path:
    """Write `model` as EXPORT_DIR/<version>/ in `format`; returns that path.

    model: a keras.Model (one image input, logits out), a zoo name (built untrained) or a
        reszoo.fit run directory (a str/Path; see reszoo/serving/sources.py for how it is read).
    format: a name of reszoo.serving.formats.FORMATS ("saved_model": TF Serving).
    version: a positive integer; None: one more than the highest version present (1 at first).
    class_names: one string per class (default: the run's, else "0", "1", ...).
    model_name, config, summary: recorded in the metadata (defaults: the model's name, its
        resolved registry config when known, the run's summary.json; summary may be a path).
    overwrite: replace an existing version.
    signatures: names of SIGNATURES to export (default: all).
    max_batch_size, max_image_pixels, max_request_pixels: the serving limits (see
        reszoo/serving/limits.py for the defaults and why), enforced in the graph.
    options: the LiteRT/ONNX/OpenVINO formats' own, e.g. {"quantize": "int8",
        "representative_data": "runs/x"} (reszoo/serving/keras_export.py lists them).

    Raises ExportError (a ValueError) for bad input; nothing is left half-written.
    """
    export_dir = Path(export_dir)
    writer = _format(format)
    limits = ServingLimits(max_batch_size, max_image_pixels, max_request_pixels)
    chosen = check_names(signatures)
    version = check_export_dir(export_dir, version, overwrite)
    source = _exportable(sources.load(model), model_name=model_name, config=config, summary=summary)
    job = _job(source, class_names, export_dir, writer, limits, chosen, options)
    writer.check(job)
    with Staging(export_dir) as staging:
        writer.write(job, staging.target, staging.scratch)
        return staging.publish(version, overwrite, writer.metadata_file)
