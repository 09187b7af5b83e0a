"""The one converter: any weight source into any reszoo layout, strictly, all or nothing.

A source is a flat table of arrays under its own names (a PyTorch state dict in timm naming, or
the layers of a keras.applications or reszoo model). `fill(model, source, scheme)` finds every
weighted sublayer of `model` in the source, checks every shape, checks that every source
tensor found a place, and only then assigns. Unused tensors are allowed only where `model`
lacks their layer on purpose: the classifier of a model without one (include_top=False, a
feature extractor, a fresh head) or the later stages a feature extractor leaves out.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np

from reszoo.errors import ConfigError
from reszoo.weights.naming import CLASSIFIER, Scheme, Slot, slots

_BN_PARTS = ("weight", "bias", "running_mean", "running_var")  # = gamma, beta, mean, variance
_IGNORED_SUFFIXES = (".num_batches_tracked",)


class StateDictSource:
    """PyTorch-style tensors: `name.weight`, `name.bias`, BN running statistics."""

    def __init__(self, arrays: dict, description: str):
        self.arrays = {
            key: np.asarray(value)
            for key, value in arrays.items()
            if not key.endswith(_IGNORED_SUFFIXES)
        }
        self.description = description
        self.used: set[str] = set()

    def keys_for(self, name: str, layer: keras.layers.Layer) -> list[str]:
        if isinstance(layer, keras.layers.BatchNormalization):
            return [f"{name}.{part}" for part in _BN_PARTS]
        return [f"{name}.weight"] + ([f"{name}.bias"] if layer.use_bias else [])

    def take(self, name: str, layer: keras.layers.Layer) -> tuple[list[str], list[np.ndarray]]:
        """The source tensors for `layer`, converted to Keras's layout (kernels transposed)."""
        keys = self.keys_for(name, layer)
        values = [self.arrays.get(key) for key in keys]
        if isinstance(layer, keras.layers.Conv2D) and values[0] is not None:
            values[0] = values[0].transpose(2, 3, 1, 0) if values[0].ndim == 4 else values[0]
        elif isinstance(layer, keras.layers.Dense) and values[0] is not None:
            values[0] = values[0].T
        return keys, values

    def unused(self) -> list[str]:
        return sorted(set(self.arrays) - self.used)

    def classifier_rows(self, name: str) -> int | None:
        weight = self.arrays.get(f"{name}.weight")
        return None if weight is None else int(weight.shape[0])


class LayerSource:
    """Keras layers' weights by layer name, each a list in Keras's own order."""

    def __init__(self, layers: dict[str, list], description: str):
        self.arrays = {name: [np.asarray(w) for w in weights] for name, weights in layers.items()}
        self.description = description
        self.used: set[str] = set()

    def take(self, name: str, layer: keras.layers.Layer) -> tuple[list[str], list[np.ndarray]]:
        found = self.arrays.get(name)
        if found is None:
            return [name], [None]
        return [f"{name}[{i}]" for i in range(len(found))], list(found)

    def unused(self) -> list[str]:
        return sorted(set(self.arrays) - self.used)

    def classifier_rows(self, name: str) -> int | None:
        weights = self.arrays.get(name)
        return None if not weights else int(weights[0].shape[-1])


@dataclasses.dataclass
class Plan:
    """What `fill` will assign: (layer, arrays) pairs, checked, not yet applied."""

    assignments: list = dataclasses.field(default_factory=list)

    def apply(self) -> None:
        for layer, values in self.assignments:
            layer.set_weights(values)


def _mismatch(model: keras.Model, source, message: str) -> ConfigError:
    return ConfigError(f"{model.name}: {source.description} {message}")


def _plan_slot(model, source, scheme: Scheme, slot: Slot) -> tuple[list, list[str]]:
    name = scheme.name(slot)
    if name is None:
        raise _mismatch(
            model, source, f"is in {scheme.title} layout, which has no layer for {slot.path}"
        )
    keys, values = source.take(name, slot.layer)
    expected = [tuple(weight.shape) for weight in slot.layer.weights]
    for key, value in zip(keys, values):
        if value is None:
            raise _mismatch(model, source, f"has no {key!r}, needed for {slot.path}")
    if len(values) != len(expected):
        raise _mismatch(
            model,
            source,
            f"gives {len(values)} array(s) for {name!r} where {slot.path} has {len(expected)}",
        )
    for key, value, shape in zip(keys, values, expected):
        if tuple(value.shape) != shape:
            raise _mismatch(
                model,
                source,
                f"tensor {key!r} has shape {tuple(value.shape)} (Keras layout) where "
                f"{slot.path} needs {shape}: the weights are for another architecture",
            )
    return values, keys


def fill(
    model: keras.Model,
    source,
    scheme: Scheme,
    *,
    absent_owners: set[str],
    skip_classifier: bool = False,
) -> None:
    """Assign every weight of `model` from `source`, or raise and leave `model` untouched.

    `absent_owners`: top-level layers of the full registered network that `model` does not have
    (its classifier without a top, later stages in a feature extractor); their source tensors
    may stay unused. `skip_classifier`: give `model` a fresh head instead of the source's.
    """
    plan, filled = Plan(), set()
    for slot in slots(model):
        if slot.owner == CLASSIFIER and skip_classifier:
            continue
        values, keys = _plan_slot(model, source, scheme, slot)
        source.used.update(k.split("[", 1)[0] for k in keys)
        plan.assignments.append((slot.layer, values))
        filled.update(id(weight) for weight in slot.layer.weights)
    tolerated = set(absent_owners) | ({CLASSIFIER} if skip_classifier else set())
    for key in source.unused():
        owner = scheme.owner(key)
        if owner not in tolerated:
            place = "has no place in" if owner is None else f"belongs to {owner}, unused by"
            raise _mismatch(model, source, f"tensor {key!r} {place} {model.name}")
    fresh = [
        w.path
        for w in model.weights
        if id(w) not in filled and not _in_classifier(w, skip_classifier)
    ]
    if fresh:
        raise ConfigError(
            f"{model.name}: no source tensor for {fresh[0]} (reszoo cannot map this layer)"
        )
    plan.apply()


def _in_classifier(weight, skip_classifier: bool) -> bool:
    return skip_classifier and weight.path.split("/", 1)[0] == CLASSIFIER
