"""Weight tags: which trained weight sets exist for a model, and what each one expects.

The built-in tags live in reszoo/weights.json (package data); a plugin's registry entry may
carry its own `"weights"` block in the same shape. Both are validated here, strictly, and every
message names the model, the tag and the field. A tag is data only: its files (URL, cache name,
hash), licence, published accuracy with its source, and the preprocessing and evaluation
transform the numbers were measured with, which evaluation, prediction and export reuse.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import json
import math
import re
from typing import Any

from reszoo.config import PREPROCESSING_MODES, short_repr
from reszoo.errors import ConfigError

FORMAT = "reszoo-weights/1"
DEFAULT_ALIAS = "imagenet"  # weights="imagenet" means the model's default tag
FILE_FORMATS = {"safetensors": ("model",), "keras-applications-h5": ("top", "notop")}
INTERPOLATIONS = ("bilinear", "bicubic", "nearest")
CLASS_LISTS = {"imagenet-1k": 1000}
_TAG_NAME = re.compile(r"[a-z0-9][a-z0-9_]*")
_HEX = {"sha256": 64, "md5": 32}


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One downloadable file of a tag: where it comes from and what it is called in the cache."""

    role: str  # "model" (safetensors), "top" or "notop" (keras.applications)
    url: str
    file_name: str
    sha256: str | None
    md5: str | None = None

    @property
    def file_hash(self) -> str | None:
        """The hash keras.utils.get_file checks (it tells sha256 from md5 by length)."""
        return self.sha256 or self.md5


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """How pixels are normalised: a reszoo PixelNormalization mode, with timm-style mean/std."""

    mode: str
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None


@dataclasses.dataclass(frozen=True)
class EvalTransform:
    """Resize the shorter side to `resize_size`, centre-crop `image_size`: how top1 was measured."""

    image_size: int
    crop_fraction: float
    interpolation: str

    @property
    def resize_size(self) -> int:
        # timm's and torchvision's rule: floor(size / crop_pct), e.g. 224 / 0.875 -> 256.
        return math.floor(self.image_size / self.crop_fraction)


@dataclasses.dataclass(frozen=True)
class WeightTag:
    """One trained weight set of one model, e.g. resnet50 "a1_in1k"."""

    model: str
    tag: str
    description: str
    format: str
    files: tuple[WeightFile, ...]
    license: str
    origin: str
    classes: str
    num_classes: int
    preprocessing: Preprocessing
    train_size: int
    eval_transform: EvalTransform
    top1: float
    top5: float | None
    metrics_source: str
    keras_application: str | None = None
    notes: str = ""
    is_default: bool = False

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    def file(self, role: str) -> WeightFile | None:
        return next((f for f in self.files if f.role == role), None)


@dataclasses.dataclass(frozen=True)
class ModelWeights:
    """Every tag of one model and which is the default (None when the model has none)."""

    model: str
    default: str | None
    tags: dict[str, WeightTag]
    note: str = ""


class _TagChecker:
    """Field checks for one tag; each failure names the source, model, tag and field."""

    def __init__(self, source: str, model: str, tag: str, data: dict):
        self.where = f"{source}: model {model!r}, tag {tag!r}"
        self.data = data

    def fail(self, field: str, problem: str, value: Any = None) -> ConfigError:
        shown = self.data.get(field) if value is None else value
        return ConfigError(f"{self.where}: field {field!r} {problem} (got {short_repr(shown)})")

    def text(self, field: str, required: bool = True) -> str:
        value = self.data.get(field, None if required else "")
        if not isinstance(value, str) or (required and not value.strip()):
            raise self.fail(field, "must be a non-empty string")
        return value

    def choice(self, field: str, choices) -> str:
        value = self.data.get(field)
        if value not in choices:
            raise self.fail(field, f"must be one of {', '.join(map(repr, choices))}")
        return value

    def number(self, field: str, low: float, high: float, data: dict | None = None) -> float:
        value = (self.data if data is None else data).get(field)
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not low <= value <= high
        ):
            raise self.fail(field, f"must be a number in [{low}, {high}]", value)
        return float(value)

    def integer(self, field: str, data: dict | None = None) -> int:
        value = (self.data if data is None else data).get(field)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(field, "must be an integer >= 1", value)
        return value

    def mapping(self, field: str, keys: set, optional: set = frozenset()) -> dict:
        value = self.data.get(field)
        if not isinstance(value, dict) or not keys <= set(value) <= keys | optional:
            expected = ", ".join(sorted(keys)) + (
                f" (optional: {', '.join(sorted(optional))})" if optional else ""
            )
            raise self.fail(field, f"must be an object with keys {expected}")
        return value


