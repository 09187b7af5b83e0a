"""ImageNet-1k class names, shipped with the package (reszoo/imagenet_classes.json).

Index i of a 1000-class ImageNet head is class i here: the standard order (WordNet ids
sorted), so predictions and exports can carry names without a download.
"""

from __future__ import annotations

import functools
import importlib.resources
import json

from reszoo.errors import ConfigError

CLASS_LISTS = {"imagenet-1k": "imagenet_classes.json"}


@functools.cache
def _read(class_list: str) -> tuple[tuple[str, str], ...]:
    if class_list not in CLASS_LISTS:
        raise ConfigError(f"unknown class list {class_list!r}; known: {', '.join(CLASS_LISTS)}")
    resource = importlib.resources.files("reszoo").joinpath(CLASS_LISTS[class_list])
    document = json.loads(resource.read_text("utf-8"))
    return tuple((synset, name) for synset, name in document["classes"])


def imagenet_classes() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names in index order ("tench", "goldfish", ...)."""
    return tuple(name for _, name in _read("imagenet-1k"))


def imagenet_synsets() -> tuple[str, ...]:
    """The 1,000 WordNet ids in index order ("n01440764", ...)."""
    return tuple(synset for synset, _ in _read("imagenet-1k"))


def class_names(class_list: str) -> tuple[str, ...]:
    """Names of a tag's class list (a WeightTag's `classes`, e.g. "imagenet-1k")."""
    return tuple(name for _, name in _read(class_list))
