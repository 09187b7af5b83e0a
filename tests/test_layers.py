"""The layers themselves: config round trips, padding, shortcuts, stochastic depth, new blocks."""

import inspect

import keras
import numpy as np
import pytest
from conftest import REPO

import reszoo
from reszoo import layers as L
from reszoo.registry import Registry

LAYER_EXAMPLES = [
    L.PixelNormalization("caffe"),
    L.PaddedConv2D(8, 3, strides=2, use_bias=False),
    L.Stem("deep", 16, use_bias=True, normalize=False, bn_epsilon=1e-3, bn_momentum=0.8),
    L.Shortcut("D", 16, strides=2, normalize=True, use_bias=False),
    L.SqueezeExcite(0.25, divisor=4),
    L.DropPath(0.2, seed=3),
    L.BasicBlock(8, 2, preact=True, shortcut="A", dropout=0.1, drop_path=0.1),
    L.BottleneckBlock(
        8,
        2,
        stride_on="1x1",
        conv_bias=True,
        groups=2,
        base_width=32,
        se_ratio=0.25,
        bn_epsilon=1e-3,
        bn_momentum=0.5,
    ),
]


@pytest.mark.parametrize("layer", LAYER_EXAMPLES, ids=lambda layer: type(layer).__name__)
def test_constructor_arguments_are_public_attributes_in_get_config(layer):
    config = layer.get_config()
    arguments = [
        name
        for name in inspect.signature(type(layer).__init__).parameters
        if name not in ("self", "kwargs")
    ]
    for name in arguments:
        assert name in config, name
        assert getattr(layer, name) == config[name], name
    clone = type(layer).from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize("layer", LAYER_EXAMPLES, ids=lambda layer: type(layer).__name__)
def test_layers_are_registered_serializable_in_the_reszoo_package(layer):
    name = keras.saving.get_registered_name(type(layer))
    assert name == f"reszoo>{type(layer).__name__}"


def test_bad_constructor_values_are_echoed():
    with pytest.raises(ValueError, match="Received: filters=0"):
        L.BasicBlock(0)
    with pytest.raises(ValueError, match="Received: kind='Z'"):
        L.Shortcut("Z", 8)
    with pytest.raises(ValueError, match="groups.*divide"):
        L.BasicBlock(8, groups=3)


@pytest.mark.parametrize("size, out", [(9, 5), (8, 4)])
def test_strided_conv_pads_every_side_like_pytorch(size, out):
    """torch.nn.functional.conv2d(stride=2, padding=1) outputs, pinned in
    tests/data/torch_reference/strided_conv.npz by tests/torch_reference/make_fixtures.py; at
    8 px Keras's own "same" padding (bottom/right only) would differ."""
    case = np.load(REPO / "tests" / "data" / "torch_reference" / "strided_conv.npz")
    image = case[f"image/{size}"]
    conv = L.PaddedConv2D(3, 3, strides=2, use_bias=False)
    conv.build(image.shape)
    conv.kernel.assign(case["kernel_oihw"].transpose(2, 3, 1, 0))  # -> (kh, kw, in, out)
    ours = keras.ops.convert_to_numpy(conv(image))
    np.testing.assert_allclose(ours, case[f"output/{size}"], atol=1e-5)
    assert ours.shape == (1, out, out, 3)


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    x = np.arange(2 * 4 * 4 * 2, dtype="float32").reshape(2, 4, 4, 2)
    layer = L.Shortcut("A", 6, strides=2)
    out = keras.ops.convert_to_numpy(layer(x))
    assert out.shape == (2, 2, 2, 6)
    np.testing.assert_array_equal(out[..., 2:4], x[:, ::2, ::2, :])
    assert not out[..., :2].any() and not out[..., 4:].any()
    assert layer.count_params() == 0


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("size, channels, filters", [(5, 2, 5), (8, 3, 3), (7, 4, 9)])
def test_option_a_shortcut_is_exact_for_odd_sizes_odd_padding_and_bfloat16(
    size, channels, filters, dtype
):
    rng = np.random.default_rng(size)
    x = rng.normal(0, 100, (3, size, size, channels)).astype("float32")
    first = (filters - channels) // 2
    expected = np.zeros((3, (size + 1) // 2, (size + 1) // 2, filters), "float32")
    expected[..., first : first + channels] = x[:, ::2, ::2, :]
    cast = keras.ops.cast(x, dtype)
    out = keras.ops.convert_to_numpy(
        keras.ops.cast(L.Shortcut("A", filters, strides=2)(cast), "float32")
    )
    rounded = keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.cast(expected, dtype), "float32"))
    np.testing.assert_array_equal(out, rounded)


