"""Converted timm/torchvision weights compute the reference's function, layout by layout.

Each reference is a PyTorch module with timm's exact parameter names (tests/timm_reference.py)
holding random weights and non-trivial BatchNorm statistics, saved as safetensors under the
hub's key names. reszoo reads the file through the same path as a download: either pre-placed
in Keras's cache under the tag's file name (registered tags), or fetched by keras.utils.get_file
from a file:// URL with its sha256 checked (a test tag on a reduced-depth copy of the layout).
Outputs must agree within 1e-4 of the largest logit.
"""

import hashlib

import numpy as np
import pytest
from safetensors.numpy import save_file
from timm_reference import (
    LAYOUTS,
    randomized,
    reference_logits,
    relative_difference,
    state_dict_numpy,
)
from weights_fixtures import WEIGHTS_JSON, keras_cache, register_with_tag, tag_entry, test_models

import reszoo
from reszoo.weights.download import cache_dir

TOLERANCE = 1e-4
__all__ = ["keras_cache", "test_models"]  # fixtures used by name below


def images(size: int, count: int = 2, seed: int = 1) -> np.ndarray:
    """Noise over a different colour gradient per image: pooled features differ between images."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None, None] * rng.uniform(-120, 120, (count, 1, 1, 3))
    noise = rng.uniform(-60, 60, (count, size, size, 3))
    return np.clip(128 + ramp + noise, 0, 255).astype("float32")


def place_in_cache(reference, model: str, tag: str) -> None:
    """Put the reference's safetensors where a download of `model.tag` would land."""
    spec = WEIGHTS_JSON["models"][model]["tags"][tag]["files"]["model"]
    target = cache_dir() / spec["file_name"]
    target.parent.mkdir(parents=True, exist_ok=True)
    save_file(state_dict_numpy(reference), str(target))


def compare(model, reference, pixels, mean, std) -> float:
    expected = reference_logits(reference, pixels, mean, std)
    ours = np.asarray(model(pixels, training=False))
    # The logits must carry the images' signal, not just the classifier's bias.
    assert np.abs(expected - expected.mean(axis=0)).max() > 0.05 * np.abs(expected).max()
    return relative_difference(ours, expected)


TORCH_STATS = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])


def test_resnet50_equals_the_reference_at_224_and_at_160(keras_cache):
    reference = randomized(LAYOUTS["resnet50"]([3, 4, 6, 3]), seed=0)
    place_in_cache(reference, "resnet50", "tv_in1k")
    for size in (224, 160):
        model = reszoo.build("resnet50", weights="tv_in1k", input_shape=(size, size, 3))
        difference = compare(model, reference, images(size), *TORCH_STATS)
        print(f"resnet50 (v1.5) at {size}: max relative difference {difference:.2e}")
        assert difference <= TOLERANCE


def test_resnet50d_default_tag_builds_with_its_preprocessing_and_matches(keras_cache):
    """ResNet-D: deep 32/32/64 stem, average-pool shortcut; its default tag (timm's ra4) was
    trained on mean/std 0.5 inputs, so the model is built with that normalisation."""
    tag = reszoo.weights.get_tag("resnet50d")
    assert tag.tag == "ra4_e3600_r224_in1k" and tag.preprocessing.mode == "tf"
    reference = randomized(LAYOUTS["resnet50d"]([3, 4, 6, 3]), seed=1)
    place_in_cache(reference, "resnet50d", tag.tag)
    # 100 px: the average-pool shortcuts see odd sizes (25, 13, 7), where timm's ceil_mode
    # pooling without padding in the count must equal Keras's "same" pooling.
    model = reszoo.build("resnet50d", weights="imagenet", input_shape=(100, 100, 3))
    assert model.get_layer("preprocess").mode == "tf"
    difference = compare(
        model, reference, images(100), tag.preprocessing.mean, tag.preprocessing.std
    )
    print(f"resnet50d (ResNet-D) at 100: max relative difference {difference:.2e}")
    assert difference <= TOLERANCE


REDUCED = {
    # layout under test -> reduced depths keeping a projection block and a plain block
    "resnet18": [2, 1, 1, 1],  # basic blocks, v1.5
    "resnext50_32x4d": [2, 1, 1, 1],  # grouped 3x3, width rule int(planes * 4 / 64) * 32
    "wide_resnet50_2": [2, 1, 1, 1],  # base width 128
    "seresnet50": [2, 1, 1, 1],  # SE after bn3: fc1/fc2 with biases, width make_divisible(c/16, 8)
}


@pytest.mark.parametrize("layout", sorted(REDUCED))
def test_each_layout_downloads_and_equals_its_reference(layout, keras_cache, tmp_path, test_models):
    reference = randomized(LAYOUTS[layout](REDUCED[layout]), seed=2)
    served = tmp_path / "served" / "model.safetensors"
    served.parent.mkdir()
    save_file(state_dict_numpy(reference), str(served))
    digest = hashlib.sha256(served.read_bytes()).hexdigest()
    name = f"test_{layout}_reduced"
    tag = tag_entry(layout, served.as_uri(), f"{name}.test.safetensors", sha256=digest)
    register_with_tag(test_models, name, layout, tag, depths=REDUCED[layout])
    mode = reszoo.weights.get_tag(name).preprocessing
    model = reszoo.build(name, weights="imagenet", input_shape=(100, 100, 3))  # odd sizes inside
    assert (keras_cache / f"{name}.test.safetensors").is_file()  # downloaded into the cache
    difference = compare(model, reference, images(100), mode.mean, mode.std)
    print(f"{layout} (depths {REDUCED[layout]}) at 100: max relative difference {difference:.2e}")
    assert difference <= TOLERANCE
