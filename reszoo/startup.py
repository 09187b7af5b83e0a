"""Importing Keras and TensorFlow without their C++ start-up log lines.

TensorFlow writes a few lines to stderr when it is first imported (CPU feature notes, absl's
"log messages before InitializeLog" warning), before absl logging is initialised and whatever
TF_CPP_MIN_LOG_LEVEL says. reszoo's commands promise one-line errors, and `import reszoo`
imports Keras (its layers must register for `keras.saving.load_model`), which imports
TensorFlow when that is Keras's backend; so both imports go through here. Set
RESZOO_TF_LOGS=1 to keep the lines.
"""

from __future__ import annotations

import importlib
import os
import sys


def import_quietly(*module_names: str) -> None:
    """Import `module_names` with file descriptor 2 pointed at /dev/null while they load."""
    missing = [name for name in module_names if name not in sys.modules]
    if not missing:
        return
    if os.environ.get("RESZOO_TF_LOGS") or "tensorflow" in sys.modules:
        for name in missing:
            importlib.import_module(name)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        for name in missing:
            importlib.import_module(name)
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
