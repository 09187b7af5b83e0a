"""What an export records about itself, and the class names it serves.

reszoo_metadata.json (in assets.extra/ of a SavedModel, beside the artifact in other formats):
the model's name and resolved registry config, class names, input size (null for a free
dimension), the serving limits, the signatures (from the table), where the weights came from,
the dtype policy, the training summary and the package versions that wrote it.
"""

from __future__ import annotations

import datetime
import json
import platform
from pathlib import Path

import numpy as np

from reszoo.errors import ExportError

METADATA_FILE = "reszoo_metadata.json"
METADATA_VERSION = 2


def check_class_names(class_names, num_classes: int, source: str = "class_names") -> list[str]:
    """One non-empty, one-line string per class (default "0", "1", ...), or ExportError."""
    if class_names is None:
        return [str(i) for i in range(num_classes)]
    if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__iter__"):
        raise ExportError(f"{source} must be a list of strings, one per class; got {class_names!r}")
    names = [_class_name(name, f"{source}[{i}]") for i, name in enumerate(class_names)]
    if len(names) != num_classes:
        raise ExportError(
            f"{len(names)} class names for a model with {num_classes} classes "
            f"({source}); give exactly one name per class"
        )
    return names


def _class_name(name, where: str) -> str:
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    if isinstance(name, (int, np.integer)) and not isinstance(name, bool):
        name = str(name)
    if not isinstance(name, str):
        raise ExportError(f"{where} must be a string; got {name!r}")
    if not name or "\n" in name or "\r" in name:
        raise ExportError(f"{where} must be a non-empty string on one line; got {name!r}")
    return name


def read_class_names(path) -> list[str]:
    """Class names from a file: a JSON list, or one name per line (blank lines ignored)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise ExportError(f"cannot read class names from {path}: {e.strerror or e}") from e
    if str(path).endswith(".json"):
        try:
            names = json.loads(text)
        except json.JSONDecodeError as e:
            raise ExportError(f"{path} is not valid JSON ({e}); expected a list of names") from e
        if not isinstance(names, list):
            raise ExportError(f"{path} must hold a JSON list of class names")
        return names
    return [line.strip() for line in text.splitlines() if line.strip()]


def read_summary(summary) -> dict | None:
    """A training summary given as a dict, or as the path of a summary.json."""
    if summary is None or isinstance(summary, dict):
        return summary
    try:
        return json.loads(Path(summary).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ExportError(f"cannot read the training summary {summary}: {e}") from e


def package_versions() -> dict:
    """The versions that matter to whoever loads the export (TF Serving needs a TensorFlow at
    least as new as the one that wrote it)."""
    import keras
    import tensorflow as tf

    import reszoo

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "reszoo": reszoo.__version__,
    }


def export_metadata(source, *, class_names, signatures: dict, limits, format_name: str) -> dict:
    """The metadata dict of one export (its version is filled in when the version is known).

    source: the reszoo.serving.sources.ModelSource exported."""
    height, width = source.input_size
    return {
        "metadata_version": METADATA_VERSION,
        "format": format_name,
        "model_name": source.name,
        "version": None,
        "exported_at": datetime.datetime.now().isoformat(timespec="seconds"),
        "input_size": [height, width],
        "free_input_size": height is None or width is None,
        "num_classes": len(class_names),
        "class_names": class_names,
        "limits": limits.as_dict(),
        "signatures": {name: entry.metadata() for name, entry in signatures.items()},
        "weights_source": source.weights,
        "run_dir": str(source.run_dir) if source.run_dir else None,
        "dtype_policy": source.model.dtype_policy.name,
        "config": source.config,
        "training_summary": source.summary,
        "versions": package_versions(),
    }


def write_metadata(path, metadata: dict) -> None:
    Path(path).write_text(json.dumps(metadata, indent=2, sort_keys=True, default=str) + "\n")


def read_metadata(path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ExportError(f"cannot read the export's metadata {path}: {e}") from e
