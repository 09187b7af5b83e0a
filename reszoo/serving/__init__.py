"""Serving: exports of reszoo models, and loading a classifier from wherever it lives.

    reszoo.serving.export(...)            reszoo.export: EXPORT_DIR/<version>/ in a format
    reszoo.serving.sources.load(...)      a keras.Model, zoo name, run directory or export
    reszoo.serving.SIGNATURES, FORMATS    the tables that say what an export offers

Modules: exporter (orchestration), sources (where a model comes from), destination (versions,
staging, cleanup), formats (the FORMATS table), saved_model (the TF Serving format), signatures
(the SIGNATURES table), graph (the serving graph the signatures share), limits and
request_checks (bounded requests), image_headers (image sizes before decoding), warmup,
metadata. The names below import TensorFlow when first used; the package itself, formats,
signatures and limits do not, so the command line can offer their choices before TensorFlow
starts (`import reszoo` alone never imports it).
"""

_PUBLIC = {
    "export": "reszoo.serving.exporter",
    "check_export_dir": "reszoo.serving.destination",
    "read_class_names": "reszoo.serving.metadata",
    "FORMATS": "reszoo.serving.formats",
    "SIGNATURES": "reszoo.serving.signatures",
    "ServingLimits": "reszoo.serving.limits",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'reszoo.serving' has no attribute {name!r}")
