"""Weight files on disk -> (source, naming scheme) for the converter.

Which reader a file gets is decided from its content, not only its name (a table: kind ->
reader): safetensors (timm / torchvision naming), keras.applications HDF5 (the legacy weights
files Keras downloads and full-model `.h5` files), a Keras 3 `.weights.h5` saved from a
keras.applications model, and reszoo's own `.weights.h5`. Keras-format files are read by
building the model they were saved from and letting Keras load them, so Keras's own format
rules apply; the converter then copies layer by layer.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from pathlib import Path

import keras

from reszoo.config import ModelConfig
from reszoo.errors import ConfigError
from reszoo.weights.convert import LayerSource, StateDictSource
from reszoo.weights.hdf5_guard import check_self_contained
from reszoo.weights.naming import SCHEMES, Scheme, slots

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def file_kind(path: Path) -> str:
    """ "safetensors", "applications-legacy", "applications-keras3", "reszoo" or "unknown"."""
    with open(path, "rb") as handle:
        head = handle.read(16)
    if head.startswith(_HDF5_SIGNATURE):
        check_self_contained(path)  # nothing read from files a dataset or link points at
        return _hdf5_kind(path)
    if len(head) >= 9 and head[8:9] == b"{":  # 8-byte little-endian header size, JSON header
        return "safetensors"
    return "unknown"


def _hdf5_kind(path: Path) -> str:
    import h5py

    with h5py.File(path, "r") as handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" in group.attrs:
            return "applications-legacy"
        layers = handle.get("layers")
        if layers is None:
            return "unknown"
        if "stem" in layers:
            return "reszoo"
        return "applications-keras3" if "conv2d" in layers else "unknown"


def read_safetensors(path: Path, description: str) -> StateDictSource:
    """A safetensors file as NumPy arrays (no PyTorch needed); a damaged file is a ConfigError."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        arrays = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise ConfigError(
            f"{description} is not a readable safetensors file (truncated or damaged?): {error}"
        ) from None
    return StateDictSource(arrays, description)


def _has_top(path: Path, kind: str) -> bool:
    import h5py

    with h5py.File(path, "r") as handle:
        if kind == "applications-legacy":
            group = handle["model_weights"] if "model_weights" in handle else handle
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
            return "predictions" in names
        return "dense" in handle["layers"]


def _classes_in(path: Path) -> int:
    import h5py

    with h5py.File(path, "r") as handle:
        return int(handle["layers/dense/vars/0"].shape[-1])


def _load_into(donor: keras.Model, path: Path, description: str, layout: str) -> None:
    """Keras loads the file into the model it was saved from; its error, shortened, if not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            donor.load_weights(str(path))
    except (ValueError, KeyError, TypeError) as error:
        text = str(error)
        shapes = re.search(r"variable\.shape=\S+, Received: value\.shape=\S+", text)
        first = text.splitlines()[0][:300] if text else type(error).__name__
        detail = f"{first} ({shapes[0]})" if shapes else first
        raise ConfigError(f"{description} does not fit {layout}: {detail}") from None


def read_applications(path: Path, description: str, application: str, kind: str) -> LayerSource:
    """A keras.applications file, loaded by the keras.applications model it belongs to."""
    builder = getattr(keras.applications, application)
    donor = builder(weights=None, include_top=_has_top(path, kind), classifier_activation=None)
    _load_into(donor, path, description, f"keras.applications.{application}")
    weights = {layer.name: layer.get_weights() for layer in donor.layers if layer.weights}
    return LayerSource(weights, description)


def read_reszoo(path: Path, description: str, config: ModelConfig, block_class) -> LayerSource:
    """reszoo's own .weights.h5: loaded into the full network `config` describes, any head."""
    from reszoo.models import build_model

    has_top = _has_top(path, "reszoo")
    if has_top:
        config = config.replace(num_classes=_classes_in(path))
    donor = build_model(config, block_class, include_top=has_top)
    _load_into(donor, path, description, f"{config.name} (reszoo)")
    weights = {slot.path: slot.layer.get_weights() for slot in slots(donor)}
    return LayerSource(weights, description)


def _application_of(config: ModelConfig) -> str:
    from reszoo.weights.tags import model_weights

    known = model_weights(config.name)
    for tag in known.tags.values():
        if tag.keras_application:
            return tag.keras_application
    raise ConfigError(
        f"{config.name} has no keras.applications layout, so a keras.applications file cannot "
        f"load into it; models that take one: {', '.join(applications_models())}"
    )


def applications_models() -> list[str]:
    from reszoo.weights.tags import model_weights, models_with_weights

    return [
        name
        for name in models_with_weights()
        if any(t.keras_application for t in model_weights(name).tags.values())
    ]


Reader = Callable[[Path, str, ModelConfig, type], tuple[object, Scheme]]
READERS: dict[str, Reader] = {
    "safetensors": lambda path, text, config, block: (
        read_safetensors(path, text),
        SCHEMES["timm"],
    ),
    "applications-legacy": lambda path, text, config, block: (
        read_applications(path, text, _application_of(config), "applications-legacy"),
        SCHEMES["keras.applications"],
    ),
    "applications-keras3": lambda path, text, config, block: (
        read_applications(path, text, _application_of(config), "applications-keras3"),
        SCHEMES["keras.applications"],
    ),
    "reszoo": lambda path, text, config, block: (
        read_reszoo(path, text, config, block),
        SCHEMES["reszoo"],
    ),
}


def read_file(path: Path, config: ModelConfig, block_class: type, description: str = ""):
    """(source, scheme) for any supported weight file."""
    description = description or f"weight file {str(path)!r}"
    try:
        kind = file_kind(path)
    except OSError as error:
        raise ConfigError(f"cannot read {description}: {error}") from None
    if kind not in READERS:
        raise ConfigError(
            f"{description} is not a weight file reszoo reads: expected .safetensors "
            f"(timm/torchvision naming), a keras.applications .h5 or .weights.h5, or a reszoo "
            f".weights.h5"
        )
    return READERS[kind](path, description, config, block_class)
