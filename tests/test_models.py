"""Input sizes: free and partially known input shapes, the total-stride rule, and MACs at the
registry's size (the whole zoo's free-size check is in the battery)."""

import keras
import numpy as np
import pytest

import reszoo
from reszoo.errors import ConfigError
from reszoo.models import count_macs
from reszoo.registry import Registry


def images(height, width, batch=1, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype("float32")


def test_a_partially_known_shape_fixes_one_side_and_frees_the_other():
    model = reszoo.build("resnet18", input_shape=(None, 64, 3))
    assert model.input_shape == (None, None, 64, 3)
    for height in (32, 101):
        assert model(images(height, 64)).shape == (1, 1000)


@pytest.mark.parametrize(
    "input_shape", [(None, 16, 3), (16, None, 3), (31, 31, 3), (None, None, 4), (None, 0, 3)]
)
def test_a_known_side_below_the_total_stride_or_a_bad_shape_fails_at_build_time(input_shape):
    with pytest.raises(ConfigError, match="'input_shape'"):
        reszoo.build("resnet18", input_shape=input_shape)


def test_the_stride_rule_names_the_smallest_size():
    with pytest.raises(ConfigError, match="total stride 4; use at least 4x4"):
        reszoo.build("resnet20", input_shape=(None, 3, 3))


def test_free_sizes_are_not_checked_at_run_time_tiny_inputs_give_1x1_maps():
    """What README states: a free-size model cannot know the size before it runs, so an input
    below the total stride is not rejected; every map is then at least 1x1 (padding included)."""
    model = reszoo.build("resnet18", features_only=True, input_shape=(None, None, 3))
    maps = model(images(8, 8), training=False)
    assert maps["P5"].shape == (1, 1, 1, 512)
    assert np.isfinite(keras.ops.convert_to_numpy(maps["P5"])).all()


def test_freeing_the_size_keeps_the_pinned_numbers_a_new_size_drops_the_macs():
    registered = reszoo.get_config("resnet18")
    free = reszoo.zoo.resolve_config("resnet18", input_shape=(None, None, 3))
    assert free.input_shape == (None, None, 3) and free.free_size
    assert (free.params, free.macs, free.accuracy) == (
        registered["params"],
        registered["macs"],
        registered["accuracy"],
    )
    partial = reszoo.zoo.resolve_config("resnet18", input_shape=(None, 224, 3))
    assert partial.macs == registered["macs"]
    other = reszoo.zoo.resolve_config("resnet18", input_shape=(None, 320, 3))
    assert other.macs is None and other.accuracy is None and other.params == registered["params"]


def test_count_macs_of_a_free_model_is_at_the_registry_size_or_the_one_given():
    model = reszoo.build("resnet18", input_shape=(None, None, 3))
    # torchvision's docs: ResNet-18, 1.81 GFLOPS (multiply-accumulates) at 224x224
    assert count_macs(model) == pytest.approx(1.814e9, rel=2e-3)
    assert count_macs(model, (224, 224, 3)) == count_macs(model)
    fixed = reszoo.build("resnet18", input_shape=(96, 128, 3))
    assert count_macs(model, (96, 128, 3)) == count_macs(fixed)
    with pytest.raises(ConfigError, match="input_shape must be"):
        count_macs(model, (96, 128))


def test_count_macs_of_an_unregistered_free_model_asks_for_a_size():
    model = reszoo.build("resnet20", input_shape=(None, None, 3))
    renamed = keras.Model(model.inputs, model.outputs, name="not_in_the_zoo")
    with pytest.raises(ConfigError, match="pass count_macs\\(model, input_shape="):
        count_macs(renamed)
    assert count_macs(renamed, (32, 32, 3)) == reszoo.get_config("resnet20")["macs"]


def test_registry_entries_must_give_their_default_size():
    entry = {"extends": "resnet20", "input_shape": [None, None, 3]}
    with pytest.raises(ConfigError, match="'free_net'.*'input_shape' must give a height"):
        Registry().register_model("free_net", entry, source="test")


def test_a_free_size_model_round_trips_through_a_keras_file(tmp_path):
    model = reszoo.build("resnet20", input_shape=(None, None, 3))
    x = images(40, 24, seed=3)
    expected = model(x, training=False)
    model.save(tmp_path / "free.keras")
    loaded = keras.saving.load_model(tmp_path / "free.keras", safe_mode=True)
    assert loaded.input_shape == (None, None, None, 3)
    np.testing.assert_array_equal(loaded(x, training=False), expected)
