"""Bad weights input: one clear reszoo error each, and the model or cache left as it should be.

The files are timm-layout state dicts drawn again with NumPy from the cases that
tests/torch_reference/make_fixtures.py pinned in tests/data/torch_reference/ (no PyTorch here).
"""

import hashlib

import keras
import numpy as np
import pytest
from pinned_reference import load_case
from safetensors.numpy import save_file
from weights_fixtures import keras_cache, register_with_tag, tag_entry, test_models

import reszoo
from reszoo.weights import load_weights
from reszoo.zoo import resolve_config

__all__ = ["keras_cache", "test_models"]  # fixtures used by name below
SMALL = [1, 1, 1, 1]


def saved_reference(tmp_path, case_name="timm_resnet18_small"):
    """A reference case's state dict written as safetensors; returns the case and the path."""
    case = load_case(case_name)
    path = tmp_path / f"{case_name}.safetensors"
    save_file(case.state_dict(), str(path))
    return case, path


def weights_of(model):
    return [np.asarray(w).copy() for w in model.weights]


def assert_unchanged(model, before):
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(before, model.weights))


def test_a_file_of_another_architecture_names_the_first_tensor_and_changes_nothing(tmp_path):
    _, path = saved_reference(tmp_path)  # resnet18 at depths SMALL
    model = reszoo.build("resnet50", depths=SMALL, input_shape=(64, 64, 3))
    before = weights_of(model)
    with pytest.raises(reszoo.ConfigError, match=r"'layer1\.0\.conv1\.weight' has shape"):
        load_weights(model, resolve_config("resnet50", depths=SMALL), str(path))
    assert_unchanged(model, before)


def test_a_tensor_without_a_place_is_refused(tmp_path):
    state = load_case("timm_resnet18_small").state_dict()
    state["head.weight"] = np.zeros((1, 1, 1, 1), "float32")
    path = tmp_path / "extra.safetensors"
    save_file(state, str(path))
    with pytest.raises(reszoo.ConfigError, match=r"'head\.weight' has no place"):
        reszoo.build("resnet18", depths=SMALL, weights=str(path))


def test_class_count_must_match_unless_num_classes_is_given(tmp_path):
    case, path = saved_reference(tmp_path, "timm_resnet18_small_10_classes")
    with pytest.raises(reszoo.ConfigError, match="10-class classifier.*num_classes=10"):
        reszoo.build("resnet18", depths=SMALL, weights=str(path))
    model = reszoo.build(
        "resnet18", depths=SMALL, weights=str(path), num_classes=10, input_shape=(64, 64, 3)
    )
    expected = case.output(64)
    ours = np.asarray(model(case.images(64), training=False))
    assert np.abs(ours - expected).max() <= 1e-4 * np.abs(expected).max()
    fresh = reszoo.build("resnet18", depths=SMALL, weights=str(path), num_classes=3)
    assert fresh.get_layer("logits").kernel.shape == (512, 3)


def test_tag_weights_refuse_an_overridden_architecture_before_downloading(keras_cache):
    with pytest.raises(reszoo.ConfigError, match=r"overrides depths=\[1, 1, 1, 1\]"):
        reszoo.build("resnet50", weights="tv_in1k", depths=SMALL)
    with pytest.raises(reszoo.ConfigError, match="expect preprocessing 'torch'"):
        reszoo.build("resnet50", weights="tv_in1k", preprocessing="caffe")
    assert not keras_cache.exists() or not any(keras_cache.iterdir())


def test_a_truncated_cached_download_is_deleted_and_reported(keras_cache, tmp_path):
    _, path = saved_reference(tmp_path, "timm_resnet18_features")  # full-depth resnet18
    cached = keras_cache / "resnet18.tv_in1k.safetensors"
    keras_cache.mkdir(parents=True)
    cached.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(reszoo.ConfigError, match="deleted from the cache"):
        reszoo.build("resnet18", weights="tv_in1k")
    assert not cached.exists()


def test_a_download_with_the_wrong_hash_is_deleted_and_reported(keras_cache, tmp_path, test_models):
    _, served = saved_reference(tmp_path)
    tag = tag_entry("resnet18", served.as_uri(), "bad.safetensors", sha256="0" * 64)
    register_with_tag(test_models, "resnet18_badhash", "resnet18", tag, depths=SMALL)
    with pytest.raises(reszoo.ConfigError, match="failed its hash check.*deleted from the cache"):
        reszoo.build("resnet18_badhash", weights="imagenet")
    assert not (keras_cache / "bad.safetensors").exists()
    # A stale cached copy with the wrong hash is deleted too before fetching again.
    good = hashlib.sha256(served.read_bytes()).hexdigest()
    tag = tag_entry("resnet18", served.as_uri(), "stale.safetensors", sha256=good)
    register_with_tag(test_models, "resnet18_stale", "resnet18", tag, depths=SMALL)
    (keras_cache / "stale.safetensors").write_bytes(b"old bytes")
    served.unlink()
    with pytest.raises(reszoo.ConfigError, match="did not match its recorded hash and was deleted"):
        reszoo.build("resnet18_stale", weights="imagenet")
    assert not (keras_cache / "stale.safetensors").exists()


def test_offline_the_error_names_url_cache_path_and_weights_path(keras_cache, test_models):
    url = "http://127.0.0.1:9/resnet18.safetensors"  # the discard port: refused at once
    tag = tag_entry("resnet18", url, "offline.safetensors")
    register_with_tag(test_models, "resnet18_offline", "resnet18", tag, depths=SMALL)
    with pytest.raises(reszoo.ConfigError) as error:
        reszoo.build("resnet18_offline", weights="imagenet")
    message = str(error.value)
    assert url in message and str(keras_cache / "offline.safetensors") in message
    assert "weights='/path/to/offline.safetensors'" in message


def test_keras_applications_files_need_a_keras_applications_layout(tmp_path):
    path = tmp_path / "notop.h5"
    keras.applications.ResNet50(weights=None, include_top=False).save(path)
    with pytest.raises(reszoo.ConfigError, match="no keras.applications layout.*resnet50_v1"):
        reszoo.build("resnet50", weights=str(path))


def test_a_keras3_file_of_another_keras_application_is_one_short_error(tmp_path):
    path = tmp_path / "resnet101.weights.h5"
    keras.applications.ResNet101(weights=None, input_shape=(64, 64, 3)).save_weights(path)
    with pytest.raises(reszoo.ConfigError) as error:
        reszoo.build("resnet50_v1", weights=str(path))
    assert "does not fit keras.applications.ResNet50" in str(error.value)
    assert len(str(error.value)) < 800 and "\n" not in str(error.value)


def test_unknown_file_kinds_and_missing_paths_are_clear(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not weights")
    with pytest.raises(reszoo.ConfigError, match="not a weight file reszoo reads"):
        reszoo.build("resnet18", weights=str(text))
    with pytest.raises(reszoo.ConfigError, match="neither a weight tag.*tv_in1k"):
        reszoo.build("resnet18", weights=str(tmp_path / "missing.safetensors"))