def test_option_a_shortcut_passes_gradients_to_the_subsampled_pixels_only():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(2, 4, 4, 2)).astype("float32"))
    weights = np.random.default_rng(1).normal(size=(2, 2, 2, 4)).astype("float32")
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(L.Shortcut("A", 4, strides=2)(x) * weights)
    expected = np.zeros((2, 4, 4, 2), "float32")
    expected[:, ::2, ::2, :] = weights[..., 1:3]
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), expected)


def test_option_a_shortcut_cannot_narrow_and_says_to_use_b():
    with pytest.raises(ValueError, match="at least the input's 8 channels.*kind 'B'"):
        L.Shortcut("A", 4, strides=2)(np.zeros((1, 4, 4, 8), "float32"))


def test_shortcut_d_average_pools_before_projecting():
    x = np.ones((1, 4, 4, 2), dtype="float32")
    layer = L.Shortcut("D", 3, strides=2, normalize=False)
    out = layer(x)
    assert out.shape == (1, 2, 2, 3)
    assert layer.conv.strides == (1, 1)  # the pool strides, the 1x1 conv does not


def test_drop_path_drops_whole_samples_in_training_only():
    layer = L.DropPath(0.5, seed=1)
    x = np.ones((64, 2, 2, 3), dtype="float32")
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = out.reshape(64, -1)
    assert set(np.unique(per_sample)) <= {0.0, 2.0}
    assert np.all(per_sample.min(axis=1) == per_sample.max(axis=1))  # whole sample or nothing
    assert 10 < (per_sample[:, 0] == 0).sum() < 54
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)


def test_stochastic_depth_rates_rise_linearly_over_the_blocks():
    model = reszoo.build("resnet20", stochastic_depth=0.2)
    rates = [layer.drop_path for layer in model.layers if isinstance(layer, L.ResidualBlock)]
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(0.2)
    assert np.all(np.diff(rates) > 0)


def test_v2_layout_downsamples_at_the_last_block_and_subsamples_the_shortcut():
    model = reszoo.build("resnet50_v2", input_shape=(64, 64, 3))
    stage1 = [model.get_layer(f"stage1_block{i}") for i in (1, 2, 3)]
    assert [block.strides for block in stage1] == [1, 1, 2]
    assert stage1[0].shortcut_layer.kind == "B" and stage1[0].shortcut_layer.norm is None
    assert stage1[2].shortcut_layer.kind == "A"


def test_bottleneck_stride_position_follows_stride_on():
    v15 = L.BottleneckBlock(8, 2, stride_on="3x3")
    v1 = L.BottleneckBlock(8, 2, stride_on="1x1")
    assert [conv.strides for conv in v15.convs] == [(1, 1), (2, 2), (1, 1)]
    assert [conv.strides for conv in v1.convs] == [(2, 2), (1, 1), (1, 1)]


def test_a_registered_block_type_is_usable_from_an_entry():
    class DoubleConv(L.ResidualBlock):
        """A test block: three 3x3 convs."""

        expansion = 2

        def branch_spec(self):
            return [
                (self.filters, 3, self.strides, 1),
                (self.filters, 3, 1, 1),
                (self.filters * 2, 3, 1, 1),
            ]

    registry = Registry()
    registry.register_block("triple", DoubleConv, source="test")
    config = registry.register_model(
        "triple_net",
        {
            "family": "test",
            "block": "triple",
            "depths": [1, 1],
            "widths": [4, 8],
            "strides": [1, 2],
            "stem": "cifar",
            "stem_width": 4,
            "input_shape": [16, 16, 3],
            "num_classes": 3,
        },
        source="test",
    )
    from reszoo.models import build_model

    model = build_model(config, registry.block("triple"))
    assert model.get_layer("stage2_block1").convs[2].filters == 16
    assert model(np.zeros((1, 16, 16, 3), "float32")).shape == (1, 3)


def test_register_block_rejects_non_layers_and_missing_expansion():
    registry = Registry()
    with pytest.raises(reszoo.ConfigError, match="not a keras.layers.Layer"):
        registry.register_block("x", dict)

    class NoExpansion(keras.layers.Layer):
        expansion = 0

    with pytest.raises(reszoo.ConfigError, match="expansion"):
        registry.register_block("x", NoExpansion)
    with pytest.raises(reszoo.DuplicateRegistrationError, match="reszoo built-in"):
        registry.register_block("basic", L.BottleneckBlock, source="test")


