"""Pretrained weights: tags (reszoo/weights.json), downloads, conversion, transfer learning.

reszoo.build("resnet50", weights="imagenet")              # the default tag
reszoo.build("resnet50", weights="tv2_in1k", num_classes=10)  # fresh 10-class head
reszoo.weights.get_tag("resnet50", "a1_in1k").eval_transform
reszoo.weights.freeze_backbone(model, up_to="stage3")
"""

from reszoo.weights.classes import class_names, imagenet_classes, imagenet_synsets
from reszoo.weights.listing import default_weights_cell, weights_table
from reszoo.weights.loader import load_torch_state_dict, load_weights, prefetch, weights_overrides
from reszoo.weights.tags import (
    EvalTransform,
    Preprocessing,
    WeightFile,
    WeightTag,
    default_tag,
    get_tag,
    list_tags,
    models_with_weights,
)
from reszoo.weights.transfer import (
    WeightsInputs,
    freeze_backbone,
    source_description,
    unfreeze,
    weights_inputs,
)

__all__ = [
    "EvalTransform",
    "Preprocessing",
    "WeightFile",
    "WeightTag",
    "WeightsInputs",
    "class_names",
    "default_tag",
    "default_weights_cell",
    "freeze_backbone",
    "get_tag",
    "imagenet_classes",
    "imagenet_synsets",
    "list_tags",
    "load_torch_state_dict",
    "load_weights",
    "models_with_weights",
    "prefetch",
    "source_description",
    "unfreeze",
    "weights_inputs",
    "weights_overrides",
    "weights_table",
]
