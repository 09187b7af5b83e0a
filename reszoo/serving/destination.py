"""The export directory (TF Serving's model_base_path): versions, staging and cleanup.

EXPORT_DIR/<version>/ is one export; <version> is an integer, by default one more than the
highest present, and an existing version is replaced only with overwrite=True. A version is
written into a hidden staging folder inside EXPORT_DIR (TF Serving ignores non-numeric names)
and renamed into place, so it is complete or absent. On failure an export removes only what it
created itself: its staging folder, and the directories it made that are still empty (another
export may have written a version into them meanwhile).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from reszoo.errors import ExportError
from reszoo.paths import uncreatable_reason
from reszoo.serving.metadata import read_metadata, write_metadata

STAGING_PREFIX = ".reszoo-export-tmp-"


def existing_versions(export_dir: Path) -> dict[int, str]:
    return {int(n): n for n in os.listdir(export_dir) if n.isdigit()}


def _already_exists(version: int, export_dir: Path) -> ExportError:
    return ExportError(
        f"version {version} already exists in {export_dir}; pass overwrite=True "
        "(--overwrite) to replace it, or another version"
    )


def check_export_dir(export_dir: Path, version, overwrite: bool) -> int | None:
    """Validate the destination before any work; the version to write (None: the next one)."""
    if version is not None:
        if isinstance(version, bool) or not isinstance(version, (int, np.integer)) or version < 1:
            raise ExportError(f"version must be a positive integer; got {version!r}")
        version = int(version)
    export_dir = Path(export_dir)
    if export_dir.exists() and not export_dir.is_dir():
        raise ExportError(
            f"export directory {export_dir} is a file, not a directory; "
            "choose a directory (TF Serving's model_base_path)"
        )
    reason = None if export_dir.exists() else uncreatable_reason(export_dir)
    if reason:
        raise ExportError(f"export directory {export_dir} cannot be created: {reason}")
    if export_dir.is_dir() and version is not None and not overwrite:
        if version in existing_versions(export_dir):
            raise _already_exists(version, export_dir)
    return version


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p, returning the directories it created (outermost first)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    created = []
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:  # another export made it meanwhile: not ours
            continue
        created.append(directory)
    return created


class Staging:
    """One version being written: `target` (to create) and `scratch` inside a hidden folder of
    the export directory. `publish` renames target into place; leaving the block removes the
    staging folder and, after a failure, the directories this export created if still empty."""

    def __init__(self, export_dir: Path):
        self.export_dir = Path(export_dir)
        self.created: list[Path] = []
        self.folder = self.target = self.scratch = None

    def __enter__(self) -> Staging:
        try:
            self.created = _make_dirs(self.export_dir)
            self.folder = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=self.export_dir))
        except OSError as e:
            self._remove_created()
            raise ExportError(
                f"cannot write into export directory {self.export_dir}: {e.strerror or e}"
            ) from e
        self.target, self.scratch = self.folder / "version", self.folder / "scratch"
        self.scratch.mkdir()
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        if kind is not None:
            self._remove_created()

    def _remove_created(self) -> None:
        for directory in reversed(self.created):
            try:
                directory.rmdir()  # only if empty: never another export's version
            except OSError:
                break

    def publish(self, version: int | None, overwrite: bool, metadata_file: str) -> Path:
        """Rename the written version into place as EXPORT_DIR/<version> (None: the next free
        number, taken again if another export claims it first); returns its path."""
        while True:
            number = version or max(existing_versions(self.export_dir), default=0) + 1
            self._set_version(metadata_file, number)
            destination = self.export_dir / str(number)
            if version is None and destination.exists():
                continue  # another export took it meanwhile
            self._move_into_place(destination, overwrite)
            return destination

    def _set_version(self, metadata_file: str, number: int) -> None:
        path = self.target / metadata_file
        metadata = read_metadata(path)
        metadata["version"] = number
        write_metadata(path, metadata)

    def _move_into_place(self, destination: Path, overwrite: bool) -> None:
        if destination.exists() or destination.is_symlink():
            if not overwrite:
                raise _already_exists(int(destination.name), self.export_dir)
            replaced = self.folder / "replaced"
            os.rename(destination, replaced)
            try:
                os.rename(self.target, destination)
            except OSError:
                os.rename(replaced, destination)
                raise
            return
        try:
            os.rename(self.target, destination)
        except OSError as e:  # another export took this version in the meantime
            raise ExportError(f"cannot create {destination}: {e.strerror or e}") from e
