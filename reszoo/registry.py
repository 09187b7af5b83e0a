"""The zoo's name -> config table: registry.json, plugins, and registration.

Small and strict, like torchvision's: a name is registered once (a second registration raises
and names both sources), lookups of unknown names suggest the closest ones, and a document or
plugin is added whole or not at all. registry.json and plugin JSON are data only; code enters
the zoo only through installed `reszoo.plugins` entry points.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import fnmatch
import importlib.metadata
import importlib.resources
import json
import os
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reszoo import config as config_module
from reszoo.config import ARCHITECTURE_FIELDS, ModelConfig
from reszoo.errors import ConfigError, DuplicateRegistrationError, UnknownModelError

PLUGIN_GROUP = "reszoo.plugins"
FORMAT = "reszoo-registry/1"
BUILTIN_SOURCE = "reszoo's registry.json"
# What `extends` copies from the parent: the network and its family, never the parent's
# measured numbers (parameter count, MACs, accuracy, weights), which belong to the parent alone.
INHERITED_FIELDS = ARCHITECTURE_FIELDS + ("family",)


class Registry:
    """Models and block types by name, each remembered with the source that registered it."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[ModelConfig, str]] = {}
        self._blocks: dict[str, tuple[type, str]] = {}
        self._ready = False
        self._loading = False
        self._plugin_failures: dict[str, str] = {}

    # -- loading -----------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        """Built-ins, then plugins, on first lookup (so importing reszoo stays cheap)."""
        if self._ready or self._loading:
            return
        self._loading = True
        try:
            from reszoo.layers import BUILTIN_BLOCKS

            for name, block_class in BUILTIN_BLOCKS.items():
                self.register_block(name, block_class, source="reszoo built-in")
            self.load_document(_read_builtin_registry(), source=BUILTIN_SOURCE)
            for entry_point in importlib.metadata.entry_points(group=PLUGIN_GROUP):
                self._load_plugin(entry_point)
        finally:
            self._loading = False
        self._ready = True

    def _load_plugin(self, entry_point) -> None:
        source = f"plugin {entry_point.name!r} ({entry_point.value})"
        try:
            with self.transaction():
                plugin = entry_point.load()
                if isinstance(plugin, (str, os.PathLike)):
                    self.load_document(Path(plugin), source=source)
                elif callable(plugin):
                    with _registering_as(source):
                        plugin()
                else:
                    raise ConfigError(
                        f"entry point must name a callable or a path to a JSON registry file, "
                        f"not {type(plugin).__name__}"
                    )
        except Exception as error:  # noqa: BLE001 - any plugin failure is reported, never fatal
            message = f"{type(error).__name__}: {error}"
            self._plugin_failures[entry_point.name] = message
            warnings.warn(f"reszoo: skipped {source}: {message}", RuntimeWarning, stacklevel=2)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All registrations inside happen, or (on any exception) none do."""
        models, blocks = dict(self._models), dict(self._blocks)
        try:
            yield
        except BaseException:
            self._models, self._blocks = models, blocks
            raise

    def load_document(self, document: Any, source: str) -> list[str]:
        """Register every model of a registry document (path or parsed JSON), all or none."""
        self._ensure_loaded()  # built-in blocks and models first: `extends`, duplicates
        if isinstance(document, (str, os.PathLike)):
            document = _read_json(Path(document), source)
        entries = _entries(document, source)
        resolved: dict[str, ModelConfig] = {}
        for name in entries:
            _resolve(name, entries, resolved, self, source, chain=())
        with self.transaction():
            for name, model_config in resolved.items():
                self._add_model(name, model_config, source)
        return list(resolved)

    # -- registration ------------------------------------------------------------------------
    def register_model(
        self, name: str, config: dict | ModelConfig, source: str | None = None
    ) -> ModelConfig:
        self._ensure_loaded()
        source = source or _current_source() or _caller_source()
        if isinstance(config, ModelConfig):
            config = config.to_dict()
        if not isinstance(config, dict):
            raise ConfigError(
                f"model {name!r}: config must be a dict or ModelConfig, not {type(config).__name__}"
            )
        model_config = _resolve(name, {name: copy.deepcopy(config)}, {}, self, source, chain=())
        self._add_model(name, model_config, source)
        return model_config

    def _add_model(self, name: str, model_config: ModelConfig, source: str) -> None:
        if name in self._models:
            raise DuplicateRegistrationError(
                f"model {name!r} is already registered by {self._models[name][1]}; "
                f"{source} tried to register it again. Choose another name."
            )
        if model_config.block not in self._blocks:
            raise ConfigError(
                f"model {name!r}: field 'block' names {model_config.block!r}, which is not a "
                f"registered block type; registered: {', '.join(sorted(self._blocks))}"
            )
        if model_config.free_size:
            raise ConfigError(
                f"{source}: model {name!r}: field 'input_shape' must give a height and a width: "
                f"an entry's input size is where its macs and accuracy are defined (build with "
                f"input_shape=(None, None, 3) for a model that takes any size)"
            )
        self.check_blocks(model_config, source)
        self._models[name] = (model_config, source)

    def check_blocks(self, model_config: ModelConfig, source: str | None = None) -> ModelConfig:
        """Have the block class check every stage of `model_config`: its options (block_args
        included) and its geometry (inner widths, groups). Raises ConfigError naming the field."""
        block_class = self.block(model_config.block)
        check = getattr(block_class, "check_arguments", None)
        if check is None:  # any Keras layer may be a block; such a one is checked when built
            return model_config
        options = model_config.block_options()
        for width, stride in zip(model_config.widths, model_config.strides):
            arguments = {"filters": width, "strides": stride, **options}
            arguments["drop_path"] = model_config.stochastic_depth
            try:
                check(arguments)
            except ConfigError as error:
                field = _field_of_argument(getattr(error, "argument", None), model_config)
                where = f"{source}: " if source else ""
                raise ConfigError(
                    f"{where}model {model_config.name!r}: field {field!r}: {error}"
                ) from None
        return model_config

    def register_block(self, name: str, block_class: type, source: str | None = None) -> None:
        import keras

        self._ensure_loaded()
        source = source or _current_source() or _caller_source()
        if not isinstance(name, str) or not name:
            raise ConfigError(f"block name must be a non-empty string; got {name!r}")
        if not (isinstance(block_class, type) and issubclass(block_class, keras.layers.Layer)):
            raise ConfigError(
                f"block {name!r}: {block_class!r} is not a keras.layers.Layer subclass"
            )
        expansion = getattr(block_class, "expansion", None)
        if not isinstance(expansion, int) or expansion < 1:
            raise ConfigError(
                f"block {name!r}: {block_class.__name__} needs an integer class "
                f"attribute `expansion` >= 1 (output width / stage width)"
            )
        if name in self._blocks and self._blocks[name][0] is not block_class:
            raise DuplicateRegistrationError(
                f"block {name!r} is already registered by {self._blocks[name][1]}; "
                f"{source} tried to register {block_class.__name__} under the same name."
            )
        self._blocks[name] = (block_class, source)

    # -- lookup ------------------------------------------------------------------------------
    def get(self, name: str) -> ModelConfig:
        self._ensure_loaded()
        if not isinstance(name, str) or name not in self._models:
            raise UnknownModelError(_unknown("model", name, self._models))
        return self._models[name][0]

    def source(self, name: str) -> str:
        self.get(name)
        return self._models[name][1]

    def block(self, name: str) -> type:
        self._ensure_loaded()
        if name not in self._blocks:
            raise UnknownModelError(_unknown("block type", name, self._blocks))
        return self._blocks[name][0]

    def names(self, pattern: str = "*") -> list[str]:
        self._ensure_loaded()
        matches = [name for name in self._models if fnmatch.fnmatchcase(name, pattern)]
        return sorted(matches, key=_natural_key)

    @property
    def plugin_failures(self) -> dict[str, str]:
        self._ensure_loaded()
        return dict(self._plugin_failures)


_CURRENT_SOURCE: list[str] = []


@contextlib.contextmanager
def _registering_as(source: str) -> Iterator[None]:
    _CURRENT_SOURCE.append(source)
    try:
        yield
    finally:
        _CURRENT_SOURCE.pop()


def _current_source() -> str | None:
    return _CURRENT_SOURCE[-1] if _CURRENT_SOURCE else None


def _caller_source() -> str:
    frame = sys._getframe(3)
    return f"a register call in module {frame.f_globals.get('__name__', '?')!r}"


# Block constructor arguments that come from a config field of another name.
_ARGUMENT_FIELDS = {"filters": "widths", "strides": "strides", "drop_path": "stochastic_depth"}


def _field_of_argument(argument: str | None, model_config: ModelConfig) -> str:
    """The config field a block argument came from: its own name, or block_args for options."""
    if argument in _ARGUMENT_FIELDS:
        return _ARGUMENT_FIELDS[argument]
    if argument in model_config.block_args or argument not in ARCHITECTURE_FIELDS:
        return "block_args"
    return argument


def _natural_key(name: str) -> list:
    """resnet18 < resnet50 < resnet101: digits compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _unknown(kind: str, name: Any, known: dict) -> str:
    close = difflib.get_close_matches(str(name), list(known), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} `python -m reszoo list` shows every model."