def _check_triplet(check: _TagChecker, field: str, value: Any, low: float) -> tuple | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) != 3:
        raise check.fail("preprocessing", f"{field} must be a list of 3 numbers", value)
    items = {f"{field}[{index}]": item for index, item in enumerate(value)}
    return tuple(check.number(key, low, 1.0, items) for key in items)


def _check_preprocessing(check: _TagChecker) -> Preprocessing:
    data = check.mapping("preprocessing", {"mode"}, {"mean", "std"})
    if data["mode"] not in PREPROCESSING_MODES:
        raise check.fail("preprocessing", f"mode must be one of {', '.join(PREPROCESSING_MODES)}")
    mean = _check_triplet(check, "mean", data.get("mean"), 0.0)
    std = _check_triplet(check, "std", data.get("std"), 1e-6)
    if (mean is None) != (std is None):
        raise check.fail("preprocessing", "needs both mean and std, or neither")
    return Preprocessing(data["mode"], mean, std)


def _check_eval(check: _TagChecker) -> EvalTransform:
    data = check.mapping("eval", {"size", "crop_fraction", "interpolation"})
    size = check.integer("size", data)
    crop = check.number("crop_fraction", 0.05, 1.0, data)
    if data["interpolation"] not in INTERPOLATIONS:
        raise check.fail("eval", f"interpolation must be one of {', '.join(INTERPOLATIONS)}")
    return EvalTransform(size, crop, data["interpolation"])


def _check_file(check: _TagChecker, role: str, data: Any) -> WeightFile:
    if not isinstance(data, dict) or not {"url", "file_name", "sha256"} <= set(data) <= {
        "url",
        "file_name",
        "sha256",
        "md5",
    }:
        raise check.fail("files", f"{role!r} must be {{url, file_name, sha256[, md5]}}", data)
    url, name = data["url"], data["file_name"]
    if not isinstance(url, str) or not re.match(r"(https|http|file)://\S+$", url):
        raise check.fail("files", f"{role!r} url must be an http(s) or file URL", url)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise check.fail("files", f"{role!r} file_name must be a plain file name", name)
    for algorithm, length in _HEX.items():
        value = data.get(algorithm)
        if value is not None and not (
            isinstance(value, str) and re.fullmatch(f"[0-9a-f]{{{length}}}", value)
        ):
            raise check.fail("files", f"{role!r} {algorithm} must be {length} hex digits or null")
    return WeightFile(role, url, name, data["sha256"], data.get("md5"))


_TAG_FIELDS = {
    "description",
    "format",
    "files",
    "license",
    "origin",
    "classes",
    "num_classes",
    "preprocessing",
    "train_size",
    "eval",
    "top1",
    "top5",
    "metrics_source",
}
_OPTIONAL_TAG_FIELDS = {"keras_application", "notes"}


def parse_tag(source: str, model: str, tag: str, data: Any, default: bool) -> WeightTag:
    """Validate one tag's JSON object into a WeightTag."""
    check = _TagChecker(source, model, tag, data if isinstance(data, dict) else {})
    if not isinstance(data, dict):
        raise check.fail("(tag)", "must be a JSON object", data)
    missing = sorted(_TAG_FIELDS - set(data))
    unknown = sorted(set(data) - _TAG_FIELDS - _OPTIONAL_TAG_FIELDS)
    if missing or unknown:
        field = (missing or unknown)[0]
        raise check.fail(field, "is missing" if missing else "is not a known tag field")
    file_format = check.choice("format", tuple(FILE_FORMATS))
    files = check.mapping("files", set(FILE_FORMATS[file_format]))
    application = data.get("keras_application")
    if (file_format == "keras-applications-h5") != isinstance(application, str):
        raise check.fail(
            "keras_application", "is required for (and only for) keras-applications-h5"
        )
    classes = check.choice("classes", tuple(CLASS_LISTS))
    if check.integer("num_classes") != CLASS_LISTS[classes]:
        raise check.fail("num_classes", f"must be {CLASS_LISTS[classes]} for {classes!r}")
    top5 = None if data["top5"] is None else check.number("top5", 0.0, 100.0)
    return WeightTag(
        model=model,
        tag=tag,
        description=check.text("description"),
        format=file_format,
        files=tuple(_check_file(check, role, files[role]) for role in FILE_FORMATS[file_format]),
        license=check.text("license"),
        origin=check.text("origin"),
        classes=classes,
        num_classes=data["num_classes"],
        preprocessing=_check_preprocessing(check),
        train_size=check.integer("train_size"),
        eval_transform=_check_eval(check),
        top1=check.number("top1", 0.0, 100.0),
        top5=top5,
        metrics_source=check.text("metrics_source"),
        keras_application=application,
        notes=check.text("notes", required=False),
        is_default=default,
    )


