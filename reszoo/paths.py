"""File-system checks shared by everything that writes a directory (runs, exports)."""

from __future__ import annotations

import os
import shutil


def uncreatable_reason(path) -> str | None:
    """Why directory ``path`` cannot be created (a parent is a file or not writable), or None.
    Checked before any work so a bad --output / export directory fails at once, not after
    training."""
    path = os.path.abspath(os.fspath(path))
    parent = path
    while not os.path.exists(parent):
        up = os.path.dirname(parent)
        if up == parent:
            return None
        parent = up
    if parent == path:
        return None
    if not os.path.isdir(parent):
        return f"{parent} is a file, not a directory"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    return None


def remove_quietly(path):
    try:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    except OSError:
        pass
