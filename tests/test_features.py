"""Feature models (features_only=True): which maps, their strides and channels, the same function
as the classifier's intermediate tensors, and one clear error for every request that makes no
sense.

The expected channels and strides come from outside reszoo: timm's feature_info for the ImageNet
ResNets (num_chs 64/128/256/512 for the basic-block nets and 256/512/1024/2048 for the
bottleneck ones, at reductions 4, 8, 16, 32), keras.applications' ResNet50V2 stage outputs (the
same), He et al. 2015 section 4.2 for the CIFAR nets (feature maps 32, 16, 8 pixels wide on a
32x32 input, with 16, 32, 64 filters), He et al. 2016 (Identity Mappings) for the pre-activation
ResNet-164 (bottleneck outputs 64, 128, 256), Zagoruyko & Komodakis 2016 Table 1 for WRN-28-10
(16k, 32k, 64k with k = 10).
"""

import math

import keras
import numpy as np
import pytest

import reszoo
from reszoo.errors import ConfigError

IMAGENET_BOTTLENECK = ([4, 8, 16, 32], [256, 512, 1024, 2048])
CIFAR_BASIC = ([1, 2, 4], [16, 32, 64])
EXPECTED = {
    # name: (strides, channels) of the default out_indices, one entry per family
    "resnet18": ([4, 8, 16, 32], [64, 128, 256, 512]),
    "resnet50": IMAGENET_BOTTLENECK,
    "resnet50_v1": IMAGENET_BOTTLENECK,
    "resnet50_v2": IMAGENET_BOTTLENECK,
    "resnet50d": IMAGENET_BOTTLENECK,
    "resnext50_32x4d": IMAGENET_BOTTLENECK,
    "wide_resnet50_2": IMAGENET_BOTTLENECK,
    "seresnet50": IMAGENET_BOTTLENECK,
    "resnet20": CIFAR_BASIC,
    "plain20": CIFAR_BASIC,
    "preact_resnet164": ([1, 2, 4], [64, 128, 256]),
    "wrn28_10": ([1, 2, 4], [160, 320, 640]),
}
FAMILIES = sorted({reszoo.get_config(name)["family"] for name in reszoo.list_models()})


def sizes(name):
    """Two input sides for the model: a multiple of its total stride and an odd size."""
    return (32, 45) if reszoo.get_config(name)["stem"] == "cifar" else (64, 97)


