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


def load_weights(
    model: keras.Model, config: ModelConfig, weights: str | os.PathLike, *, include_top: bool = True
) -> None:
    """Fill `model` from a weight tag registered for its config ("imagenet") or from a file."""
    if isinstance(weights, str) and config.weights and weights in config.weights:
        spec = config.weights[weights]
        if include_top and config.num_classes != 1000:
            raise ConfigError(
                f"{config.name}: {weights!r} weights have a 1000-class classifier but the model has "
                f"num_classes={config.num_classes}; pass num_classes=1000 or include_top=False"
            )
        path = download(spec, include_top=include_top)
        load_applications_file(model, spec["layout"], path, include_top=include_top)
        return
    path = Path(weights)
    if not path.is_file():
        tags = ", ".join(map(repr, config.weights or {})) or "none"
        raise ConfigError(
            f"{config.name}: weights={str(weights)!r} is neither a weight tag for this model "
            f"(available: {tags}) nor an existing file"
        )
    if _is_applications_file(path):
        layout = (config.weights or {}).get("imagenet", {}).get("layout")
        if layout is None:
            raise ConfigError(
                f"{config.name}: {str(path)!r} is a keras.applications weight file, but "
                f"{config.name} has no keras.applications layout; use one of "
                f"resnet50_v1, resnet101_v1, resnet152_v1, resnet50_v2, resnet101_v2, resnet152_v2"
            )
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
            f"elsewhere into ~/.keras/models/ (or $KERAS_HOME/models/) or pass weights=PATH"
        ) from None


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
            raise ConfigError(
                f"{model.name}: keras.applications model {source.name} has no layer "
                f"{name!r}; the layouts differ"
            ) from None
        try:
            target.set_weights(weights)
        except ValueError as error:
            raise ConfigError(f"{model.name}: layer {name!r} does not fit: {error}") from None
        used.add(name)
    unused = [layer.name for layer in source.layers if layer.weights and layer.name not in used]
    if unused:
        raise ConfigError(
            f"{model.name}: keras.applications layers left uncopied: "
            f"{', '.join(unused[:5])}{' ...' if len(unused) > 5 else ''}"
        )


def torch_layer_names(model: keras.Model) -> list[tuple[keras.layers.Layer, str]]:
    """(reszoo sublayer, PyTorch module name) in torchvision's ResNet naming.

    conv1/bn1 for the stem, layer{stage}.{index}.conv{k}/bn{k} and .downsample.0/.1 for blocks,
    fc for the classifier: the names torchvision's ResNets and most PyTorch ResNet code use.
    """
    pairs: list[tuple[keras.layers.Layer, str]] = []
    for layer in model.layers:
        if isinstance(layer, Stem):
            if layer.num_convs != 1:
                raise ConfigError("torchvision naming has a single-conv stem")
            pairs += [(layer.conv1, "conv1")] + ([(layer.bn1, "bn1")] if layer.bn1 else [])
        elif isinstance(layer, ResidualBlock):
            stage, block = map(int, re.fullmatch(r"stage(\d+)_block(\d+)", layer.name).groups())
            prefix = f"layer{stage}.{block - 1}"
            for index, (conv, norm) in enumerate(zip(layer.convs, layer.norms), start=1):
                pairs.append((conv, f"{prefix}.conv{index}"))
                if norm is not None:
                    pairs.append((norm, f"{prefix}.bn{index}"))
            shortcut = layer.shortcut_layer
            if shortcut is not None and shortcut.conv is not None:
                if shortcut.kind != "B" or layer.preact:
                    raise ConfigError(
                        "torchvision naming covers post-activation blocks with "
                        "projection shortcuts (kind 'B') only"
                    )
                pairs += [
                    (shortcut.conv, f"{prefix}.downsample.0"),
                    (shortcut.norm, f"{prefix}.downsample.1"),
                ]
        elif layer.name == "logits":
            pairs.append((layer, "fc"))
    return pairs


def load_torch_state_dict(model: keras.Model, state_dict: dict) -> None:
    """Copy a PyTorch ResNet state_dict (torchvision naming, values as numpy arrays) into `model`.

    Convolution kernels go from (out, in, kh, kw) to Keras's (kh, kw, in, out), the classifier
    from (out, in) to (in, out); BatchNorm takes weight, bias, running_mean, running_var. Every
    tensor must be used and every layer filled, or nothing is copied.
    """
    import numpy as np

    arrays = {
        key: np.asarray(value)
        for key, value in state_dict.items()
        if not key.endswith("num_batches_tracked")
    }
    assignments = []
    for target, name in torch_layer_names(model):
        if isinstance(target, keras.layers.BatchNormalization):
            keys = [f"{name}.{part}" for part in ("weight", "bias", "running_mean", "running_var")]
            convert = [lambda a: a] * 4
        else:
            keys = [f"{name}.weight"] + ([f"{name}.bias"] if target.use_bias else [])
            transpose = (1, 0) if isinstance(target, keras.layers.Dense) else (2, 3, 1, 0)
            convert = [lambda a, t=transpose: a.transpose(t), lambda a: a]
        missing = [key for key in keys if key not in arrays]
        if missing:
            raise ConfigError(f"{model.name}: the state_dict has no {missing[0]!r}")
        values = [fn(arrays.pop(key)) for fn, key in zip(convert, keys)]
        expected = [tuple(weight.shape) for weight in target.weights]
        if [value.shape for value in values] != expected:
            raise ConfigError(
                f"{model.name}: {name} has shapes {[v.shape for v in values]}, "
                f"the model needs {expected}"
            )
        assignments.append((target, values))
    if arrays:
        raise ConfigError(
            f"{model.name}: state_dict entries left unused: {', '.join(sorted(arrays)[:5])}"
        )
    for target, values in assignments:
        target.set_weights(values)
