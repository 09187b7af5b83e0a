"""reszoo: residual networks for Keras 3, from registry.json to TF Serving.

    import reszoo
    model = reszoo.build("resnet50")           # a keras.Model, pixels 0..255 in, logits out
    reszoo.list_models("resnet*")

Importing reszoo (and building models) does not import TensorFlow; `fit` and `export` do, when
first used.
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
from reszoo.zoo import build, get_config, list_models, register_block, register_model

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