def random_images(height, width, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype("float32")


def test_the_pinned_names_cover_every_family_but_the_article_net():
    covered = {reszoo.get_config(name)["family"] for name in EXPECTED}
    assert set(FAMILIES) - covered == {"smallresnet"}  # two stages, checked below


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_maps_have_the_published_strides_and_channels_at_two_input_sizes(name):
    strides, channels = EXPECTED[name]
    model = reszoo.build(name, features_only=True, input_shape=(None, None, 3))
    info = model.feature_info
    assert [f["stride"] for f in info] == strides
    assert [f["channels"] for f in info] == channels
    assert [f["name"] for f in info] == [f"P{int(math.log2(s))}" for s in strides]
    assert [f["index"] for f in info] == list(range(1, len(strides) + 1))
    assert "post_bn" not in [layer.name for layer in model.layers]
    for height, width in [(s, s + 16) for s in sizes(name)]:
        maps = model(random_images(height, width), training=False)
        assert list(maps) == [f["name"] for f in info]
        for feature in info:
            expected = (2, -(-height // feature["stride"]), -(-width // feature["stride"]))
            assert tuple(maps[feature["name"]].shape) == (*expected, feature["channels"])


def randomize(model, seed=0):
    """Weights and BN statistics away from their initial values, kernels He-scaled so deep
    nets stay finite in inference mode."""
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        shape = tuple(weight.shape)
        if weight.path.endswith(("gamma", "moving_variance")):
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 4:
            value = rng.normal(0, math.sqrt(2 / math.prod(shape[:-1])), shape)
        else:
            value = rng.normal(0, 0.1, shape)
        weight.assign(value.astype(weight.dtype))


def intermediates(classifier, feature_info):
    """The classifier's own tensors at the feature model's layers."""
    outputs = {f["name"]: classifier.get_layer(f["layer"]).output for f in feature_info}
    return keras.Model(classifier.input, outputs)


@pytest.mark.parametrize("name", sorted(EXPECTED) + ["smallresnet"])
def test_maps_equal_the_classifiers_tensors_with_the_same_weights(name):
    """Two blocks per stage (a first and a following block, the downsample-last rule included)
    keep every family's wiring and the test fast."""
    side = sizes(name)[0]
    stages = len(reszoo.get_config(name)["depths"])
    build = dict(input_shape=(side, side, 3), depths=[2] * stages)
    classifier = reszoo.build(name, **build)
    randomize(classifier)
    for out_indices in [None, (0, stages)]:
        features = reszoo.build(name, features_only=True, out_indices=out_indices, **build)
        names = {layer.name for layer in classifier.layers}
        assert {layer.name for layer in features.layers} <= names
        for layer in features.layers:
            layer.set_weights(classifier.get_layer(layer.name).get_weights())
        images = random_images(side, side, seed=1)
        expected = intermediates(classifier, features.feature_info)(images, training=False)
        got = features(images, training=False)
        assert list(got) == list(expected)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])
            assert np.isfinite(keras.ops.convert_to_numpy(got[key])).all()


def test_a_feature_model_stops_after_its_deepest_map():
    model = reszoo.build("resnet20", features_only=True, out_indices=(1,))
    assert [layer.name for layer in model.layers][-3:] == [
        "stage1_block1",
        "stage1_block2",
        "stage1_block3",
    ]


def test_index_0_is_the_stem_output_after_the_max_pool():
    model = reszoo.build(
        "resnet50", features_only=True, out_indices=(0, 2), input_shape=(64, 64, 3)
    )
    assert model.feature_info[0] == {
        "name": "P2",
        "index": 0,
        "stride": 4,
        "channels": 64,
        "layer": "stem",
    }
    assert model.output["P2"].shape == (None, 16, 16, 64)


def test_a_downsample_last_stage_gives_the_map_before_its_strided_block():
    """keras.applications' ResNet50V2 strides in each stage's last block: its stride-4 map is
    conv2_block2's output there, reszoo's stage1_block2."""
    info = reszoo.build("resnet50_v2", features_only=True).feature_info
    assert [f["layer"] for f in info] == [
        "stage1_block2",
        "stage2_block3",
        "stage3_block5",
        "stage4_block3",
    ]


def test_a_feature_model_round_trips_through_a_keras_file(tmp_path):
    model = reszoo.build("resnet20", features_only=True, input_shape=(None, None, 3))
    images = random_images(40, 24, seed=2)
    expected = model(images, training=False)
    model.save(tmp_path / "features.keras")
    loaded = keras.saving.load_model(tmp_path / "features.keras", safe_mode=True)
    got = loaded(images, training=False)
    assert list(got) == ["P0", "P1", "P2"]
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (dict(out_indices=(5,)), "stage 5, which does not exist.*4 stages"),
        (dict(out_indices=(1, 2, 3, 4, 5)), "stage 5"),
        (dict(out_indices=()), "empty"),
        (dict(out_indices=(2, 2)), "repeats 2"),
        (dict(out_indices=(3, 1)), "increasing.*\\(1, 3\\)"),
        (dict(out_indices=(0, 1)), "both give a stride-4 map"),
        (dict(out_indices="1234"), "list of stage numbers"),
        (dict(out_indices=(1.0, 2.0)), "list of stage numbers"),
        (dict(include_top=True), "include_top=True"),
        (dict(pooling="avg"), "pooling='avg'"),
        (dict(num_classes=10), "num_classes"),
    ],
)
def test_feature_requests_that_make_no_sense_are_one_clear_error(arguments, message):
    with pytest.raises(ConfigError, match=message):
        reszoo.build("resnet50", features_only=True, **arguments)


def test_cifar_nets_have_three_stages_and_say_so():
    with pytest.raises(ConfigError, match="'resnet20' has 3 stages"):
        reszoo.build("resnet20", features_only=True, out_indices=(1, 2, 3, 4))


def test_out_indices_without_features_only_and_a_non_bool_switch_are_errors():
    with pytest.raises(ConfigError, match="features_only=True"):
        reszoo.build("resnet20", out_indices=(1, 2))
    with pytest.raises(ConfigError, match="features_only must be True or False"):
        reszoo.build("resnet20", features_only="yes")


def test_include_top_false_is_accepted_with_features_only():
    model = reszoo.build("resnet20", features_only=True, include_top=False)
    assert [f["name"] for f in model.feature_info] == ["P0", "P1", "P2"]
