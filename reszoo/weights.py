"""Loading weights into zoo models: reszoo's own files and keras.applications' ImageNet files.

keras.applications files are read by keras.applications itself (the matching architecture is
built with weights=None and given the file), then copied layer by layer into the reszoo model.
Every weighted layer of the source must find its place and every shape must agree, so a layout
mismatch fails loudly instead of leaving layers at their random initialisation.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import keras

from reszoo.config import ModelConfig
from reszoo.errors import ConfigError
from reszoo.layers import ResidualBlock, Stem

_APPLICATIONS = {
    "keras.applications.ResNet50": "ResNet50",
    "keras.applications.ResNet101": "ResNet101",
    "keras.applications.ResNet152": "ResNet152",
    "keras.applications.ResNet50V2": "ResNet50V2",
    "keras.applications.ResNet101V2": "ResNet101V2",
    "keras.applications.ResNet152V2": "ResNet152V2",
}


def load_weights(model: keras.Model, config: ModelConfig, weights: str | os.PathLike,
                 *, include_top: bool = True) -> None:
    """Fill `model` from a weight tag registered for its config ("imagenet") or from a file."""
    if isinstance(weights, str) and config.weights and weights in config.weights:
        spec = config.weights[weights]
        if include_top and config.num_classes != 1000:
            raise ConfigError(
                f"{config.name}: {weights!r} weights have a 1000-class classifier but the model has "
                f"num_classes={config.num_classes}; pass num_classes=1000 or include_top=False")
        path = download(spec, include_top=include_top)
        load_applications_file(model, spec["layout"], path, include_top=include_top)
        return
    path = Path(weights)
    if not path.is_file():
        tags = ", ".join(map(repr, config.weights or {})) or "none"
        raise ConfigError(
            f"{config.name}: weights={str(weights)!r} is neither a weight tag for this model "
            f"(available: {tags}) nor an existing file")
    if _is_applications_file(path):
        layout = (config.weights or {}).get("imagenet", {}).get("layout")
        if layout is None:
            raise ConfigError(
                f"{config.name}: {str(path)!r} is a keras.applications weight file, but "
                f"{config.name} has no keras.applications layout; use one of "
                f"resnet50_v1, resnet101_v1, resnet152_v1, resnet50_v2, resnet101_v2, resnet152_v2")
        load_applications_file(model, layout, path, include_top=include_top)
    else:
        try:
            model.load_weights(str(path))
        except ValueError as error:
            raise ConfigError(f"{config.name}: cannot load {str(path)!r}: {error}") from None


def download(spec: dict, *, include_top: bool) -> str:
    """The weight file, from Keras's cache (~/.keras/models, KERAS_HOME) or downloaded into it."""
    url = spec["url"] if include_top else spec.get("notop_url")
    file_hash = spec.get("file_hash") if include_top else spec.get("notop_file_hash")
    if url is None:
        raise ConfigError("these weights have no classifier-free (include_top=False) file")
    file_name = url.rsplit("/", 1)[-1]
    try:
        return keras.utils.get_file(file_name, url, cache_subdir="models", file_hash=file_hash)
    except Exception as error:  # noqa: BLE001 - network and hash failures alike end up here
        raise ConfigError(
            f"could not get {file_name} from {url}: {error}. Without network, download it "
            f"elsewhere into ~/.keras/models/ (or $KERAS_HOME/models/) or pass weights=PATH") from None


def _is_applications_file(path: Path) -> bool:
    """keras.applications files are legacy Keras HDF5: top-level (or model_weights) layer_names."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            group = handle["model_weights"] if "model_weights" in handle else handle
            return "layer_names" in group.attrs
    except OSError:
        return False


def load_applications_file(model: keras.Model, layout: str, path, *, include_top: bool) -> None:
    """Read a keras.applications weight file with keras.applications, copy it into `model`."""
    if layout not in _APPLICATIONS:
        raise ConfigError(f"unknown weight layout {layout!r}; known: {', '.join(_APPLICATIONS)}")
    builder = getattr(keras.applications, _APPLICATIONS[layout])
    source = builder(weights=None, include_top=include_top, classifier_activation=None)
    try:
        source.load_weights(str(path))
    except ValueError as error:
        raise ConfigError(f"{str(path)!r} does not fit {layout}: {error}") from None
    copy_from_applications(source, model)


def layer_pairs(model: keras.Model) -> list[tuple[keras.layers.Layer, str]]:
    """(reszoo sublayer, keras.applications layer name) for every weighted layer of `model`."""
    pairs: list[tuple[keras.layers.Layer, str]] = []
    for layer in model.layers:
        if isinstance(layer, Stem):
            if len(layer.convs) != 1:
                raise ConfigError("keras.applications ResNets have a single-conv stem")
            pairs.append((layer.convs[0], "conv1_conv"))
            if layer.norms[0] is not None:
                pairs.append((layer.norms[0], "conv1_bn"))
        elif isinstance(layer, ResidualBlock):
            stage, block = map(int, re.fullmatch(r"stage(\d+)_block(\d+)", layer.name).groups())
            prefix = f"conv{stage + 1}_block{block}"
            if layer.preact_norm is not None:
                pairs.append((layer.preact_norm, f"{prefix}_preact_bn"))
            shortcut = layer.shortcut_layer
            if shortcut is not None and shortcut.conv is not None:
                pairs.append((shortcut.conv, f"{prefix}_0_conv"))
                if shortcut.norm is not None:
                    pairs.append((shortcut.norm, f"{prefix}_0_bn"))
            for index, (conv, norm) in enumerate(zip(layer.convs, layer.norms), start=1):
                pairs.append((conv, f"{prefix}_{index}_conv"))
                if norm is not None:
                    pairs.append((norm, f"{prefix}_{index}_bn"))
        elif layer.name == "post_bn":
            pairs.append((layer, "post_bn"))
        elif layer.name == "logits":
            pairs.append((layer, "predictions"))
    return pairs


def copy_from_applications(source: keras.Model, model: keras.Model) -> None:
    """Copy every weight of a keras.applications ResNet into the matching reszoo layer."""
    pairs = layer_pairs(model)
    used = set()
    for target, name in pairs:
        try:
            weights = source.get_layer(name).get_weights()
        except ValueError:
            raise ConfigError(f"{model.name}: keras.applications model {source.name} has no layer "
                              f"{name!r}; the layouts differ") from None
        try:
            target.set_weights(weights)
        except ValueError as error:
            raise ConfigError(f"{model.name}: layer {name!r} does not fit: {error}") from None
        used.add(name)
    unused = [layer.name for layer in source.layers if layer.weights and layer.name not in used]
    if unused:
        raise ConfigError(f"{model.name}: keras.applications layers left uncopied: "
                          f"{', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}")
