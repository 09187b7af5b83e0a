"""Where each weighted layer of a reszoo model lives in another library's files.

`slots(model)` walks a model once and lists every weighted sublayer with its role (stem conv,
block BN, shortcut conv, SE reduce, classifier, ...). A naming scheme turns a slot into the
name the source uses (timm/torchvision's `layer1.0.conv1`, keras.applications'
`conv2_block1_1_conv`, reszoo's own `stage1_block1/conv1`) and says, for any source name,
which top-level reszoo layer owns it. Schemes are a table: a new source is one more entry.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable

import keras

from reszoo.layers import ResidualBlock, Stem

CLASSIFIER = "logits"


@dataclasses.dataclass(frozen=True)
class Slot:
    """One weighted sublayer of a model, with what a naming scheme needs to name it."""

    layer: keras.layers.Layer
    owner: str  # the model's top-level layer: "stem", "stage2_block1", "post_bn", "logits"
    role: str
    index: int = 0  # conv/bn number (1-based in blocks, 0-based in the stem)
    count: int = 1  # how many convs the stem has
    stage: int = 0
    block: int = 0
    shortcut: str = ""  # the shortcut kind ("B", "D") for shortcut slots

    @property
    def path(self) -> str:
        """reszoo's own name for the slot: the Keras sublayer path under the model."""
        return self.owner if self.owner == self.layer.name else f"{self.owner}/{self._inner()}"

    def _inner(self) -> str:
        if self.role.startswith("shortcut"):
            return f"shortcut/{self.layer.name}"
        if self.role.startswith("se"):
            return f"se/{self.layer.name}"
        return self.layer.name


def _stem_slots(stem: Stem) -> list[Slot]:
    found = []
    for index, (conv, norm) in enumerate(zip(stem.convs, stem.norms)):
        found.append(Slot(conv, stem.name, "stem_conv", index, stem.num_convs))
        if norm is not None:
            found.append(Slot(norm, stem.name, "stem_bn", index, stem.num_convs))
    return found


def _block_slots(block: ResidualBlock) -> list[Slot]:
    stage, number = map(int, re.fullmatch(r"stage(\d+)_block(\d+)", block.name).groups())
    where = dict(stage=stage, block=number)
    found = []
    if block.preact_norm is not None:
        found.append(Slot(block.preact_norm, block.name, "preact_bn", **where))
    for index, (conv, norm) in enumerate(zip(block.convs, block.norms), start=1):
        found.append(Slot(conv, block.name, "conv", index, **where))
        if norm is not None:
            found.append(Slot(norm, block.name, "bn", index, **where))
    shortcut = block.shortcut_layer
    if shortcut is not None and shortcut.conv is not None:
        found.append(
            Slot(shortcut.conv, block.name, "shortcut_conv", shortcut=shortcut.kind, **where)
        )
        if shortcut.norm is not None:
            found.append(
                Slot(shortcut.norm, block.name, "shortcut_bn", shortcut=shortcut.kind, **where)
            )
    if block.se is not None:
        found.append(Slot(block.se.reduce, block.name, "se_reduce", **where))
        found.append(Slot(block.se.expand, block.name, "se_expand", **where))
    return found


def slots(model: keras.Model) -> list[Slot]:
    """Every weighted sublayer of a reszoo model (or of any model made of its layers), in order."""
    found: list[Slot] = []
    for layer in model.layers:
        if isinstance(layer, Stem):
            found += _stem_slots(layer)
        elif isinstance(layer, ResidualBlock):
            found += _block_slots(layer)
        elif layer.name in ("post_bn", CLASSIFIER) and layer.weights:
            found.append(Slot(layer, layer.name, layer.name))
    return found


# --------------------------------------------------------------------------- timm / torchvision
_DEEP_STEM_CONVS = ("conv1.0", "conv1.3", "conv1.6")  # nn.Sequential(conv, bn, act, conv, ...)
_DEEP_STEM_NORMS = ("conv1.1", "conv1.4", "bn1")


def _timm_stem(slot: Slot) -> str | None:
    if slot.count == 1:
        return "conv1" if slot.role == "stem_conv" else "bn1"
    if slot.count == 3:
        return (_DEEP_STEM_CONVS if slot.role == "stem_conv" else _DEEP_STEM_NORMS)[slot.index]
    return None


def _timm_name(slot: Slot) -> str | None:
    """timm's and torchvision's ResNet module names (timm/models/resnet.py)."""
    prefix = f"layer{slot.stage}.{slot.block - 1}"
    # downsample_conv is Sequential(conv, bn); downsample_avg is Sequential(pool, conv, bn).
    first = {"B": 0, "D": 1}.get(slot.shortcut)
    names = {
        "stem_conv": lambda: _timm_stem(slot),
        "stem_bn": lambda: _timm_stem(slot),
        "conv": lambda: f"{prefix}.conv{slot.index}",
        "bn": lambda: f"{prefix}.bn{slot.index}",
        "shortcut_conv": lambda: None if first is None else f"{prefix}.downsample.{first}",
        "shortcut_bn": lambda: None if first is None else f"{prefix}.downsample.{first + 1}",
        "se_reduce": lambda: f"{prefix}.se.fc1",
        "se_expand": lambda: f"{prefix}.se.fc2",
        CLASSIFIER: lambda: "fc",
    }
    return names[slot.role]() if slot.role in names else None


def _timm_owner(name: str) -> str | None:
    if match := re.match(r"layer(\d+)\.(\d+)\.", name):
        return f"stage{match[1]}_block{int(match[2]) + 1}"
    if re.match(r"(conv1|bn1)\.", name):
        return "stem"
    return CLASSIFIER if name.startswith("fc.") else None


# --------------------------------------------------------------------------- keras.applications
def _applications_name(slot: Slot) -> str | None:
    """keras.applications ResNet/ResNetV2 layer names (keras/src/applications/resnet*.py)."""
    prefix = f"conv{slot.stage + 1}_block{slot.block}"
    names = {
        "stem_conv": "conv1_conv" if slot.count == 1 else None,
        "stem_bn": "conv1_bn" if slot.count == 1 else None,
        "preact_bn": f"{prefix}_preact_bn",
        "conv": f"{prefix}_{slot.index}_conv",
        "bn": f"{prefix}_{slot.index}_bn",
        "shortcut_conv": f"{prefix}_0_conv" if slot.shortcut == "B" else None,
        "shortcut_bn": f"{prefix}_0_bn" if slot.shortcut == "B" else None,
        "post_bn": "post_bn",
        CLASSIFIER: "predictions",
    }
    return names.get(slot.role)


def _applications_owner(name: str) -> str | None:
    if match := re.match(r"conv(\d+)_block(\d+)_", name):
        return f"stage{int(match[1]) - 1}_block{match[2]}"
    if name.startswith("conv1_"):
        return "stem"
    return {"post_bn": "post_bn", "predictions": CLASSIFIER}.get(name)


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A source's naming: slot -> source name (None: the source has no such layer), and
    source name -> owning reszoo layer (None: no reszoo layer could own it)."""

    title: str
    name: Callable[[Slot], str | None]
    owner: Callable[[str], str | None]
    classifier: str  # the source's name for the classifier layer


SCHEMES = {
    "timm": Scheme("timm/torchvision", _timm_name, _timm_owner, "fc"),
    "keras.applications": Scheme(
        "keras.applications", _applications_name, _applications_owner, "predictions"
    ),
    "reszoo": Scheme(
        "reszoo", lambda slot: slot.path, lambda name: name.split("/", 1)[0], CLASSIFIER
    ),
}
