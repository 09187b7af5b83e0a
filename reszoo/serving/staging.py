"""Write a directory completely or not at all: build it in a hidden sibling, then rename it.

A reader (a server, a deployment script) that finds the directory finds all of it; an export
that fails part-way leaves nothing behind, and an existing directory is replaced only when the
caller asked for that.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from reszoo.errors import ExportError
from reszoo.paths import uncreatable_reason

STAGING_PREFIX = ".reszoo-export-tmp-"


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse a target that exists (unless `overwrite`) or cannot be created, before any work."""
    if target.exists() or target.is_symlink():
        if not target.is_dir():
            raise ExportError(
                f"{target} is a file, not a directory; choose a directory to export to"
            )
        if not overwrite:
            raise ExportError(
                f"{target} already exists; pass overwrite=True (--overwrite) to replace it, "
                "or choose another directory"
            )
    reason = uncreatable_reason(target)
    if reason:
        raise ExportError(f"export directory {target} cannot be created: {reason}")


@contextlib.contextmanager
def staged_directory(target: Path, overwrite: bool):
    """Yield an empty hidden directory next to `target`; on a clean exit it becomes `target`.

    On any exception the staging directory (and a parent this call created) is removed and the
    previous `target`, if any, is left as it was.
    """
    check_target(target, overwrite)
    parent = target.parent
    first_missing = _first_missing_ancestor(parent)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=parent))
    except OSError as e:
        _remove_created(first_missing)
        raise ExportError(f"cannot write into {parent}: {e.strerror or e}") from e
    try:
        yield staging
        _rename_into_place(staging, target, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_created(first_missing)
        raise


def _first_missing_ancestor(path: Path) -> Path | None:
    """The outermost directory of `path` that does not exist yet (what a failure must remove)."""
    missing = None
    while not path.exists():
        missing, path = path, path.parent
        if path == path.parent:
            break
    return missing


def _remove_created(path: Path | None) -> None:
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)


def _rename_into_place(staging: Path, target: Path, overwrite: bool) -> None:
    """Rename `staging` to `target`; an old `target` is moved aside first and restored on error."""
    if not (target.exists() or target.is_symlink()):
        try:
            os.rename(staging, target)
        except OSError as e:  # another export created it in the meantime
            raise ExportError(f"cannot create {target}: {e.strerror or e}") from e
        return
    if not overwrite:
        raise ExportError(f"{target} appeared while exporting; nothing was replaced")
    replaced = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=target.parent)) / "replaced"
    os.rename(target, replaced)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(replaced, target)
        raise
    shutil.rmtree(replaced.parent, ignore_errors=True)
