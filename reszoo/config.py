"""The typed, validated configuration of one zoo model.

A registry entry, a plugin's JSON and a call to `reszoo.build(..., **overrides)` all end as a
`ModelConfig`. Validation happens here, once, and every message names the entry and the field,
so a typo in registry.json or a bad override is reported where it was made.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
from typing import Any

from reszoo.choices import (
    DOWNSAMPLE_POSITIONS,
    PREPROCESSING_MODES,
    SHORTCUTS,
    STEM_STRIDES,
    STEMS,
    STRIDE_POSITIONS,
)
from reszoo.errors import ConfigError

__all__ = [
    "ARCHITECTURE_FIELDS",
    "BLOCK_OPTION_FIELDS",
    "DOWNSAMPLE_POSITIONS",
    "METADATA_FIELDS",
    "ModelConfig",
    "PREPROCESSING_MODES",
    "SHORTCUTS",
    "STEMS",
    "STRIDE_POSITIONS",
    "from_dict",
    "short_repr",
]

# Fields that describe the network. Everything else in an entry is metadata about it.
ARCHITECTURE_FIELDS = (
    "block",
    "depths",
    "widths",
    "strides",
    "downsample_at",
    "stem",
    "stem_width",
    "stem_bias",
    "preact",
    "stride_on",
    "conv_bias",
    "shortcut",
    "groups",
    "base_width",
    "se_ratio",
    "dropout",
    "stochastic_depth",
    "block_args",
    "bn_epsilon",
    "bn_momentum",
    "preprocessing",
    "input_shape",
    "num_classes",
)
# Fields every residual block takes as a constructor option of the same name.
BLOCK_OPTION_FIELDS = (
    "preact",
    "shortcut",
    "stride_on",
    "conv_bias",
    "groups",
    "base_width",
    "se_ratio",
    "dropout",
    "bn_epsilon",
    "bn_momentum",
)
# What the network gives each block besides its options: never settable through block_args.
BLOCK_ARGUMENT_NAMES = BLOCK_OPTION_FIELDS + ("filters", "strides", "drop_path")
METADATA_FIELDS = ("family", "description", "params", "macs", "accuracy", "weights")
ENTRY_ONLY_FIELDS = ("extends",)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to build one residual network, plus what it is known to achieve."""

    name: str
    family: str
    block: str
    depths: tuple[int, ...]
    widths: tuple[int, ...]
    strides: tuple[int, ...]
    stem: str
    stem_width: int
    # (height, width, 3); a height or width of None builds a model that takes any size.
    input_shape: tuple[int | None, int | None, int]
    num_classes: int
    downsample_at: str = "first"
    stem_bias: bool = False
    preact: bool = False
    stride_on: str = "3x3"
    conv_bias: bool = False
    shortcut: str = "B"
    groups: int = 1
    base_width: int = 64
    se_ratio: float = 0.0
    dropout: float = 0.0
    stochastic_depth: float = 0.0
    # Options the block class defines and validates itself (ResidualBlock.OPTIONS), passed to its
    # constructor as keyword arguments: {"zero_init_last": true}.
    block_args: dict = dataclasses.field(default_factory=dict)
    bn_epsilon: float = 1e-5
    bn_momentum: float = 0.9
    preprocessing: str = "torch"
    description: str = ""
    params: int | None = None
    macs: int | None = None
    accuracy: dict | None = None
    weights: dict | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (lists, not tuples) that `from_dict` turns back into this config."""
        out = dataclasses.asdict(self)
        for key, value in out.items():
            if isinstance(value, tuple):
                out[key] = list(value)
        return out

    def architecture(self) -> dict[str, Any]:
        """Only the fields that change the network: what a saved run must record to rebuild it."""
        full = self.to_dict()
        return {key: full[key] for key in ARCHITECTURE_FIELDS}

    @property
    def total_stride(self) -> int:
        """How much the network shrinks its input: the smallest input side it can take."""
        return STEM_STRIDES[self.stem] * math.prod(self.strides)

    @property
    def free_size(self) -> bool:
        """True when the height or the width is None: the model takes inputs of any size."""
        return None in self.input_shape[:2]

    def block_options(self) -> dict[str, Any]:
        """The keyword options every residual block of this network is constructed with (the
        per-block filters, strides and drop_path rate come from the block plan)."""
        options = {field: getattr(self, field) for field in BLOCK_OPTION_FIELDS}
        return {**options, **self.block_args}

    def replace(self, **changes: Any) -> ModelConfig:
        """A validated copy with `changes` applied; unknown field names raise ConfigError."""
        unknown = sorted(set(changes) - set(ARCHITECTURE_FIELDS) - set(METADATA_FIELDS))
        if unknown:
            raise ConfigError(
                f"model {self.name!r}: unknown config field(s) {', '.join(map(repr, unknown))}; "
                f"architecture fields are: {', '.join(ARCHITECTURE_FIELDS)}"
            )
        data = self.to_dict()
        data.update(changes)
        # Pinned numbers describe the registered network: a changed architecture drops them all,
        # a new head drops the counts and accuracy (its backbone weights still fit), a new input
        # size drops the MACs and accuracy. Freeing the height or width keeps them: they stay
        # defined at the registered size, which a free-size model still takes.
        if set(changes) & set(ARCHITECTURE_FIELDS) - {"num_classes", "input_shape"}:
            data.update(params=None, macs=None, accuracy=None, weights=None)
        if "num_classes" in changes and changes["num_classes"] != self.num_classes:
            data.update(params=None, macs=None, accuracy=None)
        if "input_shape" in changes and not _same_size(changes["input_shape"], self.input_shape):
            data.update(macs=None, accuracy=None)
        return from_dict(self.name, data)


def _same_size(new: Any, old: tuple) -> bool:
    """True when `new` agrees with the input shape `old` wherever `new` gives a size."""
    return (
        isinstance(new, (list, tuple))
        and len(new) == len(old)
        and all(n is None or n == o for n, o in zip(new, old))
        and new[-1] == old[-1]
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80
_REPR.maxlist = _REPR.maxdict = _REPR.maxtuple = _REPR.maxset = 8


def short_repr(value: Any) -> str:
    """repr() bounded in length and nesting depth: a message echoing a hostile value (deeply
    nested, megabytes long) stays one readable line and never recurses too deep."""
    try:
        return _REPR.repr(value)
    except (RecursionError, ValueError):  # ValueError: an int too long to print
        return f"<{type(value).__name__}>"


class _FieldChecker:
    """Collects the checks for one entry so each message names the entry and the field."""

    def __init__(self, name: str, data: dict[str, Any]):
        self.name = name
        self.data = data

    def fail(self, field: str, problem: str) -> ConfigError:
        return ConfigError(
            f"model {self.name!r}: field {field!r} {problem} "
            f"(got {short_repr(self.data.get(field))})"
        )

    def integer(self, field: str, minimum: int = 1) -> int:
        value = self.data[field]
        if not _is_int(value):
            raise self.fail(field, "must be an integer")
        if value < minimum:
            raise self.fail(field, f"must be >= {minimum}")
        return value

    def optional_integer(self, field: str) -> int | None:
        return None if self.data.get(field) is None else self.integer(field, minimum=0)

    def fraction(self, field: str) -> float:
        value = self.data[field]
        if not _is_number(value) or not 0.0 <= value < 1.0:
            raise self.fail(field, "must be a number in [0, 1)")
        return float(value)

    def positive_number(self, field: str, below: float = math.inf) -> float:
        value = self.data[field]
        if not _is_number(value) or not 0.0 < value < below:
            raise self.fail(field, f"must be a number in (0, {below})")
        return float(value)

    def boolean(self, field: str) -> bool:
        value = self.data[field]
        if not isinstance(value, bool):
            raise self.fail(field, "must be true or false")
        return value

    def string(self, field: str, choices: tuple[str, ...] | None = None) -> str:
        value = self.data[field]
        if not isinstance(value, str) or (choices is None and not value):
            raise self.fail(field, "must be a non-empty string")
        if choices is not None and value not in choices:
            raise self.fail(field, f"must be one of {', '.join(map(repr, choices))}")
        return value

    def text(self, field: str) -> str:
        value = self.data[field]
        if not isinstance(value, str):
            raise self.fail(field, "must be a string")
        return value

    def int_list(self, field: str, length: int | None = None, minimum: int = 1) -> tuple[int, ...]:
        value = self.data[field]
        if not isinstance(value, (list, tuple)) or not value:
            raise self.fail(field, "must be a non-empty list of integers")
        if not all(_is_int(item) and item >= minimum for item in value):
            raise self.fail(field, f"must hold only integers >= {minimum}")
        if length is not None and len(value) != length:
            raise self.fail(field, f"must have {length} items, one per stage like 'depths'")
        return tuple(value)

    def image_shape(self, field: str) -> tuple[int | None, int | None, int]:
        value = self.data[field]
        sizes_ok = isinstance(value, (list, tuple)) and len(value) == 3
        sizes_ok = sizes_ok and all(
            item is None or (_is_int(item) and item >= 1) for item in value[:2]
        )
        if not sizes_ok:
            raise self.fail(
                field,
                "must be [height, width, 3] with height and width integers >= 1, "
                "or null for a model that takes any size",
            )
        if value[2] != 3 or not _is_int(value[2]):
            raise self.fail(field, "must have 3 channels (models take RGB pixels)")
        return tuple(value)

    def string_keyed_dict(self, field: str) -> dict:
        value = self.data[field]
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise self.fail(field, "must be an object of option name -> value")
        return dict(value)

    def optional_dict(self, field: str) -> dict | None:
        value = self.data.get(field)
        if value is not None and not isinstance(value, dict):
            raise self.fail(field, "must be an object or null")
        return value


def from_dict(name: str, data: dict[str, Any]) -> ModelConfig:
    """Validate a complete entry (after defaults and `extends` are merged) into a ModelConfig."""
    if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
        raise ConfigError(
            f"model name {name!r} is invalid: use letters, digits and underscores only"
        )
    if not isinstance(data, dict):
        raise ConfigError(f"model {name!r}: entry must be a JSON object, got {type(data).__name__}")
    check = _FieldChecker(name, _with_defaults(name, data))
    depths = check.int_list("depths")
    stages = len(depths)
    config = ModelConfig(
        name=name,
        family=check.string("family"),
        block=check.string("block"),
        depths=depths,
        widths=check.int_list("widths", length=stages),
        strides=check.int_list("strides", length=stages),
        downsample_at=check.string("downsample_at", DOWNSAMPLE_POSITIONS),
        stem=check.string("stem", STEMS),
        stem_width=check.integer("stem_width"),
        stem_bias=check.boolean("stem_bias"),
        preact=check.boolean("preact"),
        stride_on=check.string("stride_on", STRIDE_POSITIONS),
        conv_bias=check.boolean("conv_bias"),
        shortcut=check.string("shortcut", SHORTCUTS),
        groups=check.integer("groups"),
        base_width=check.integer("base_width"),
        se_ratio=check.fraction("se_ratio"),
        dropout=check.fraction("dropout"),
        stochastic_depth=check.fraction("stochastic_depth"),
        block_args=_check_block_args(check),
        bn_epsilon=check.positive_number("bn_epsilon", below=1.0),
        bn_momentum=check.positive_number("bn_momentum", below=1.0),
        preprocessing=check.string("preprocessing", PREPROCESSING_MODES),
        input_shape=check.image_shape("input_shape"),
        num_classes=check.integer("num_classes"),
        description=check.text("description"),
        params=check.optional_integer("params"),
        macs=check.optional_integer("macs"),
        accuracy=_check_accuracy(check),
        weights=_check_weights(check),
    )
    _check_consistency(config, check)
    return config


_FIELD_ORDER = [f.name for f in dataclasses.fields(ModelConfig)]


def _with_defaults(name: str, data: dict[str, Any]) -> dict[str, Any]:
    """The entry with every optional field's default filled in; unknown or missing fields raise."""
    data = {key: value for key, value in data.items() if key != "name"}
    fields = set(_FIELD_ORDER) - {"name"}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(
            f"model {name!r}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"known fields: {', '.join(sorted(fields))}"
        )
    defaults = _defaults()
    missing = [field for field in _FIELD_ORDER if field in fields - set(defaults) - set(data)]
    if missing:
        raise ConfigError(f"model {name!r}: missing required field(s) {', '.join(missing)}")
    return {**defaults, **data}


