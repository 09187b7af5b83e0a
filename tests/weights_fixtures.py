"""Fixtures shared by the weight tests: a private Keras cache and temporary test models."""

import json
from pathlib import Path

import pytest

import reszoo
from reszoo.registry import REGISTRY

WEIGHTS_JSON = json.loads((Path(reszoo.__file__).parent / "weights.json").read_text())


@pytest.fixture
def keras_cache(tmp_path, monkeypatch):
    """An empty Keras home for this test: get_file and reszoo's cache path both point there."""
    from keras.src.backend import config

    monkeypatch.setattr(config, "_KERAS_DIR", str(tmp_path / "keras_home"))
    (tmp_path / "keras_home").mkdir()
    return tmp_path / "keras_home" / "models"


@pytest.fixture
def test_models():
    """Names registered by the test, removed from the registry afterwards."""
    names = []
    yield names
    for name in names:
        REGISTRY._models.pop(name, None)


def tag_entry(parent: str, url: str, file_name: str, sha256=None, role="model", **changes) -> dict:
    """A copy of `parent`'s default tag JSON whose file comes from `url`."""
    block = WEIGHTS_JSON["models"][parent]
    tag = json.loads(json.dumps(block["tags"][block["default"]]))
    tag["files"] = {role: {"url": url, "file_name": file_name, "sha256": sha256}}
    tag.update(changes)
    return tag


def register_with_tag(names: list, name: str, parent: str, tag: dict, **fields) -> None:
    """Register `name` (extending `parent`) whose only tag, "test", is `tag`."""
    entry = {"extends": parent, **fields, "weights": {"default": "test", "tags": {"test": tag}}}
    reszoo.register_model(name, entry)
    names.append(name)