# ----------------------------------------------------------------------------- plain blocks


def branch_by_hand(block, x, training=False):
    """conv-BN(-ReLU) ... conv-BN through the block's own sublayers, composed here."""
    y = x
    for index, (conv, norm) in enumerate(zip(block.convs, block.norms)):
        y = conv(y)
        if norm is not None:
            y = norm(y, training=training)
        if index < len(block.convs) - 1:
            y = keras.ops.relu(y)
    return keras.ops.convert_to_numpy(y)


@pytest.mark.parametrize("block_class", [L.BasicBlock, L.BottleneckBlock])
@pytest.mark.parametrize("strides", [1, 2])
def test_a_plain_block_is_its_branch_then_relu(block_class, strides):
    # stride 1: as wide as the block's output (an identity path when residual); stride 2: wider
    in_channels = 8 * block_class.expansion if strides == 1 else 4
    x = np.random.default_rng(0).normal(size=(2, 8, 8, in_channels)).astype("float32")
    block = block_class(8, strides, shortcut="none")
    out = keras.ops.convert_to_numpy(block(x))
    assert block.shortcut_layer is None
    np.testing.assert_allclose(out, np.maximum(branch_by_hand(block, x), 0), rtol=1e-6)
    residual = block_class(8, strides, shortcut="A")
    residual(x)
    assert block.count_params() == residual.count_params()  # option A has no parameters


def test_a_preactivation_plain_block_adds_nothing():
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 8)).astype("float32")
    block = L.BasicBlock(8, 1, preact=True, shortcut="none")
    out = keras.ops.convert_to_numpy(block(x))
    activated = keras.ops.relu(block.preact_norm(x, training=False))
    np.testing.assert_allclose(out, branch_by_hand(block, activated), rtol=1e-6)


def test_plain_nets_have_no_shortcut_layers_and_the_resnet_s_shapes():
    plain, residual = reszoo.build("plain20"), reszoo.build("resnet20")
    plain_blocks = [layer for layer in plain.layers if isinstance(layer, L.ResidualBlock)]
    assert all(block.shortcut_layer is None for block in plain_blocks)
    assert [(layer.name, layer.output.shape) for layer in plain.layers] == [
        (layer.name, layer.output.shape) for layer in residual.layers
    ]


# ----------------------------------------------------------------------------- block options


def test_every_block_option_is_a_public_attribute_in_get_config_and_round_trips():
    for block_class in (L.BasicBlock, L.BottleneckBlock):
        defaults = block_class(8)
        for name, option in block_class.OPTIONS.items():
            assert defaults.get_config()[name] == option.default
        changed = {name: not option.default for name, option in block_class.OPTIONS.items()}
        block = block_class(8, **changed)
        config = block.get_config()
        for name, value in changed.items():
            assert getattr(block, name) == value and config[name] == value
        assert block_class.from_config(config).get_config() == config


def test_a_config_saved_before_block_options_existed_loads_with_their_defaults():
    config = L.BottleneckBlock(8, 2).get_config()
    for name in L.BottleneckBlock.OPTIONS:
        del config[name]
    block = L.BottleneckBlock.from_config(config)
    assert block.zero_init_last is False


def test_zero_init_last_starts_every_post_activation_block_as_the_identity():
    """Goyal et al. 2017: the last BN's gamma at zero, so an identity block outputs relu(x)."""
    x = np.random.default_rng(2).uniform(0, 3, size=(2, 8, 8, 32)).astype("float32")
    for block in (L.BasicBlock(32, zero_init_last=True), L.BottleneckBlock(8, zero_init_last=True)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(block(x)), x)
        assert not keras.ops.convert_to_numpy(block.norms[-1].gamma).any()
        assert keras.ops.convert_to_numpy(block.norms[0].gamma).all()


def test_zero_init_last_zeroes_the_last_conv_of_a_preactivation_block():
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 32)).astype("float32")
    block = L.BottleneckBlock(8, preact=True, zero_init_last=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(block(x)), x)
    assert not keras.ops.convert_to_numpy(block.convs[-1].kernel).any()


