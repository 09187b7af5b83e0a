"""Weights from files: keras.applications (legacy .h5 and Keras 3 .weights.h5), reszoo's own
.weights.h5, the keras.applications download path, and transfer learning from each."""

import hashlib

import keras
import numpy as np
import pytest
from weights_fixtures import keras_cache, register_with_tag, tag_entry, test_models

import reszoo

__all__ = ["keras_cache", "test_models"]  # fixtures used by name below

APPLICATIONS = [
    ("resnet50_v1", "ResNet50", keras.applications.resnet.preprocess_input),
    ("resnet101_v1", "ResNet101", keras.applications.resnet.preprocess_input),
    ("resnet152_v1", "ResNet152", keras.applications.resnet.preprocess_input),
    ("resnet50_v2", "ResNet50V2", keras.applications.resnet_v2.preprocess_input),
]


def randomized_application(builder_name, include_top=True, seed=0, input_shape=None):
    """A keras.applications ResNet with random weights, BN statistics included (not just 0/1)."""
    model = getattr(keras.applications, builder_name)(
        weights=None, include_top=include_top, classifier_activation=None, input_shape=input_shape
    )
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights(
                [
                    rng.uniform(0.5, 1.5, gamma.shape),
                    rng.normal(0, 0.1, beta.shape),
                    rng.normal(0, 0.1, mean.shape),
                    rng.uniform(0.5, 2, variance.shape),
                ]
            )
    return model


def pixels(size=224, count=2, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


def close(ours, expected) -> bool:
    ours, expected = np.asarray(ours), np.asarray(expected)
    return np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()


@pytest.mark.parametrize(
    "name, builder_name, preprocess", APPLICATIONS, ids=[a[0] for a in APPLICATIONS]
)
def test_converted_keras_applications_weights_compute_the_same_function(
    name, builder_name, preprocess, tmp_path
):
    source = randomized_application(builder_name)
    path = tmp_path / f"{builder_name}.h5"
    source.save(path)  # legacy HDF5 full model, the format of Keras's official weight files
    model = reszoo.build(name, weights=str(path))
    images = pixels()
    expected = source(preprocess(images.copy()), training=False)
    assert close(model(images, training=False), expected)


def backbone_of(source: keras.Model, pooling_layer="avg_pool") -> keras.Model:
    return keras.Model(source.input, source.get_layer(pooling_layer).output)


def test_full_model_h5_gives_backbone_to_a_new_head_and_to_no_top(tmp_path):
    source = randomized_application("ResNet50")
    path = tmp_path / "resnet50_full.h5"
    source.save(path)
    images = pixels(160)
    features = backbone_of(randomized_application("ResNet50", input_shape=(160, 160, 3)))
    features.set_weights(backbone_of(source).get_weights())
    expected = features(keras.applications.resnet.preprocess_input(images.copy()))
    notop = reszoo.build(
        "resnet50_v1",
        weights=str(path),
        include_top=False,
        pooling="avg",
        input_shape=(160, 160, 3),
    )
    assert close(notop(images, training=False), expected)
    ten = reszoo.build("resnet50_v1", weights=str(path), num_classes=10)
    assert ten.get_layer("logits").kernel.shape == (2048, 10)
    for ours, theirs in zip(
        ten.get_layer("stage4_block3").weights, notop.get_layer("stage4_block3").weights
    ):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


def test_keras3_weights_file_saved_from_keras_applications_loads(tmp_path):
    source = randomized_application("ResNet50V2", seed=4)
    path = tmp_path / "resnet50v2.weights.h5"
    source.save_weights(path)
    images = pixels()
    expected = source(keras.applications.resnet_v2.preprocess_input(images.copy()), training=False)
    assert close(reszoo.build("resnet50_v2", weights=str(path))(images, training=False), expected)
    headless = reszoo.build("resnet50_v2", weights=str(path), num_classes=5)
    assert headless.get_layer("logits").kernel.shape == (2048, 5)


def test_reszoo_weights_file_round_trips_and_transfers(tmp_path):
    model = reszoo.build("resnet20")
    path = tmp_path / "resnet20.weights.h5"
    model.save_weights(path)
    loaded = reszoo.build("resnet20", weights=str(path))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    hundred = reszoo.build("resnet20", weights=str(path), num_classes=100)
    np.testing.assert_array_equal(
        hundred.get_layer("stage3_block3").get_weights()[0],
        model.get_layer("stage3_block3").get_weights()[0],
    )
    assert hundred.get_layer("logits").kernel.shape == (64, 100)
    notop = reszoo.build("resnet20", weights=str(path), include_top=False, pooling="max")
    assert notop.output.shape == (None, 64)


def test_keras_applications_download_path_with_a_local_file_standing_in(
    tmp_path, keras_cache, test_models
):
    """A keras-applications-h5 tag goes through keras.utils.get_file (md5-checked) into the
    cache; after the served file is gone, the cache serves the next build."""
    source = randomized_application("ResNet50", include_top=False, seed=3)
    served = tmp_path / "served" / "notop.h5"
    served.parent.mkdir()
    source.save(served)
    digest = hashlib.md5(served.read_bytes()).hexdigest()
    tag = tag_entry("resnet50_v1", served.as_uri(), "resnet50_test_notop.h5", role="notop")
    tag["files"]["notop"]["md5"] = digest
    tag["files"]["top"] = {"url": served.as_uri(), "file_name": "unused_top.h5", "sha256": None}
    register_with_tag(test_models, "resnet50_v1_local", "resnet50_v1", tag)
    images = pixels(64, count=1)
    expected = source(keras.applications.resnet.preprocess_input(images.copy()), training=False)
    for _ in range(2):
        model = reszoo.build(
            "resnet50_v1_local", weights="imagenet", include_top=False, input_shape=(64, 64, 3)
        )
        assert close(model(images, training=False), expected)
        assert (keras_cache / "resnet50_test_notop.h5").is_file()
        served.unlink(missing_ok=True)  # the "network" is gone: the cache must serve
