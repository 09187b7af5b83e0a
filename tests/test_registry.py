"""Registry lookups, overrides, validation and registration: strict, atomic, with clear messages."""

import json
import subprocess
import sys

import pytest

import reszoo
from reszoo.errors import ConfigError, DuplicateRegistrationError, UnknownModelError
from reszoo.registry import REGISTRY, Registry

TINY = dict(
    depths=[1, 1],
    widths=[4, 8],
    strides=[1, 2],
    stem="cifar",
    stem_width=4,
    input_shape=[16, 16, 3],
    num_classes=3,
)


def tiny_entry(**changes):
    return {"family": "test", "block": "basic", **TINY, **changes}


def test_list_models_has_every_required_entry_and_takes_wildcards():
    required = """resnet18 resnet34 resnet50 resnet101 resnet152 resnet200 resnet50_v1 resnet101_v1
        resnet152_v1 resnet50_v2 resnet101_v2 resnet152_v2 resnet50d resnext50_32x4d
        resnext101_32x8d wide_resnet50_2 wide_resnet101_2 seresnet50 resnet20 resnet32 resnet44
        resnet56 resnet110 resnet1202 preact_resnet164 preact_resnet1001 wrn16_8 wrn28_10 wrn40_4
        smallresnet""".split()
    assert set(required) <= set(reszoo.list_models())
    assert reszoo.list_models("wrn*") == ["wrn16_8", "wrn28_10", "wrn40_4"]
    assert reszoo.list_models("resnet?0") == ["resnet20", "resnet50"]
    assert reszoo.list_models("nothing*") == []


# Entries with no published accuracy to cite: the article gave none for its small network, and
# He et al. 2015 report the plain CIFAR networks only as training curves (Fig. 6).
NO_PUBLISHED_ACCURACY = {"smallresnet", "plain20", "plain32", "plain44", "plain56", "plain110"}


def test_every_builtin_entry_records_params_macs_and_sourced_accuracy():
    for name in reszoo.list_models():
        config = reszoo.get_config(name)
        if REGISTRY.source(name) != "reszoo's registry.json":
            continue
        assert config["params"] and config["macs"], name
        if name in NO_PUBLISHED_ACCURACY:
            assert config["accuracy"] is None, name
        else:
            assert config["accuracy"]["source"], name


def test_get_config_returns_a_copy():
    config = reszoo.get_config("resnet50")
    config["depths"][0] = 99
    assert reszoo.get_config("resnet50")["depths"] == [3, 4, 6, 3]


def test_unknown_name_lists_the_closest_names():
    with pytest.raises(UnknownModelError, match="resnet50") as error:
        reszoo.build("resnet5O")
    assert "python -m reszoo list" in str(error.value)


@pytest.mark.parametrize(
    "override, field",
    [
        (dict(depths=[3, -1, 6, 3]), "depths"),
        (dict(widths=[64, 0, 256, 512]), "widths"),
        (dict(groups=3), "groups"),  # does not divide the basic block's 64
        (dict(input_shape=(16, 16, 3)), "input_shape"),  # smaller than the total stride 32
        (dict(num_classes=0), "num_classes"),
        (dict(depths=[3, 4, 6]), "widths"),  # 3 stages of depth but 4 of width
        (dict(se_ratio=1.5), "se_ratio"),
        (dict(shortcut="C"), "shortcut"),
        (dict(bn_epsilon=-1.0), "bn_epsilon"),
        (dict(depths=[3, 4.5, 6, 3]), "depths"),
        (dict(preact="yes"), "preact"),
    ],
)
def test_bad_overrides_name_the_field(override, field):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        reszoo.build("resnet18", **override)


def test_override_that_is_not_a_field_raises():
    with pytest.raises(ConfigError, match="unknown config field.*'depth'"):
        reszoo.build("resnet18", depth=[2, 2, 2, 2])


def test_overrides_change_the_architecture_and_clear_pinned_numbers():
    config = reszoo.zoo.resolve_config("resnet18", depths=[1, 1, 1, 1])
    assert config.depths == (1, 1, 1, 1)
    assert config.params is None and config.accuracy is None
    model = reszoo.build("resnet18", depths=[1, 1, 1, 1], num_classes=7, input_shape=(64, 64, 3))
    assert model.output_shape == (None, 7)
    assert len([layer for layer in model.layers if "block" in layer.name]) == 4


