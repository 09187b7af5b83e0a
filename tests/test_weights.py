"""Weights: keras.applications files convert exactly; the download path works from a local file."""

import hashlib
import json

import keras
import numpy as np
import pytest
from conftest import run_python

import reszoo

APPLICATIONS = [
    ("resnet50_v1", "ResNet50", keras.applications.resnet.preprocess_input),
    ("resnet101_v1", "ResNet101", keras.applications.resnet.preprocess_input),
    ("resnet152_v1", "ResNet152", keras.applications.resnet.preprocess_input),
    ("resnet50_v2", "ResNet50V2", keras.applications.resnet_v2.preprocess_input),
]


def randomized_application(builder_name, include_top=True, seed=0):
    """A keras.applications ResNet with random weights, BN statistics included (not just 0/1)."""
    model = getattr(keras.applications, builder_name)(
        weights=None, include_top=include_top, classifier_activation=None
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


@pytest.mark.parametrize(
    "name, builder_name, preprocess", APPLICATIONS, ids=[a[0] for a in APPLICATIONS]
)
def test_converted_keras_applications_weights_compute_the_same_function(
    name, builder_name, preprocess, tmp_path
):
    source = randomized_application(builder_name)
    path = tmp_path / f"{builder_name}.h5"
    source.save(path)  # legacy HDF5, the format of Keras's official weight files
    model = reszoo.build(name, weights=str(path))
    images = np.random.default_rng(1).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    expected = keras.ops.convert_to_numpy(source(preprocess(images.copy()), training=False))
    ours = keras.ops.convert_to_numpy(model(images, training=False))
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()


def test_reszoo_weights_file_round_trips(tmp_path):
    model = reszoo.build("resnet20")
    path = tmp_path / "resnet20.weights.h5"
    model.save_weights(path)
    loaded = reszoo.build("resnet20", weights=str(path))
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_applications_file_into_a_model_without_that_layout_is_refused(tmp_path):
    source = keras.applications.ResNet50(weights=None, include_top=False)
    path = tmp_path / "notop.h5"
    source.save(path)
    with pytest.raises(reszoo.ConfigError, match="no keras.applications layout"):
        reszoo.build("resnet50", weights=str(path))


def test_missing_weights_file_or_tag_is_a_clear_error():
    with pytest.raises(reszoo.ConfigError, match="neither a weight tag.*'imagenet'"):
        reszoo.build("resnet50_v1", weights="/no/such/file.h5")
    with pytest.raises(reszoo.ConfigError, match="1000-class"):
        reszoo.build("resnet50_v1", weights="imagenet", num_classes=10)


def test_imagenet_download_path_with_a_local_file_standing_in(tmp_path):
    """weights="imagenet" goes through keras.utils.get_file (hash-checked, cached in KERAS_HOME).

    A model registered with a file:// URL stands in for Keras's storage bucket; the first build
    downloads into the cache, the second (after the source is deleted) reads the cache.
    """
    source = randomized_application("ResNet50", include_top=False, seed=3)
    served = tmp_path / "served" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    served.parent.mkdir()
    source.save(served)
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    spec = {
        "url": f"file://{served}",
        "notop_url": f"file://{served}",
        "notop_file_hash": digest,
        "layout": "keras.applications.ResNet50",
    }
    images = np.random.default_rng(2).uniform(0, 255, (1, 64, 64, 3)).astype("float32")
    np.save(tmp_path / "images.npy", images)
    expected = keras.ops.convert_to_numpy(
        source(keras.applications.resnet.preprocess_input(images.copy()), training=False)
    )
    np.save(tmp_path / "expected.npy", expected)
    code = f"""
import json, os, pathlib, numpy as np, reszoo
reszoo.register_model("resnet50_local", {{"extends": "resnet50_v1",
                      "weights": {{"imagenet": {json.dumps(spec)}}}}})
model = reszoo.build("resnet50_local", weights="imagenet", include_top=False,
                     input_shape=(64, 64, 3))
out = model(np.load({str(tmp_path / "images.npy")!r}), training=False)
assert np.abs(np.asarray(out) - np.load({str(tmp_path / "expected.npy")!r})).max() < 1e-3
cached = pathlib.Path(os.environ["KERAS_HOME"], "models", {served.name!r})
assert cached.is_file()
pathlib.Path({str(served)!r}).unlink()          # the "network" is gone: the cache must serve
reszoo.build("resnet50_local", weights="imagenet", include_top=False, input_shape=(64, 64, 3))
print("ok")
"""
    result = run_python(code, env={"KERAS_HOME": str(tmp_path / "keras_home")})
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_a_corrupted_download_fails_its_hash_check_with_a_clear_message(tmp_path):
    served = tmp_path / "weights.h5"
    served.write_bytes(b"not the real file")
    spec = {
        "url": f"file://{served}",
        "file_hash": "0" * 64,
        "layout": "keras.applications.ResNet50",
    }
    code = f"""
import reszoo
reszoo.register_model("resnet50_bad", {{"extends": "resnet50_v1",
                      "weights": {{"imagenet": {json.dumps(spec)}}}}})
try:
    reszoo.build("resnet50_bad", weights="imagenet")
except reszoo.ConfigError as error:
    print("refused:", error)
"""
    result = run_python(code, env={"KERAS_HOME": str(tmp_path / "keras_home")})
    assert "refused: could not get weights.h5" in result.stdout, result.stderr[-3000:]
