"""reszoo: residual networks for Keras 3, from registry.json to TF Serving.

    import reszoo
    model = reszoo.build("resnet50")           # a keras.Model, pixels 0..255 in, logits out
    reszoo.list_models("resnet*")

Importing reszoo (and building models) imports Keras but not TensorFlow itself (Keras does, when
TensorFlow is its backend); `fit` and `export` do, when first used.
"""

from reszoo.errors import (
    ConfigError,
    DataError,
    DuplicateRegistrationError,
    ExportError,
    ReszooError,
    TrainingError,
    UnknownModelError,
)
from reszoo.startup import import_quietly as _import_quietly
from reszoo.zoo import build, get_config, list_models, register_block, register_model

# Every serializable reszoo class registers itself with Keras when its module is imported, and
# Keras finds only registered classes when it loads a .keras file: importing them here makes
# `import reszoo; keras.saving.load_model("runs/.../model.keras")` work. They use only keras and
# keras.ops, so TensorFlow comes in only when it is Keras's backend (quietly: reszoo/startup.py).
_import_quietly("reszoo.batchnorm", "reszoo.layers")

__version__ = "0.1.0"

__all__ = [
    "build",
    "list_models",
    "get_config",
    "register_model",
    "register_block",
    "fit",
    "export",
    "ReszooError",
    "ConfigError",
    "UnknownModelError",
    "DuplicateRegistrationError",
    "DataError",
    "TrainingError",
    "ExportError",
    "__version__",
]


def __getattr__(name):
    # fit and export need TensorFlow: import it only when they are used.
    if name == "fit":
        from reszoo.training import fit

        return fit
    if name == "export":
        from reszoo.serving import export

        return export
    raise AttributeError(f"module 'reszoo' has no attribute {name!r}")
