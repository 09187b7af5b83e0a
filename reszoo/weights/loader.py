"""`reszoo.build(..., weights=...)`: a tag or a file into a freshly built model.

Everything that can be checked before touching the network is checked first (the tag exists,
the architecture is the registered one, the classifier fits or a new one was asked for), then
the file is fetched and read, then the converter assigns all weights or none. A classifier of a
different size is loaded only when asked: `num_classes=N` gives a fresh N-class head, and a
model without a classifier (include_top=False, a feature extractor) takes the backbone.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

from reszoo.config import ModelConfig
from reszoo.errors import ConfigError
from reszoo.weights import files
from reszoo.weights.convert import StateDictSource, fill
from reszoo.weights.download import discard, fetch
from reszoo.weights.naming import CLASSIFIER, SCHEMES, Scheme, slots
from reszoo.weights.tags import DEFAULT_ALIAS, WeightTag, get_tag, is_tag_name, list_tags

# Fields a tag's weights tolerate changing: the head (handled separately) and the input size.
_FREE_FIELDS = ("num_classes", "input_shape", "preprocessing")


def weights_overrides(name: str, weights) -> dict:
    """Config overrides a tag implies: its preprocessing mode when it differs from the entry's.

    `build` applies them before building, so a tag trained with other normalisation (timm's
    mean/std 0.5 "ra4" weights) gets a model that normalises pixels the way it expects.
    """
    from reszoo.registry import REGISTRY

    if not is_tag_name(name, weights):
        return {}
    mode = get_tag(name, weights).preprocessing.mode
    return {} if REGISTRY.get(name).preprocessing == mode else {"preprocessing": mode}


def _check_architecture(config: ModelConfig, tag: WeightTag) -> None:
    from reszoo.registry import REGISTRY

    registered = REGISTRY.get(config.name).architecture()
    current = config.architecture()
    changed = [f for f in current if f not in _FREE_FIELDS and current[f] != registered[f]]
    if changed:
        overrides = ", ".join(f"{field}={current[field]!r}" for field in changed)
        raise ConfigError(
            f"{config.name}: weights {tag.name!r} are for {config.name} as registered, and this "
            f"model overrides {overrides}; drop the override(s) to use them, or pass "
            f"weights=PATH to a file made for this architecture"
        )
    if config.preprocessing != tag.preprocessing.mode:
        raise ConfigError(
            f"{config.name}: weights {tag.name!r} expect preprocessing "
            f"{tag.preprocessing.mode!r}, but the model was built with {config.preprocessing!r}; "
            f"drop the preprocessing override"
        )


def _classifier(model: keras.Model):
    return next((layer for layer in model.layers if layer.name == CLASSIFIER), None)


def _head_classes(model: keras.Model) -> int | None:
    head = _classifier(model)
    return None if head is None else head.units


def skip_classifier(
    model_name: str, classes: int | None, source_classes, num_classes_given: bool, what: str
) -> bool:
    """Whether a model whose head has `classes` outputs (None: no head) gets a fresh head;
    raises when the sizes disagree and no new size was asked for."""
    if classes is None or source_classes == classes:
        return False  # no classifier to fill (the source's stays unused), or it fits
    if num_classes_given:
        return True
    if source_classes is None:
        raise ConfigError(
            f"{model_name}: {what} has no classifier; pass include_top=False, or "
            f"num_classes=N for a freshly initialised N-class head"
        )
    raise ConfigError(
        f"{model_name}: {what} has a {source_classes}-class classifier but the model has "
        f"{classes} classes; pass num_classes={source_classes} to load it, num_classes=N for a "
        f"freshly initialised N-class head, or include_top=False"
    )


def absent_owners(model: keras.Model, config: ModelConfig) -> set[str]:
    """Top-level layers of the full network that `model` leaves out (head, later stages)."""
    from reszoo.models import block_plan

    full = {"stem", CLASSIFIER} | {block["name"] for block in block_plan(config)}
    if config.preact:
        full.add("post_bn")
    present = {slot.owner for slot in slots(model)}
    return full - present


def _tag_source(tag: WeightTag, role: str):
    path = fetch(tag.file(role))
    description = f"weights {tag.name} ({path})"
    try:
        if tag.format == "safetensors":
            return files.read_safetensors(path, description), SCHEMES["timm"]
        kind = files.file_kind(path)
        source = files.read_applications(path, description, tag.keras_application, kind)
        return source, SCHEMES["keras.applications"]
    except (ConfigError, OSError) as error:
        raise ConfigError(discard(path, str(error))) from None


def _checked_tag(config: ModelConfig, weights: str, classes, num_classes_given: bool):
    """The tag, its fresh-head decision and the file role to fetch, after every offline check."""
    tag = get_tag(config.name, weights)
    _check_architecture(config, tag)
    fresh = skip_classifier(
        config.name, classes, tag.num_classes, num_classes_given, f"weights {tag.name!r}"
    )
    wants_top = classes is not None and not fresh
    role = "model" if tag.format == "safetensors" else ("top" if wants_top else "notop")
    return tag, fresh, role


def prefetch(config: ModelConfig, weights, *, include_top: bool, num_classes_given: bool) -> None:
    """Check a tag and download its file before the model is built, so a missing network or a
    refused tag fails at once instead of after a long build. Files need nothing here."""
    if not is_tag_name(config.name, weights):
        return
    classes = config.num_classes if include_top else None
    tag, _, role = _checked_tag(config, weights, classes, num_classes_given)
    fetch(tag.file(role))


def _load_tag(model, config, weights: str, num_classes_given: bool) -> None:
    classes = _head_classes(model)
    tag, fresh, role = _checked_tag(config, weights, classes, num_classes_given)
    source, scheme = _tag_source(tag, role)
    _fill(model, config, source, scheme, fresh)


def _fill(model, config, source, scheme: Scheme, fresh: bool) -> None:
    fill(model, source, scheme, absent_owners=absent_owners(model, config), skip_classifier=fresh)


def load_weights(
    model: keras.Model, config: ModelConfig, weights, *, num_classes_given: bool = False
) -> None:
    """Fill `model` (built from `config`) from a weight tag ("imagenet" = default) or a file."""
    from reszoo.registry import REGISTRY

    block_class = REGISTRY.block(config.block)
    if is_tag_name(config.name, weights):
        _load_tag(model, config, weights, num_classes_given)
        return
    if not isinstance(weights, (str, os.PathLike)) or not Path(weights).is_file():
        if weights == DEFAULT_ALIAS:
            get_tag(config.name, weights)  # raises, saying why the model has no weights
        tags = ", ".join(list_tags(config.name)) or "none"
        raise ConfigError(
            f"{config.name}: weights={str(weights)!r} is neither a weight tag of this model "
            f"(its tags: {tags}; 'imagenet' means the default) nor an existing file"
        )
    source, scheme = files.read_file(Path(weights), config, block_class)
    classes = source.classifier_rows(scheme.classifier)
    what = f"weight file {str(weights)!r}"
    fresh = skip_classifier(model.name, _head_classes(model), classes, num_classes_given, what)
    _fill(model, config, source, scheme, fresh)


def load_torch_state_dict(model: keras.Model, state_dict: dict) -> None:
    """Copy a PyTorch ResNet state dict (timm/torchvision naming, NumPy values) into `model`.

    Every tensor must find its place and every weight be filled, or nothing is copied.
    """
    source = StateDictSource(state_dict, "the state_dict")
    absent = set() if _classifier(model) is not None else {CLASSIFIER}
    fill(model, source, SCHEMES["timm"], absent_owners=absent)
