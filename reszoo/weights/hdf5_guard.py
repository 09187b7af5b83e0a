"""Refuse HDF5 weight files whose data lives somewhere else.

An HDF5 dataset can be stored in another file (``external=[("/etc/passwd", 0, n)]``) or be a
virtual view of other files, and a link can point into another file or elsewhere in this one;
reading such a "weight" reads whatever it points at. Keras 3.15 refuses external and virtual
datasets when it reads weights, but the error reached the user as "does not fit <model>" (or, in
a .keras, as the name of the layer that failed), and reszoo opens the file before Keras does. So
every HDF5 weight file reszoo is given, and the weights inside a model.keras it exports, are
walked once, metadata only (no dataset is read), and refused with one line naming what points
outside, whatever the Keras version. (Compression bombs are left to Keras's own check.)
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from reszoo.errors import ConfigError

_SHOWN = 3


def outside_references(path) -> list[str]:
    """What in the HDF5 file ``path`` (a path or a seekable binary file) points outside it:
    "name: reason" for every external or soft link, external dataset and virtual dataset (each
    link visited once, no dataset read)."""
    import h5py

    found = []
    with h5py.File(path, "r") as handle:

        def visit(name, link):
            if isinstance(link, h5py.ExternalLink):
                found.append(f"{name}: a link into {link.filename!r}")
            elif isinstance(link, h5py.SoftLink):
                found.append(f"{name}: a soft link to {link.path!r}")
            else:
                found.extend(_dataset_problem(name, handle[name]))

        handle.visititems_links(visit)
    return found


def _dataset_problem(name, item) -> list[str]:
    import h5py

    if not isinstance(item, h5py.Dataset):
        return []
    if item.external:
        return [f"{name}: stored in {item.external[0][0]!r}"]
    if item.is_virtual:
        return [f"{name}: a virtual dataset (a view of other files)"]
    return []


def check_self_contained(path: Path) -> None:
    """ConfigError naming what points outside the HDF5 file ``path``, if anything does."""
    found = outside_references(path)
    if found:
        more = f"; and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
        raise ConfigError(
            f"weight file {str(path)!r} is refused: its data must be stored in the file itself, "
            f"and {'; '.join(found[:_SHOWN])}{more}; use a weight file saved by Keras or reszoo"
        )


def keras_archive_problem(path: Path) -> str | None:
    """Why the weights inside the .keras archive ``path`` point outside it, or None. (Keras
    refuses such weights too, but its message names only the layer that failed to load.)"""
    try:
        with zipfile.ZipFile(path) as archive:
            if "model.weights.h5" not in archive.namelist():
                return None
            with archive.open("model.weights.h5") as weights:
                found = outside_references(weights)
    except (OSError, zipfile.BadZipFile):
        return None  # not an archive Keras can read either: its own error says so
    if not found:
        return None
    more = f"; and {len(found) - _SHOWN} more" if len(found) > _SHOWN else ""
    return f"its weights point outside the file: {'; '.join(found[:_SHOWN])}{more}"
