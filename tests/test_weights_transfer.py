"""Transfer learning: a pretrained backbone under a new head, in feature extractors, and frozen
stages that really stay frozen through training (weights and BatchNorm statistics).

The backbones are timm-layout references whose features tests/torch_reference/make_fixtures.py
pinned in tests/data/torch_reference/ (weights drawn again here with NumPy, no PyTorch).
"""

import keras
import numpy as np
import pytest
from pinned_reference import load_case
from safetensors.numpy import save_file
from weights_fixtures import keras_cache

import reszoo
from reszoo.batchnorm import FusedBatchNormalization
from reszoo.models import count_trainable_params
from reszoo.weights import freeze_backbone, load_weights, unfreeze
from reszoo.weights.download import cache_dir
from reszoo.zoo import resolve_config

__all__ = ["keras_cache"]  # fixture used by name below


def test_a_tag_gives_its_backbone_to_a_new_head_and_to_any_pooling_and_size(keras_cache):
    case = load_case("timm_resnet18_features")  # resnet18, layer4's output at 96 px
    state = case.state_dict()
    target = cache_dir() / "resnet18.tv_in1k.safetensors"
    target.parent.mkdir(parents=True)
    save_file(state, str(target))
    images, features = case.images(96), case.output(96)
    for pooling, reduce in (("avg", np.mean), ("max", np.max)):
        model = reszoo.build(
            "resnet18",
            weights="tv_in1k",
            include_top=False,
            pooling=pooling,
            input_shape=(96, 96, 3),
        )
        expected = reduce(features, axis=(1, 2))
        ours = np.asarray(model(images, training=False))
        assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()
    ten = reszoo.build("resnet18", weights="tv_in1k", num_classes=10)
    assert ten.get_layer("logits").kernel.shape == (512, 10)
    np.testing.assert_array_equal(
        np.asarray(ten.get_layer("stage4_block2").weights[0]),
        state["layer4.1.conv1.weight"].transpose(2, 3, 1, 0),
    )


def test_a_model_made_of_a_subset_of_the_layers_takes_the_backbone(tmp_path):
    """A feature extractor (the network cut after stage 2) loads what it has and leaves the
    later stages' and the classifier's tensors unused."""
    case = load_case("timm_resnet50_stage2")  # resnet50 [1, 2, 1, 1], layer2's output at 64 px
    path = tmp_path / "resnet50_small.safetensors"
    save_file(case.state_dict(), str(path))
    config = resolve_config("resnet50", depths=[1, 2, 1, 1], input_shape=[64, 64, 3])
    full = reszoo.build("resnet50", depths=[1, 2, 1, 1], input_shape=(64, 64, 3))
    features = keras.Model(full.input, full.get_layer("stage2_block2").output)
    load_weights(features, config, str(path))
    expected = case.output(64)
    ours = np.asarray(features(case.images(64), training=False))
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()


def snapshot(model, layer_names):
    return {
        w.path: np.asarray(w).copy() for name in layer_names for w in model.get_layer(name).weights
    }


def test_frozen_stages_keep_weights_and_batchnorm_statistics_through_training():
    model = reszoo.build("resnet20")
    frozen = freeze_backbone(model, up_to="stage2")
    assert frozen[0] == "stem" and frozen[-1] == "stage2_block3"
    trained = ["stage3_block1", "stage3_block3", "logits"]
    before_frozen, before_trained = snapshot(model, frozen), snapshot(model, trained)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (64, 32, 32, 3)).astype("float32")
    y = rng.normal(size=(64, 10)).astype("float32")
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    after_frozen, after_trained = snapshot(model, frozen), snapshot(model, trained)
    assert all(np.array_equal(before_frozen[k], after_frozen[k]) for k in before_frozen)
    for key in before_trained:  # kernels and the BN moving statistics of stage 3 did move
        if "kernel" in key or "moving_mean" in key:
            assert not np.array_equal(before_trained[key], after_trained[key]), key
    momentums = [v for v in model.optimizer.variables if "momentum" in v.path]
    assert len(momentums) == len(model.trainable_weights) < len(model.weights)
    assert all(
        not w.path.startswith(("stem/", "stage1", "stage2")) for w in model.trainable_weights
    )


def test_freezing_the_whole_backbone_leaves_the_head_and_unfreeze_restores_all():
    model = reszoo.build("resnet20")
    everything = count_trainable_params(model)
    freeze_backbone(model)
    assert [w.path for w in model.trainable_weights] == ["logits/kernel", "logits/bias"]
    unfreeze(model)
    assert count_trainable_params(model) == everything
    with pytest.raises(reszoo.ConfigError, match="stem, stage1, stage2, stage3"):
        freeze_backbone(model, up_to="stage7")


def test_a_non_trainable_fused_batchnorm_runs_in_inference_mode_in_training():
    layer = FusedBatchNormalization(epsilon=1e-3)
    x = np.random.default_rng(0).normal(3.0, 2.0, (4, 5, 5, 8)).astype("float32")
    layer.build(x.shape)
    layer.moving_mean.assign(np.full(8, 0.5, "float32"))
    layer.moving_variance.assign(np.full(8, 4.0, "float32"))
    layer.trainable = False
    inference = np.asarray(layer(x, training=False))
    training = np.asarray(layer(x, training=True))
    np.testing.assert_allclose(training, inference, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(inference, (x - 0.5) / np.sqrt(4.0 + 1e-3), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(layer.moving_mean), np.full(8, 0.5, "float32"))
