"""Training: `fit` on tf.distribute, the recipes it resolves, the run directory it writes.

The names below import TensorFlow when first used; the package itself does not, so the command
line can parse its arguments and check the recipe before TensorFlow starts.
"""

_PUBLIC = {
    "fit": "reszoo.training.trainer",
    "FitResult": "reszoo.training.trainer",
    "load_checkpoint_weights": "reszoo.training.trainer",
    "make_checkpoint": "reszoo.training.trainer",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        import importlib

        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'reszoo.training' has no attribute {name!r}")