def test_zero_init_last_through_block_args_and_off_by_default():
    default = reszoo.build("resnet20")
    zeroed = reszoo.build("resnet20", block_args={"zero_init_last": True})
    for model, expect_zero in ((default, False), (zeroed, True)):
        blocks = [layer for layer in model.layers if isinstance(layer, L.ResidualBlock)]
        gammas = [keras.ops.convert_to_numpy(block.bn2.gamma) for block in blocks]
        assert all((not g.any()) if expect_zero else g.all() for g in gammas)
    assert reszoo.zoo.resolve_config(
        "resnet20", block_args={"zero_init_last": True}
    ).block_args == {"zero_init_last": True}


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        (dict(block_args={"zero_init_lst": True}), "block_args", "options are: zero_init_last"),
        (dict(block_args={"zero_init_last": "yes"}), "block_args", "true or false"),
        (dict(block_args={"groups": 2}), "block_args", "config field"),
        (dict(block_args=["zero_init_last"]), "block_args", "object"),
        (dict(shortcut="none", block_args={"zero_init_last": True}), "block_args", "outputs zeros"),
        (dict(shortcut="none", stochastic_depth=0.1), "stochastic_depth", "plain block"),
        (dict(shortcut="E"), "shortcut", "'none'"),
    ],
)
def test_bad_block_options_are_config_errors_naming_the_field(overrides, field, message):
    with pytest.raises(reszoo.ConfigError, match=f"'{field}'.*{message}"):
        reszoo.build("resnet20", **overrides)


def test_the_block_class_answers_its_geometry_without_building():
    """torchvision's ResNeXt-50 32x4d first stage: inner width int(64 * 4 / 64) * 32 = 128,
    the stride on the grouped 3x3 ("v1.5") or on the first 1x1 (Caffe layout)."""
    arguments = dict(filters=64, strides=2, groups=32, base_width=4)
    spec = L.BottleneckBlock.check_arguments(arguments)
    assert [conv.filters for conv in spec] == [128, 128, 256]
    assert [conv.strides for conv in spec] == [1, 2, 1]
    assert [conv.groups for conv in spec] == [1, 32, 1]
    spec = L.BottleneckBlock.check_arguments({**arguments, "stride_on": "1x1"})
    assert [conv.strides for conv in spec] == [2, 1, 1]
    with pytest.raises(L.LayerArgumentError, match="groups.*divide.*inner width 64") as error:
        L.BasicBlock.check_arguments({"filters": 64, "groups": 3})
    assert error.value.argument == "groups"
    with pytest.raises(L.LayerArgumentError, match="base_width.*0 filters") as error:
        L.BottleneckBlock.check_arguments({"filters": 16, "base_width": 2})
    assert error.value.argument == "base_width"


def test_a_plugin_grouped_block_gets_checked_when_its_entry_registers():
    class GroupedPair(L.ResidualBlock):
        """A plugin block: two grouped 3x3 convs, twice the stage width inside."""

        expansion = 1

        def branch_spec(self):
            return [
                (self.filters * 2, 3, self.strides, self.groups),
                (self.filters, 3, 1, self.groups),
            ]

    registry = Registry()
    registry.register_block("grouped_pair", GroupedPair, source="test")
    entry = {
        "family": "test",
        "block": "grouped_pair",
        "depths": [1, 1],
        "widths": [6, 12],
        "strides": [1, 2],
        "stem": "cifar",
        "stem_width": 6,
        "input_shape": [16, 16, 3],
        "num_classes": 3,
    }
    before = registry.names()
    with pytest.raises(reszoo.ConfigError, match="'bad_pair'.*field 'groups'.*inner width 6"):
        registry.register_model("bad_pair", {**entry, "groups": 4}, source="test")
    assert registry.names() == before
    assert registry.register_model("good_pair", {**entry, "groups": 3}, source="test").groups == 3


def test_choice_lists_are_the_ones_layers_implement():
    from reszoo import choices

    for kind in choices.STEMS:
        assert L.Stem(kind, 8).stride == choices.STEM_STRIDES[kind]
    for mode in choices.PREPROCESSING_MODES:
        L.PixelNormalization(mode)
    for kind in choices.SHORTCUT_KINDS:
        L.Shortcut(kind, 8)
    for shortcut in choices.SHORTCUTS:
        for position in choices.STRIDE_POSITIONS:
            L.BottleneckBlock(4, 2, shortcut=shortcut, stride_on=position)
    with pytest.raises(reszoo.ConfigError, match="must be one of 'imagenet', 'deep', 'cifar'"):
        L.Stem("nope", 8)
    with pytest.raises(reszoo.ConfigError, match="must be one of 'torch'"):
        L.PixelNormalization("nope")
    with pytest.raises(reszoo.ConfigError, match="must be one of 'A', 'B', 'D'. Received"):
        L.Shortcut("none", 8)
