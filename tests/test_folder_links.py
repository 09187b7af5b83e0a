"""Image folders and symbolic links: not followed by default; followed on request, inside the root.

Each case builds train/a and train/b with five PNGs each (10 images), adds links, and counts the
(path, label) entries reszoo.data lists, against the files the test itself made.
"""

import os
import warnings

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from reszoo import data  # noqa: E402
from reszoo.errors import ConfigError, DataError  # noqa: E402

COLOURS = {"a": (250, 0, 0), "b": (0, 0, 250)}


def _png(path, rgb):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.broadcast_to(np.array(rgb, np.uint8), (8, 8, 3)).copy()
    path.write_bytes(tf.io.encode_png(image).numpy())


@pytest.fixture
def train(tmp_path):
    root = tmp_path / "train"
    for name, rgb in COLOURS.items():
        for i in range(5):
            _png(root / name / f"{i}.png", rgb)
    return root


def _entries(root, **kwargs):
    """(path relative to root, class name) of every training entry, and the warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds, _, info = data.load(
            str(root), batch_size=1, validation_split=0, augment="none", **kwargs
        )
        labels = [int(y[0]) for _, y in ds]
    assert len(labels) == info.train_examples
    messages = [str(w.message) for w in caught if "symbolic links" in str(w.message)]
    return info, [info.class_names[y] for y in labels], messages


def _counts(names):
    return {c: names.count(c) for c in sorted(set(names))}


def test_link_back_up_the_tree_is_not_a_loop(train):
    os.symlink("..", train / "a" / "up")
    info, names, messages = _entries(train)
    assert info.train_examples == 10 and _counts(names) == {"a": 5, "b": 5}
    assert len(messages) == 1 and "1 link(s) (a/up) not followed" in messages[0]

    info, names, messages = _entries(train, follow_links=True)
    assert info.train_examples == 10 and _counts(names) == {"a": 5, "b": 5}
    assert "already listed (a loop or a duplicate)" in messages[0]


def test_link_to_an_image_of_another_class_is_not_a_second_entry(train):
    os.symlink(os.path.join("..", "a", "0.png"), train / "b" / "0-copy.png")
    for options in ({}, {"follow_links": True}):  # the default, then following
        info, names, messages = _entries(train, **options)
        assert info.train_examples == 10 and _counts(names) == {"a": 5, "b": 5}
        assert len(messages) == 1 and "b/0-copy.png" in messages[0]


def test_links_leading_outside_the_root_are_refused(train, tmp_path):
    outside = tmp_path / "elsewhere"
    for i in range(3):
        _png(outside / f"{i}.png", (0, 250, 0))
    os.symlink(outside, train / "a" / "more")
    os.symlink(outside / "0.png", train / "b" / "5.png")
    for options in ({}, {"follow_links": True}):  # the default, then following
        info, names, messages = _entries(train, **options)
        assert info.train_examples == 10 and _counts(names) == {"a": 5, "b": 5}
        assert len(messages) == 1 and "2 link(s)" in messages[0]
    assert "lead outside" in messages[0]


def test_links_inside_the_root_are_skipped_by_default_and_followed_on_request(train):
    for i in range(3):
        _png(train / ".store" / f"{i}.png", COLOURS["a"])  # hidden: listed only through the link
    os.symlink(os.path.join("..", ".store"), train / "a" / "more")
    info, names, messages = _entries(train)
    assert info.train_examples == 10 and "follow_links=True" in messages[0]

    info, names, messages = _entries(train, follow_links=True)
    assert info.train_examples == 13 and _counts(names) == {"a": 8, "b": 5}
    assert messages == []
    with pytest.raises(DataError, match="follow_links must be True or False"):
        _entries(train, follow_links="yes")


def test_follow_links_is_a_training_option(train):
    from reszoo.training import fit, recipes

    with pytest.raises(ConfigError, match="follow_links must be true/false"):
        recipes.resolve(None, str(train), options={"follow_links": "yes"})
    for i in range(3):
        _png(train / ".store" / f"{i}.png", COLOURS["a"])
    os.symlink(os.path.join("..", ".store"), train / "a" / "more")
    common = dict(
        epochs=1,
        batch_size=1,
        validation_split=0,
        precision="float32",
        overrides={"depths": [1, 1, 1]},
        verbose=0,
    )
    with pytest.warns(UserWarning, match="not followed"):
        assert fit("resnet20", str(train), **common).config["steps_per_epoch_resolved"] == 10
    result = fit("resnet20", str(train), follow_links=True, **common)
    assert result.config["steps_per_epoch_resolved"] == 13