def parse_model_weights(source: str, model: str, block: Any) -> ModelWeights:
    """Validate one model's {"default", "tags"[, "note"]} block."""
    where = f"{source}: model {model!r}"
    if not isinstance(block, dict) or not {"default", "tags"} <= set(block) <= {
        "default",
        "tags",
        "note",
    }:
        raise ConfigError(
            f'{where}: weights must be {{"default", "tags"[, "note"]}} (got {short_repr(block)})'
        )
    tags, default, note = block["tags"], block["default"], block.get("note", "")
    if not isinstance(tags, dict) or not isinstance(note, str):
        raise ConfigError(f"{where}: 'tags' must be an object and 'note' a string")
    for tag in tags:
        if tag == DEFAULT_ALIAS or not _TAG_NAME.fullmatch(str(tag)):
            raise ConfigError(
                f"{where}: tag name {short_repr(tag)} must be lower-case letters, digits and "
                f"underscores, and not {DEFAULT_ALIAS!r} (that word means the default tag)"
            )
    if (default is None and tags) or (default is not None and default not in tags):
        raise ConfigError(
            f"{where}: 'default' must name one of its tags (got {short_repr(default)})"
        )
    if not tags and not note.strip():
        raise ConfigError(f"{where}: a model without tags needs a 'note' saying why")
    parsed = {
        tag: parse_tag(source, model, tag, data, tag == default) for tag, data in tags.items()
    }
    return ModelWeights(model, default, parsed, note)


def parse_document(document: Any, source: str) -> dict[str, ModelWeights]:
    """Validate a whole weights document ({"format", "models"}) into model -> ModelWeights."""
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ConfigError(f'{source}: must be a JSON object with "format": "{FORMAT}"')
    unknown = sorted(set(document) - {"$comment", "format", "models"})
    if unknown or not isinstance(document.get("models"), dict):
        raise ConfigError(f'{source}: expected only "format" and a "models" object')
    return {
        model: parse_model_weights(source, model, block)
        for model, block in document["models"].items()
    }


@functools.lru_cache(maxsize=1)
def builtin_weights() -> dict[str, ModelWeights]:
    """reszoo/weights.json, parsed once."""
    text = importlib.resources.files("reszoo").joinpath("weights.json").read_text("utf-8")
    return parse_document(json.loads(text), "reszoo's weights.json")


def model_weights(model: str) -> ModelWeights:
    """A registered model's tags: its registry entry's `weights` block, else weights.json's."""
    from reszoo.registry import REGISTRY

    config = REGISTRY.get(model)
    if config.weights is not None:
        return parse_model_weights(f"registry entry {model!r}", model, config.weights)
    return builtin_weights().get(model) or ModelWeights(model, None, {}, "")


def list_tags(model: str) -> list[str]:
    """The model's tag names, the default first."""
    weights = model_weights(model)
    return sorted(weights.tags, key=lambda tag: (tag != weights.default, tag))


def default_tag(model: str) -> str | None:
    """The tag `weights="imagenet"` loads, or None when the model has no weights."""
    return model_weights(model).default


def is_tag_name(model: str, weights: Any) -> bool:
    """Whether `weights` names a tag of `model` (or the default alias) rather than a file."""
    if not isinstance(weights, str):
        return False
    known = model_weights(model)
    return weights in known.tags or (weights == DEFAULT_ALIAS and known.default is not None)


def get_tag(model: str, tag: str = DEFAULT_ALIAS) -> WeightTag:
    """A model's weight tag by name; "imagenet" means its default. Unknown tags list the known."""
    known = model_weights(model)
    name = known.default if tag == DEFAULT_ALIAS else tag
    if name in known.tags:
        return known.tags[name]
    if not known.tags:
        reason = known.note or "no weight set is registered for it"
        raise ConfigError(f"{model} has no pretrained weights: {reason}")
    raise ConfigError(
        f"{model} has no weight tag {tag!r}; its tags: {', '.join(list_tags(model))} "
        f"({DEFAULT_ALIAS!r} means {known.default!r})"
    )


def models_with_weights() -> list[str]:
    """Registered models that have at least one tag."""
    from reszoo.zoo import list_models

    return [name for name in list_models() if model_weights(name).tags]