def _read_builtin_registry() -> Any:
    text = importlib.resources.files("reszoo").joinpath("registry.json").read_text("utf-8")
    return _parse_json(text, BUILTIN_SOURCE)


def _read_json(path: Path, source: str) -> Any:
    try:
        text = path.read_text("utf-8")
    except (OSError, ValueError) as error:  # ValueError: bad text or a NUL in the path
        raise ConfigError(f"{source}: cannot read registry file {str(path)!r}: {error}") from None
    return _parse_json(text, source)


def _parse_json(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        raise ConfigError(f"{source}: registry file is not valid JSON: {error}") from None


def _entries(document: Any, source: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigError(
            f"{source}: a registry document must be a JSON object with "
            f'"format": "{FORMAT}" and "models"; got {type(document).__name__}'
        )
    unknown = sorted(set(document) - {"format", "models", "$comment"})
    if unknown:
        raise ConfigError(
            f"{source}: unknown top-level field(s) {', '.join(map(repr, unknown))}; "
            f'expected "format" and "models"'
        )
    if document.get("format") != FORMAT:
        raise ConfigError(f'{source}: "format" must be {FORMAT!r}; got {document.get("format")!r}')
    models = document.get("models")
    if not isinstance(models, dict) or not models:
        raise ConfigError(f'{source}: "models" must be a non-empty object of name -> entry')
    return models


def _resolve(
    name: str,
    entries: dict[str, Any],
    resolved: dict[str, ModelConfig],
    registry: Registry,
    source: str,
    chain: tuple[str, ...],
) -> ModelConfig:
    """Merge an entry over its `extends` parent (in the same document, or registered), validate."""
    if name in resolved:
        return resolved[name]
    entry = entries[name]
    if not isinstance(entry, dict):
        raise ConfigError(
            f"{source}: model {name!r}: entry must be a JSON object, got {type(entry).__name__}"
        )
    entry = dict(entry)
    parent_name = entry.pop("extends", None)
    merged: dict[str, Any] = {}
    if parent_name is not None:
        if not isinstance(parent_name, str):
            raise ConfigError(f"{source}: model {name!r}: field 'extends' must be a model name")
        if parent_name in chain + (name,):
            raise ConfigError(
                f"{source}: model {name!r}: 'extends' forms a cycle: "
                f"{' -> '.join(chain + (name, parent_name))}"
            )
        if parent_name in entries:
            parent = _resolve(parent_name, entries, resolved, registry, source, chain + (name,))
        elif parent_name in registry._models:
            parent = registry._models[parent_name][0]
        else:
            raise ConfigError(
                f"{source}: model {name!r}: 'extends' names unknown model {parent_name!r}"
            )
        parent_fields = parent.to_dict()
        merged = {field: parent_fields[field] for field in INHERITED_FIELDS}
    merged.update(entry)
    try:
        model_config = config_module.from_dict(name, merged)
    except ConfigError as error:
        raise ConfigError(f"{source}: {error}") from None
    resolved[name] = model_config
    return model_config


REGISTRY = Registry()
