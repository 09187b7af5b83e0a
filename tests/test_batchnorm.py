"""FusedBatchNormalization computes what keras.layers.BatchNormalization computes, faster.

The reference is Keras's own layer with the same weights; the fused kernel must give its
outputs, gradients and moving statistics, in float32 and under mixed_bfloat16, and fall back
to it where the kernel does not apply.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import reszoo
from reszoo.batchnorm import FusedBatchNormalization

TOLERANCE = {"float32": 2e-5, "mixed_bfloat16": 2e-2}


def pair(policy, epsilon=1e-3, momentum=0.9, channels=6, **options):
    """The fused layer and Keras's layer, built with the same random weights and statistics."""
    rng = np.random.default_rng(0)
    weights = [
        rng.uniform(0.5, 1.5, channels),
        rng.normal(0, 0.5, channels),
        rng.normal(0, 0.5, channels),
        rng.uniform(0.5, 2.0, channels),
    ]
    layers = []
    for cls in (FusedBatchNormalization, keras.layers.BatchNormalization):
        layer = cls(epsilon=epsilon, momentum=momentum, dtype=policy, **options)
        layer.build((None, 5, 7, channels))
        layer.set_weights(weights)
        layers.append(layer)
    return layers


def images(policy, shape=(4, 5, 7, 6)):
    x = np.random.default_rng(1).normal(3.0, 2.0, shape).astype("float32")
    return tf.constant(x) if policy == "float32" else tf.cast(x, tf.bfloat16)


def outputs_and_gradients(layer, x, training):
    variables = [layer.gamma, layer.beta]
    upstream = tf.constant(np.random.default_rng(2).normal(size=x.shape).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.cast(layer(x, training=training), tf.float32)
        loss = tf.reduce_sum(y * upstream)
    grads = tape.gradient(loss, [x] + [v.value for v in variables])
    return [y.numpy()] + [tf.cast(g, tf.float32).numpy() for g in grads]


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("training", [True, False])
def test_outputs_gradients_and_moving_statistics_match_keras(policy, training):
    fused, reference = pair(policy)
    x = images(policy)
    ours, theirs = (outputs_and_gradients(layer, x, training) for layer in (fused, reference))
    for name, a, b in zip(["outputs", "d/dx", "d/dgamma", "d/dbeta"], ours, theirs):
        scale = max(1.0, float(np.abs(b).max()))
        np.testing.assert_allclose(a, b, atol=TOLERANCE[policy] * scale, err_msg=name)
    for a, b in zip(fused.get_weights(), reference.get_weights()):  # moving stats updated alike
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert ours[0].dtype == np.float32 and fused.compute_dtype == reference.compute_dtype


def test_training_updates_the_moving_statistics_with_the_biased_batch_variance():
    fused, _ = pair("float32", momentum=0.0)  # momentum 0: moving stats = this batch's
    x = images("float32")
    fused(x, training=True)
    values = x.numpy().reshape(-1, 6)
    np.testing.assert_allclose(fused.moving_mean.numpy(), values.mean(0), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), values.var(0), rtol=1e-4)


def test_the_fused_kernel_is_what_runs_on_tensorflow():
    fused, _ = pair("mixed_bfloat16")
    graph = (
        tf.function(lambda x: fused(x, training=True))
        .get_concrete_function(tf.TensorSpec((4, 5, 7, 6), tf.bfloat16))
        .graph
    )
    op_types = {op.type for op in graph.get_operations()}
    assert "FusedBatchNormV3" in op_types and "Mean" not in op_types


def test_bfloat16_takes_keras_path_when_a_gpu_is_visible(monkeypatch):
    """TensorFlow has no bfloat16 FusedBatchNormV3 kernel for GPUs."""
    import reszoo.batchnorm

    monkeypatch.setattr(reszoo.batchnorm, "gpu_visible", lambda: True)
    for policy, fused_expected in (("mixed_bfloat16", False), ("float32", True)):
        fused, _ = pair(policy)
        dtype = tf.bfloat16 if policy == "mixed_bfloat16" else tf.float32
        graph = (
            tf.function(lambda x, fused=fused: fused(x, training=True))
            .get_concrete_function(tf.TensorSpec((4, 5, 7, 6), dtype))
            .graph
        )
        op_types = {op.type for op in graph.get_operations()}
        assert ("FusedBatchNormV3" in op_types) == fused_expected, policy


def test_epsilon_below_the_kernel_minimum_changes_outputs_by_under_5e_4_relative():
    fused, reference = pair("float32", epsilon=1e-5)
    for layer in (fused, reference):
        layer.moving_variance.assign(np.full(6, 1e-6, "float32"))  # where epsilon matters most
    x = images("float32")
    a, b = (np.asarray(layer(x, training=False)) for layer in (fused, reference))
    np.testing.assert_allclose(a, b, rtol=5e-4, atol=1e-3)


@pytest.mark.parametrize(
    "options, shape",
    [({"axis": 1}, (4, 6, 5, 7)), ({}, (4, 6)), ({"center": False, "scale": False}, (4, 5, 7, 6))],
)
def test_settings_the_kernel_does_not_cover_match_keras(options, shape):
    layers = [
        cls(dtype="float32", **options)
        for cls in (FusedBatchNormalization, keras.layers.BatchNormalization)
    ]
    x = images("float32", shape)
    for layer in layers:
        layer.build(shape)
    layers[0].set_weights(layers[1].get_weights())
    a, b = (np.asarray(layer(x, training=True)) for layer in layers)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_models_save_and_reload_with_the_layer_and_its_weights(tmp_path):
    model = reszoo.build("smallresnet")
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    model(x, training=True)  # move the statistics off 0/1
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert any(isinstance(layer, FusedBatchNormalization) for layer in loaded._flatten_layers())
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)
