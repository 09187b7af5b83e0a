"""Items 6 and 7 (data part) of the robustness battery (README, Robustness): registry.json and plugin JSON fuzzed with hypothesis.

Random JSON documents, and real entries of registry.json with fields mutated (random JSON values,
deleted, added, retyped, deeply nested): Registry.load_document may only succeed or raise
ConfigError / DuplicateRegistrationError with a bounded message naming the entry or the
document, and a failed load leaves the registry exactly as it was (names, configs, sources,
blocks). JSON is data only: strings that look like code are never executed.

The fast run tries a few hundred documents; `--runslow` runs the same properties with many more.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip("hypothesis")
from conftest import REPO
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st

from reszoo.errors import ConfigError, DuplicateRegistrationError  # noqa: E402
from reszoo.registry import FORMAT, Registry  # noqa: E402

BUILTIN = json.loads((REPO / "registry.json").read_text())
ENTRIES = BUILTIN["models"]
ENTRY_NAMES = sorted(ENTRIES)
FIELDS = sorted(
    {field for entry in ENTRIES.values() for field in entry}
    | {
        "stem_bias",
        "preact",
        "conv_bias",
        "groups",
        "base_width",
        "se_ratio",
        "dropout",
        "stochastic_depth",
        "bn_epsilon",
        "bn_momentum",
        "downsample_at",
        "block_args",
        "weights",
        "name",
    }
)
SOURCE = "fuzzed document"
MAX_MESSAGE = 4000  # a message echoing a value must stay readable


FAST = dict(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SLOW = dict(
    max_examples=3000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# JSON values as json.loads returns them (no ints past 4300 digits; NaN/Infinity parse).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(
        [
            "basic",
            "bottleneck",
            "cifar",
            "imagenet",
            "A",
            "B",
            "none",
            "zero_init_last",
            "torch",
            "3x3",
            "first",
            "",
            "resnet18",
            "__import__('os').system('touch PWNED')",
            "!!python/object/apply:os.system ['touch PWNED']",
            "${HOME}",
            "\x00",
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
names = st.one_of(
    st.sampled_from(ENTRY_NAMES),
    st.text(max_size=20),
    st.from_regex(r"fuzz_[a-z0-9_]{1,12}", fullmatch=True),
)


def nested(value, depth: int, kind: str):
    for _ in range(depth):
        value = [value] if kind == "list" else {"x": value}
    return value


@st.composite
def mutated_entries(draw):
    """A real registry.json entry with 1-4 random mutations."""
    original = draw(st.sampled_from(ENTRY_NAMES))
    entry = copy.deepcopy(ENTRIES[original])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "delete", "add", "retype", "nest", "item"]))
        field = draw(st.sampled_from(sorted(entry) or FIELDS))
        if op == "set":
            entry[draw(st.sampled_from(FIELDS))] = draw(json_values)
        elif op == "delete" and entry:
            entry.pop(field, None)
        elif op == "add":
            entry[draw(st.text(max_size=15))] = draw(json_values)
        elif op == "retype" and field in entry:
            value = entry[field]
            entry[field] = draw(
                st.sampled_from(
                    [
                        str(value),
                        [value],
                        {"value": value},
                        None,
                        True,
                        1.5,
                        -1,
                        0,
                        len(str(value)),
                        float("nan"),
                    ]
                )
            )
        elif op == "nest" and field in entry:
            entry[field] = nested(
                entry[field],
                draw(st.sampled_from([2, 10, 50])),
                draw(st.sampled_from(["list", "dict"])),
            )
        elif op == "item" and isinstance(entry.get(field), list) and entry[field]:
            i = draw(st.integers(0, len(entry[field]) - 1))
            entry[field][i] = draw(json_values)
    return original, entry


@st.composite
def mutated_documents(draw):
    original, entry = draw(mutated_entries())
    name = draw(st.one_of(st.just("fuzz_" + original), names))
    models = {name: entry}
    if draw(st.booleans()):  # a valid sibling: it must not be registered when the other fails
        models["fuzz_sibling_" + draw(st.sampled_from(ENTRY_NAMES))] = {
            "extends": draw(st.sampled_from(ENTRY_NAMES)),
            "depths": [1, 1, 1, 1],
        }
    document = {"format": FORMAT, "models": models}
    if draw(st.integers(0, 9)) == 0:
        document[draw(st.sampled_from(["format", "models", "$comment", "extra"]))] = draw(
            json_values
        )
    return document


random_documents = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {
            "format": st.one_of(st.just(FORMAT), json_values),
            "models": st.one_of(
                json_values, st.dictionaries(names, json_values, min_size=1, max_size=4)
            ),
        }
    ),
)


# ----------------------------------------------------------------------------- the property


@pytest.fixture(scope="module")
def registry():
    registry = Registry()
    registry.names()  # built-ins (and installed plugins) loaded first
    return registry


def snapshot(registry: Registry) -> dict:
    return {
        "models": {
            name: (config.to_dict(), source) for name, (config, source) in registry._models.items()
        },
        "blocks": dict(registry._blocks),
    }


def check_load(registry: Registry, document, as_file: bool = False) -> bool | None:
    """Load a document and check the registry's contract either way; True when it was
    accepted, False when rejected (None: not representable as a file)."""
    before = snapshot(registry)
    saved_models, saved_blocks = dict(registry._models), dict(registry._blocks)
    target = document
    path = None
    if as_file:
        try:
            text = json.dumps(document)
        except (ValueError, RecursionError):
            return
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        target = Path(path)
    try:
        added = registry.load_document(target, source=SOURCE)
    except (ConfigError, DuplicateRegistrationError) as error:
        message = str(error)
        assert message and len(message) <= MAX_MESSAGE, message[:MAX_MESSAGE]
        models = document.get("models") if isinstance(document, dict) else None
        named = [repr(n) for n in models] if isinstance(models, dict) else []
        assert SOURCE in message or any(n in message for n in named), message
        assert snapshot(registry) == before, "a failed load changed the registry"
        accepted = False
    else:
        after = snapshot(registry)
        assert set(after["models"]) == set(before["models"]) | set(added)
        assert all(after["models"][n] == before["models"][n] for n in before["models"])
        assert all(after["models"][n][1] == SOURCE for n in added)
        registry._models, registry._blocks = saved_models, saved_blocks  # undo for the next one
        accepted = True
    finally:
        if path:
            os.unlink(path)
    assert not os.path.exists("PWNED")
    return accepted


@settings(**FAST)
@given(document=random_documents, as_file=st.booleans())
def test_random_documents_only_raise_config_errors(registry, document, as_file):
    check_load(registry, document, as_file)


@settings(**FAST)
@given(document=mutated_documents(), as_file=st.booleans())
def test_mutated_real_entries_only_raise_config_errors_and_roll_back(registry, document, as_file):
    check_load(registry, document, as_file)


@pytest.mark.slow
@settings(**SLOW)
@given(document=st.one_of(random_documents, mutated_documents()), as_file=st.booleans())
def test_fuzz_many_documents_slow(registry, document, as_file):
    check_load(registry, document, as_file)


@pytest.mark.parametrize("depth", [100, 2000, 100_000])
@pytest.mark.parametrize("field", ["depths", "accuracy", "weights", "extends", "description"])
def test_deeply_nested_values_are_config_errors(registry, field, depth):
    entry = {"extends": "resnet18", field: nested(1, depth, "list")}
    assert check_load(registry, {"format": FORMAT, "models": {"deep_one": entry}}) is False


def test_deeply_nested_json_text_is_a_config_error(registry, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(f'{{"format": "{FORMAT}", "models": {{"x": {"[" * 100_000}1{"]" * 100_000}}}}}')
    with pytest.raises(ConfigError, match="not valid JSON"):
        registry.load_document(path, source=SOURCE)
    for data in (b"\xff\xfe\x00garbage", b""):
        path.write_bytes(data)
        with pytest.raises(ConfigError, match="deep.json|not valid JSON"):
            registry.load_document(path, source=SOURCE)


def test_a_fresh_registry_loads_builtins_before_a_document():
    """Registry().load_document(doc) must see the built-in blocks and models (extends)."""
    registry = Registry()
    added = registry.load_document(
        {
            "format": FORMAT,
            "models": {"fresh_child": {"extends": "resnet18", "depths": [1, 1, 1, 1]}},
        },
        source=SOURCE,
    )
    assert added == ["fresh_child"]
    assert "resnet18" in registry.names() and "fresh_child" in registry.names()


# ----------------------------------------------------------------------------- data only

CODE_STRINGS = [
    "__import__('os').system('touch {marker}')",
    "!!python/object/apply:os.system ['touch {marker}']",
    "{{{{ ''.__class__.__mro__[1].__subclasses__() }}}}",
    "$(touch {marker})",
    "`touch {marker}`",
    "eval(compile('open(\"{marker}\", \"w\")', 'x', 'exec'))",
]


@pytest.mark.parametrize("template", CODE_STRINGS)
@pytest.mark.parametrize(
    "where",
    ["description", "family", "block", "extends", "name", "field_name", "weights_url", "format"],
)
def test_code_in_json_is_never_executed(registry, tmp_path, template, where):
    marker = tmp_path / "PWNED"
    code = template.format(marker=marker)
    entry = {"extends": "resnet18", "depths": [1, 1, 1, 1]}
    name = "code_probe"
    document = {"format": FORMAT, "models": {}}
    if where == "name":
        name = code
    elif where == "field_name":
        entry[code] = 1
    elif where == "weights_url":
        entry["weights"] = {"imagenet": {"url": code, "layout": code}}
    elif where == "format":
        document["format"] = code
    else:
        entry[where] = code
    document["models"][name] = entry
    path = tmp_path / "plugin.json"
    path.write_text(json.dumps(document))
    for target in (document, path):
        before = snapshot(registry)
        try:
            added = registry.load_document(target, source=SOURCE)
        except (ConfigError, DuplicateRegistrationError) as error:
            assert snapshot(registry) == before
            assert len(str(error)) <= MAX_MESSAGE
        else:
            # accepted only where a string is just text: stored as that text, never run
            assert where in ("description", "family", "weights_url"), where
            config = registry.get(added[0])
            stored = config.to_dict()
            assert code in (
                stored["description"],
                stored["family"],
                (stored["weights"] or {}).get("imagenet", {}).get("url"),
            )
            registry._models.pop(added[0])
        assert not marker.exists()
    assert not marker.exists()
