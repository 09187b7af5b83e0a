"""Serving: exports of reszoo models (SavedModels that TF Serving loads as they are).

Importing this package imports TensorFlow (`import reszoo` alone does not).
"""

from reszoo.serving.exporter import check_export_dir, export, read_class_names

__all__ = ["check_export_dir", "export", "read_class_names"]
