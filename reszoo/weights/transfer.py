"""Transfer learning helpers: freeze a pretrained backbone, unfreeze it, describe the start.

Freezing sets `trainable = False` on whole top-level layers. Keras (and reszoo's
FusedBatchNormalization) run a non-trainable BatchNormalization in inference mode, so frozen
stages keep their moving statistics as well as their weights, and an optimizer built after the
change only sees the weights left trainable (recompile, or rebuild the optimizer, after every
freeze or unfreeze).
"""

from __future__ import annotations

import dataclasses
import re

import keras

from reszoo.errors import ConfigError
from reszoo.weights.naming import CLASSIFIER
from reszoo.weights.tags import EvalTransform, get_tag, is_tag_name


def _stage_of(layer_name: str) -> int | None:
    """0 for the stem, N for stageN_blockM, None for layers outside the backbone's stages."""
    if layer_name == "stem":
        return 0
    match = re.fullmatch(r"stage(\d+)_block\d+", layer_name)
    return int(match[1]) if match else None


def _freeze_limit(model: keras.Model, up_to: str | None) -> float:
    stages = sorted({s for s in map(_stage_of, (layer.name for layer in model.layers)) if s})
    names = ["stem"] + [f"stage{s}" for s in stages]
    if up_to is None:
        return float("inf")
    if up_to not in names:
        raise ConfigError(
            f"{model.name}: cannot freeze up to {up_to!r}; use one of {', '.join(names)} "
            f"(or nothing for the whole backbone)"
        )
    return 0 if up_to == "stem" else int(up_to[len("stage") :])


def freeze_backbone(model: keras.Model, up_to: str | None = None) -> list[str]:
    """Freeze everything but the classifier, or only the stem and stages up to `up_to`
    ("stem", "stage1", ..., "stage4"). Returns the names of the layers it froze."""
    limit = _freeze_limit(model, up_to)
    frozen = []
    for layer in model.layers:
        stage = _stage_of(layer.name)
        in_backbone = layer.name != CLASSIFIER and (stage is not None or up_to is None)
        if layer.weights and in_backbone and (stage is None or stage <= limit):
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def unfreeze(model: keras.Model) -> None:
    """Make every layer trainable again (BatchNormalization back to batch statistics)."""
    model.trainable = True
    for layer in model.layers:
        layer.trainable = True


@dataclasses.dataclass(frozen=True)
class WeightsInputs:
    """What a trainer or evaluator needs to feed a model built with some weights."""

    preprocessing: str  # the PixelNormalization mode inside the model (pixels stay 0..255)
    train_size: int
    eval_transform: EvalTransform | None
    source: str


def weights_inputs(model_name: str, weights) -> WeightsInputs:
    """Preprocessing, training size and evaluation transform for `build(model_name, weights=...)`.

    A tag gives its own; a file records none, so the model's registered preprocessing and input
    size are returned with no evaluation transform.
    """
    from reszoo.registry import REGISTRY

    if is_tag_name(model_name, weights):
        tag = get_tag(model_name, weights)
        return WeightsInputs(
            tag.preprocessing.mode,
            tag.train_size,
            tag.eval_transform,
            source_description(model_name, weights),
        )
    config = REGISTRY.get(model_name)
    return WeightsInputs(
        config.preprocessing, config.input_shape[0], None, source_description(model_name, weights)
    )


def source_description(model_name: str, weights) -> str:
    """One line naming where a run's starting weights came from (for its run directory)."""
    if weights is None:
        return f"{model_name}: random initialisation (no pretrained weights)"
    if is_tag_name(model_name, weights):
        tag = get_tag(model_name, weights)
        file = tag.files[0]
        digest = (
            f", sha256 {file.sha256}" if file.sha256 else (f", md5 {file.md5}" if file.md5 else "")
        )
        return (
            f"{tag.name} ({tag.description}; {file.url}{digest}; licence {tag.license}; "
            f"top-1 {tag.top1:.2f} at {tag.eval_transform.image_size}px per {tag.metrics_source})"
        )
    return f"{model_name}: weight file {str(weights)!r}"
