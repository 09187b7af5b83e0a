"""The battery every zoo entry gets, parametrized over list_models() (plugins' entries included).

Parameter counts and MACs are pinned twice: each entry against its own registry numbers, and the
entries with published numbers against those (torchvision, timm, the papers, keras.applications).
"""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

import reszoo
from reszoo.layers import ResidualBlock
from reszoo.models import count_macs, count_trainable_params

# Published trainable-parameter counts (torchvision model docs; He et al. 2015 CIFAR option A
# as implemented by akamaster/pytorch_resnet_cifar10; timm for resnet200, resnet50d, seresnet50).
PUBLISHED_PARAMS = {
    "resnet18": 11_689_512,
    "resnet34": 21_797_672,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnet200": 64_673_832,
    "resnet50d": 25_576_264,
    "seresnet50": 28_088_024,
    "resnet20": 269_722,
    "resnet32": 464_154,
    "resnet44": 658_586,
    "resnet56": 853_018,
    "resnet110": 1_727_962,
    "resnet1202": 19_421_274,
    "wrn28_10": 36_479_194,
    "preact_resnet164": 1_703_258,
    "smallresnet": 43_242,
    # He et al. 2015, section 4.2: with option-A (parameter-free) shortcuts "all residual models
    # have exactly the same number of parameters as plain counterparts", so plain-N has resnet-N's
    # count above.
    "plain20": 269_722,
    "plain32": 464_154,
    "plain44": 658_586,
    "plain56": 853_018,
    "plain110": 1_727_962,
}
# keras.applications count_params() (includes BN moving statistics and conv biases).
KERAS_APPLICATIONS_TOTAL = {"resnet50_v1": 25_636_712, "resnet50_v2": 25_613_800}
# Published MACs (torchvision docs "GFLOPS" column is MACs; CIFAR numbers from ptflops counts).
# Option-A shortcuts cost no multiply-accumulates, so a plain net's count is its ResNet's.
PUBLISHED_MACS = {
    "resnet50": 4.089e9,
    "resnet18": 1.814e9,
    "resnet20": 40.55e6,
    "resnet56": 125.5e6,
    "plain20": 40.55e6,
    "plain56": 125.5e6,
}

# Entries too big for a forward pass in the default (fast) run; their counts are still checked.
HEAVY = {
    name
    for name in reszoo.list_models()
    if (reszoo.get_config(name)["params"] or 0) > 50_000_000
    or sum(reszoo.get_config(name)["depths"]) > 100
}
ALL_MODELS = reszoo.list_models()


def total_stride(name):
    config = reszoo.get_config(name)
    return (1 if config["stem"] == "cifar" else 4) * math.prod(config["strides"])


def small_input_shape(name):
    """The smallest input the entry takes (its total stride), so forward passes stay cheap."""
    side = total_stride(name)
    return (max(side, 32), max(side, 32), 3)


_built = {}


def small_model(name):
    if name not in _built:
        _built.clear()  # keep one model alive at a time: the big ones take GBs
        _built[name] = reszoo.build(name, input_shape=small_input_shape(name))
    return _built[name]


def random_images(shape, batch=2, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, *shape)).astype("float32")


def forward_param(name):
    return pytest.param(name, marks=pytest.mark.slow) if name in HEAVY else name


@pytest.mark.parametrize("name", ALL_MODELS)
def test_trainable_params_match_registry_and_published_counts(name):
    model = small_model(name)
    trainable = count_trainable_params(model)
    assert trainable == reszoo.get_config(name)["params"]
    if name in PUBLISHED_PARAMS:
        assert trainable == PUBLISHED_PARAMS[name]
    if name in KERAS_APPLICATIONS_TOTAL:
        assert model.count_params() == KERAS_APPLICATIONS_TOTAL[name]


@pytest.mark.parametrize("name", [forward_param(name) for name in ALL_MODELS])
def test_macs_match_registry_and_published_counts(name):
    macs = count_macs(reszoo.build(name))  # at the registry's input size; building is symbolic
    assert macs == reszoo.get_config(name)["macs"]
    if name in PUBLISHED_MACS:
        assert macs == pytest.approx(PUBLISHED_MACS[name], rel=2e-3)


@pytest.mark.parametrize("name", [forward_param(name) for name in ALL_MODELS])
def test_forward_gives_finite_logits_of_the_right_shape(name):
    model = small_model(name)
    # Batch statistics: at initialisation the moving statistics are 0/1, and an untrained deep
    # net in inference mode grows its activations block by block.
    logits = model(random_images(model.input_shape[1:]), training=True)
    assert tuple(logits.shape) == (2, reszoo.get_config(name)["num_classes"])
    assert logits.dtype == "float32"
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))


@pytest.mark.parametrize("name", [forward_param(name) for name in ALL_MODELS])
def test_every_trainable_weight_gets_a_gradient(name):
    model = small_model(name)
    images = random_images(model.input_shape[1:])
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits([0, 1], logits))
    gradients = tape.gradient(loss, model.trainable_weights)
    missing = [
        w.path
        for w, g in zip(model.trainable_weights, gradients)
        if g is None or not np.any(g.numpy())
    ]
    assert not missing, f"weights without gradient: {missing[:5]}"


@pytest.mark.parametrize("name", [forward_param(name) for name in ALL_MODELS])
def test_keras_file_round_trip_gives_identical_outputs(name, tmp_path):
    """A .keras file is get_config + weights: loading it exercises from_config on every layer."""
    model = small_model(name)
    images = random_images(model.input_shape[1:], seed=1)
    expected = model(images, training=False)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_array_equal(loaded(images, training=False), expected)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", [forward_param(name) for name in ALL_MODELS])
def test_logits_stay_float32_under_mixed_precision(name, policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        model = reszoo.build(name, input_shape=small_input_shape(name))
        assert model.outputs[0].dtype == "float32"
        blocks = [layer for layer in model.layers if isinstance(layer, ResidualBlock)]
        assert blocks[0].compute_dtype == policy.split("_")[1]
        logits = model(random_images(model.input_shape[1:]), training=True)
        assert logits.dtype == "float32"
        assert np.all(np.isfinite(keras.ops.convert_to_numpy(logits)))
    finally:
        keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("name", [forward_param(name) for name in ALL_MODELS])
def test_a_free_size_build_computes_the_same_function_at_any_size(name):
    """input_shape=(None, None, 3): the same weights, the same outputs, any input size at least
    the total stride (odd sizes included), and the MACs still those of the registry's size."""
    fixed = small_model(name)
    free = reszoo.build(name, input_shape=(None, None, 3))
    assert free.input_shape == (None, None, None, 3)
    free.set_weights(fixed.get_weights())
    images = random_images(fixed.input_shape[1:], seed=2)
    np.testing.assert_array_equal(free(images, training=False), fixed(images, training=False))
    stride = total_stride(name)
    odd = random_images((stride + stride // 2 + 1, 2 * stride + 3, 3), seed=3)
    logits = keras.ops.convert_to_numpy(free(odd, training=True))
    assert logits.shape == (2, reszoo.get_config(name)["num_classes"])
    assert np.all(np.isfinite(logits))
    assert count_macs(free) == reszoo.get_config(name)["macs"]
