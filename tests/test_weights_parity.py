"""Converted timm/torchvision weights compute the reference's function, layout by layout.

Each reference is a PyTorch module with timm's exact parameter names
(tests/torch_reference/timm_reference.py) holding random weights and non-trivial BatchNorm
statistics; tests/torch_reference/make_fixtures.py ran it and pinned its outputs in
tests/data/torch_reference/timm_*.npz with what it takes to draw the same weights again with
NumPy (tests/pinned_reference.py), so this file needs no PyTorch. The weights are saved as
safetensors under the hub's key names. reszoo reads the file through the same path as a
download: either pre-placed in Keras's cache under the tag's file name (registered tags), or
fetched by keras.utils.get_file from a file:// URL with its sha256 checked (a test tag on a
reduced-depth copy of the layout). Outputs must agree within 1e-4 of the largest logit.
"""

import hashlib

import numpy as np
import pytest
from pinned_reference import ReferenceCase, load_case, relative_difference
from safetensors.numpy import save_file
from weights_fixtures import WEIGHTS_JSON, keras_cache, register_with_tag, tag_entry, test_models

import reszoo
from reszoo.weights.download import cache_dir

TOLERANCE = 1e-4
__all__ = ["keras_cache", "test_models"]  # fixtures used by name below


def place_in_cache(case: ReferenceCase, model: str, tag: str) -> None:
    """Put the reference's safetensors where a download of `model.tag` would land."""
    spec = WEIGHTS_JSON["models"][model]["tags"][tag]["files"]["model"]
    target = cache_dir() / spec["file_name"]
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(case.state_dict(), str(target))


def compare(model, case: ReferenceCase, size: int, preprocessing) -> float:
    """reszoo's logits against the reference's for the case's images at `size`; the model must
    normalise its pixels as the reference's input was normalised (the tag's mean and std)."""
    assert (list(preprocessing.mean), list(preprocessing.std)) == case.mean_std
    expected = case.output(size)
    ours = np.asarray(model(case.images(size), training=False))
    # The logits must carry the images' signal, not just the classifier's bias.
    assert np.abs(expected - expected.mean(axis=0)).max() > 0.05 * np.abs(expected).max()
    return relative_difference(ours, expected)


def test_resnet50_equals_the_reference_at_224_and_at_160(keras_cache):
    case = load_case("timm_resnet50")
    place_in_cache(case, "resnet50", "tv_in1k")
    preprocessing = reszoo.weights.get_tag("resnet50", "tv_in1k").preprocessing
    for size in (224, 160):
        model = reszoo.build("resnet50", weights="tv_in1k", input_shape=(size, size, 3))
        difference = compare(model, case, size, preprocessing)
        print(f"resnet50 (v1.5) at {size}: max relative difference {difference:.2e}")
        assert difference <= TOLERANCE


def test_resnet50d_default_tag_builds_with_its_preprocessing_and_matches(keras_cache):
    """ResNet-D: deep 32/32/64 stem, average-pool shortcut; its default tag (timm's ra4) was
    trained on mean/std 0.5 inputs, so the model is built with that normalisation."""
    tag = reszoo.weights.get_tag("resnet50d")
    assert tag.tag == "ra4_e3600_r224_in1k" and tag.preprocessing.mode == "tf"
    case = load_case("timm_resnet50d")
    place_in_cache(case, "resnet50d", tag.tag)
    # 100 px: the average-pool shortcuts see odd sizes (25, 13, 7), where timm's ceil_mode
    # pooling without padding in the count must equal Keras's "same" pooling.
    model = reszoo.build("resnet50d", weights="imagenet", input_shape=(100, 100, 3))
    assert model.get_layer("preprocess").mode == "tf"
    difference = compare(model, case, 100, tag.preprocessing)
    print(f"resnet50d (ResNet-D) at 100: max relative difference {difference:.2e}")
    assert difference <= TOLERANCE


REDUCED = [
    # layouts under test at depths [2, 1, 1, 1]: a projection block and a plain block
    "resnet18",  # basic blocks, v1.5
    "resnext50_32x4d",  # grouped 3x3, width rule int(planes * 4 / 64) * 32
    "wide_resnet50_2",  # base width 128
    "seresnet50",  # SE after bn3: fc1/fc2 with biases, width make_divisible(c/16, 8)
]


@pytest.mark.parametrize("layout", sorted(REDUCED))
def test_each_layout_downloads_and_equals_its_reference(layout, keras_cache, tmp_path, test_models):
    case = load_case(f"timm_{layout}_reduced")
    assert case.depths == [2, 1, 1, 1]
    served = tmp_path / "served" / "model.safetensors"
    served.parent.mkdir()
    save_file(case.state_dict(), str(served))
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    name = f"test_{layout}_reduced"
    tag = tag_entry(layout, served.as_uri(), f"{name}.test.safetensors", sha256=digest)
    register_with_tag(test_models, name, layout, tag, depths=case.depths)
    preprocessing = reszoo.weights.get_tag(name).preprocessing
    model = reszoo.build(name, weights="imagenet", input_shape=(100, 100, 3))  # odd sizes inside
    assert (keras_cache / f"{name}.test.safetensors").is_file()  # downloaded into the cache
    difference = compare(model, case, 100, preprocessing)
    print(f"{layout} (depths {case.depths}) at 100: max relative difference {difference:.2e}")
    assert difference <= TOLERANCE