def _check_block_args(check: _FieldChecker) -> dict:
    """An object of option name -> value; the block class checks the options themselves."""
    block_args = check.string_keyed_dict("block_args")
    reserved = sorted(set(block_args) & set(BLOCK_ARGUMENT_NAMES))
    if reserved:
        raise check.fail(
            "block_args",
            f"holds the block's own options; {reserved[0]!r} is set by the config field of that "
            f"name (or the block plan), not through block_args",
        )
    return block_args


def _defaults() -> dict[str, Any]:
    """Each optional field's default (a fresh copy for mutable ones)."""
    defaults = {}
    for f in dataclasses.fields(ModelConfig):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            defaults[f.name] = f.default_factory()
    return defaults


def _check_accuracy(check: _FieldChecker) -> dict | None:
    accuracy = check.optional_dict("accuracy")
    if accuracy is None:
        return None
    expected = {"dataset": str, "top1": (int, float), "source": str}
    if set(accuracy) != set(expected) or not all(
        isinstance(accuracy[key], kind) and not isinstance(accuracy[key], bool)
        for key, kind in expected.items()
    ):
        raise check.fail("accuracy", 'must be {"dataset": str, "top1": number, "source": str}')
    if not 0.0 <= accuracy["top1"] <= 100.0:
        raise check.fail("accuracy", "top1 must be a percentage in [0, 100]")
    return dict(accuracy)


def _check_weights(check: _FieldChecker) -> dict | None:
    """A plugin entry's own weight tags, in reszoo/weights.json's per-model shape."""
    weights = check.optional_dict("weights")
    if weights is None:
        return None
    from reszoo.weights.tags import parse_model_weights

    parse_model_weights("registry entry", check.name, weights)
    return weights


def _check_consistency(config: ModelConfig, check: _FieldChecker) -> None:
    """Checks across fields: things each field alone cannot tell. Block geometry (inner widths,
    groups) is the block class's to check: the registry asks it (Registry.check_blocks)."""
    known_sides = [side for side in config.input_shape[:2] if side is not None]
    if known_sides and min(known_sides) < config.total_stride:
        raise check.fail(
            "input_shape",
            f"is smaller than the network's total stride {config.total_stride}; "
            f"use at least {config.total_stride}x{config.total_stride}",
        )