def test_register_model_with_extends_then_duplicate_names_both_sources():
    registry = Registry()
    registry.register_model("tiny_base", tiny_entry(), source="test A")
    registry.register_model(
        "tiny_child", {"extends": "tiny_base", "num_classes": 5}, source="test B"
    )
    assert registry.get("tiny_child").num_classes == 5
    assert registry.get("tiny_child").depths == (1, 1)
    with pytest.raises(DuplicateRegistrationError) as error:
        registry.register_model("tiny_base", tiny_entry(), source="test C")
    assert "test A" in str(error.value) and "test C" in str(error.value)


def test_extends_does_not_inherit_measured_numbers():
    registry = Registry()
    registry.register_model(
        "child18", {"extends": "resnet18", "depths": [1, 1, 1, 1]}, source="test"
    )
    child = registry.get("child18")
    assert child.params is None and child.accuracy is None and child.macs is None
    assert child.widths == (64, 128, 256, 512)


def test_a_document_with_one_bad_entry_registers_nothing():
    registry = Registry()
    before = registry.names()
    document = {
        "format": "reszoo-registry/1",
        "models": {"good_one": tiny_entry(), "bad_one": tiny_entry(depths=[0, 1])},
    }
    with pytest.raises(ConfigError, match="bad_one.*'depths'"):
        registry.load_document(document, source="test doc")
    assert registry.names() == before


def test_a_duplicate_inside_a_document_rolls_back_the_whole_document():
    registry = Registry()
    before = registry.names()
    document = {
        "format": "reszoo-registry/1",
        "models": {"fresh_name": tiny_entry(), "resnet50": tiny_entry()},
    }
    with pytest.raises(DuplicateRegistrationError):
        registry.load_document(document, source="test doc")
    assert registry.names() == before


@pytest.mark.parametrize(
    "document, problem",
    [
        ([], "JSON object"),
        ({"format": "other/1", "models": {"a": {}}}, "format"),
        ({"format": "reszoo-registry/1", "models": {}}, "non-empty"),
        ({"format": "reszoo-registry/1", "models": {"x": 3}}, "JSON object"),
        ({"format": "reszoo-registry/1", "models": {"x": {"extends": "x"}}}, "cycle"),
        ({"format": "reszoo-registry/1", "models": {"x": {"extends": "nope"}}}, "unknown model"),
        (
            {"format": "reszoo-registry/1", "models": {"x": {**tiny_entry(), "colour": "red"}}},
            "'colour'",
        ),
        (
            {"format": "reszoo-registry/1", "models": {"x": tiny_entry(block="nope")}},
            "not a registered block",
        ),
        ({"format": "reszoo-registry/1", "models": {"bad name!": tiny_entry()}}, "invalid"),
        ({"format": "reszoo-registry/1", "models": {"x": {"family": "f"}}}, "missing required"),
        ({"format": "reszoo-registry/1", "extra": 1, "models": {"x": tiny_entry()}}, "'extra'"),
    ],
)
def test_invalid_documents_raise_config_error_naming_the_problem(document, problem):
    with pytest.raises(ConfigError, match=problem):
        Registry().load_document(document, source="test doc")


def test_invalid_json_file_is_a_config_error(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"format": "reszoo-registry/1", "models": {')
    with pytest.raises(ConfigError, match="not valid JSON"):
        Registry().load_document(path, source="test file")


def test_registry_json_is_shipped_as_the_package_copy_of_the_repository_file():
    from importlib.resources import files

    from conftest import REPO

    shipped = json.loads(files("reszoo").joinpath("registry.json").read_text())
    assert shipped == json.loads((REPO / "registry.json").read_text())


def test_cli_list_prints_the_zoo_table():
    result = subprocess.run(
        [sys.executable, "-m", "reszoo", "list", "resnet5*"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "name",
        "family",
        "params",
        "MACs",
        "input",
        "top-1",
        "(dataset)",
        "weights",
        "top-1@px",
    ]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    assert set(rows) == {"resnet50", "resnet50_v1", "resnet50_v2", "resnet50d", "resnet56"}
    assert rows["resnet50"][1:5] == ["resnet", "25.56M", "4.09G", "224x224x3"]
    assert rows["resnet50"][5] == "76.13"
    assert rows["resnet50"][7:] == ["a1_in1k", "81.24@288"]  # timm results-imagenet.csv
    assert rows["resnet56"][7:] == ["-"]


def test_cli_list_with_no_match_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "reszoo", "list", "nothing*"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no model matches" in result.stderr


@pytest.mark.parametrize("path", ["\x00", "a\x00b.json", "/no/such/registry.json", "/"])
def test_unreadable_document_paths_are_config_errors(path):
    """Found by the slow fuzz run: a path with a NUL byte raised a bare ValueError."""
    with pytest.raises(ConfigError, match="cannot read registry file"):
        Registry().load_document(path, source="test path")
