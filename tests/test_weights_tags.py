"""Weight tags as data: reszoo/weights.json validates, holds the published numbers, and its
transforms and class names agree with the code and with independent sources."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from weights_fixtures import WEIGHTS_JSON

import reszoo
from reszoo.commands.listing import zoo_table
from reszoo.layers import PixelNormalization
from reszoo.weights import tags as tag_module

IMAGENET_ARCHS = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50d",
    "resnext50_32x4d",
    "resnext101_32x8d",
    "wide_resnet50_2",
    "wide_resnet101_2",
    "seresnet50",
]
TORCHVISION = set(IMAGENET_ARCHS) - {"resnet50d", "seresnet50"}


def test_every_imagenet_architecture_has_two_tags_and_torchvision_ones_have_tv():
    for arch in IMAGENET_ARCHS:
        tags = reszoo.weights.list_tags(arch)
        assert len(tags) >= 2, arch
        assert tags[0] == reszoo.weights.get_tag(arch).tag  # the default is listed first
        if arch in TORCHVISION:
            assert "tv_in1k" in tags, arch
    for version in ("v1", "v2"):
        for depth in (50, 101, 152):
            assert reszoo.weights.list_tags(f"resnet{depth}_{version}") == ["keras_in1k"]


# Published numbers, typed from timm's results/results-imagenet.csv (huggingface/pytorch-image-
# models at aa4b585) and the keras.io Applications table: (model, tag, eval size, top-1, top-5).
PUBLISHED = [
    ("resnet50", "tv_in1k", 224, 76.156, 92.866),
    ("resnet50", "tv2_in1k", 224, 80.846, 95.430),
    ("resnet50", "a1_in1k", 288, 81.240, 95.112),
    ("resnet152", "a1h_in1k", 288, 83.494, 96.522),
    ("wide_resnet50_2", "racm_in1k", 288, 82.260, 96.062),
    ("resnext101_32x8d", "fb_swsl_ig1b_ft_in1k", 224, 84.276, 97.188),
    ("seresnet50", "ra2_in1k", 288, 81.288, 95.652),
    ("resnet50_v1", "keras_in1k", 224, 74.9, 92.1),
    ("resnet152_v2", "keras_in1k", 224, 78.0, 94.2),
]


@pytest.mark.parametrize("model, tag, size, top1, top5", PUBLISHED)
def test_tags_hold_the_published_accuracy_at_their_eval_size(model, tag, size, top1, top5):
    weights = reszoo.weights.get_tag(model, tag)
    assert (weights.eval_transform.image_size, weights.top1, weights.top5) == (size, top1, top5)


def test_eval_transforms_resize_as_torchvision_documents():
    # torchvision: V1 weights resize 256 / crop 224, V2 weights resize 232 / crop 224.
    assert reszoo.weights.get_tag("resnet50", "tv_in1k").eval_transform.resize_size == 256
    assert reszoo.weights.get_tag("resnet50", "tv2_in1k").eval_transform.resize_size == 232


def test_every_tags_mean_and_std_is_what_its_pixel_normalization_computes():
    pixels = np.array([[[[0.0, 100.0, 255.0]]]], dtype="float32")
    for model in reszoo.weights.models_with_weights():
        for tag in reszoo.weights.list_tags(model):
            prep = reszoo.weights.get_tag(model, tag).preprocessing
            if prep.mean is None:
                continue
            expected = (pixels / 255.0 - np.array(prep.mean)) / np.array(prep.std)
            ours = np.asarray(PixelNormalization(prep.mode)(pixels))
            np.testing.assert_allclose(ours, expected, rtol=1e-5, atol=1e-5)


def test_unknown_tag_lists_the_models_tags_and_resnet200_says_why_it_has_none():
    with pytest.raises(reszoo.ConfigError, match="a1_in1k, a1h_in1k, tv2_in1k, tv_in1k"):
        reszoo.weights.get_tag("resnet50", "b9_in1k")
    with pytest.raises(reszoo.ConfigError, match="untrained"):
        reszoo.build("resnet200", weights="imagenet")


def mutated(path: tuple, value) -> dict:
    document = copy.deepcopy(WEIGHTS_JSON)
    target = document["models"]
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return document


TAG = ("resnet50", "tags", "tv_in1k")


@pytest.mark.parametrize(
    "path, value, field",
    [
        (TAG + ("top1",), 101, "top1"),
        (TAG + ("license",), KeyError, "license"),
        (TAG + ("format",), "pickle", "format"),
        (
            TAG + ("eval",),
            {"size": 224, "crop_fraction": 0.875, "interpolation": "lanczos9"},
            "eval",
        ),
        (
            TAG + ("files",),
            {"model": {"url": "ftp://x", "file_name": "a", "sha256": None}},
            "files",
        ),
        (TAG + ("preprocessing",), {"mode": "torch", "mean": [0.5, 0.5]}, "preprocessing"),
        (TAG + ("num_classes",), 10, "num_classes"),
        (TAG + ("colour",), "red", "colour"),
    ],
)
def test_a_bad_tag_names_model_tag_and_field(path, value, field):
    with pytest.raises(reszoo.ConfigError) as error:
        tag_module.parse_document(mutated(path, value), "test document")
    message = str(error.value)
    assert "'resnet50'" in message and "'tv_in1k'" in message and repr(field) in message


def test_a_default_that_is_not_a_tag_is_refused():
    with pytest.raises(reszoo.ConfigError, match="'default' must name one of its tags"):
        tag_module.parse_document(mutated(("resnet50", "default"), "zz_in1k"), "test")


def test_imagenet_classes_are_the_standard_1000_in_tfds_order():
    names, synsets = reszoo.weights.imagenet_classes(), reszoo.weights.imagenet_synsets()
    assert len(names) == len(synsets) == 1000 == len(set(synsets))
    assert (names[0], names[1], names[999]) == ("tench", "goldfish", "toilet_tissue")
    import tensorflow_datasets

    labels = Path(tensorflow_datasets.__file__).parent / "datasets" / "imagenet2012" / "labels.txt"
    assert list(synsets) == labels.read_text().split()


def test_zoo_table_shows_the_default_tag_and_weights_table_every_tag():
    table = zoo_table("resnet50")
    assert "a1_in1k 81.24@288" in table
    listing = reszoo.weights.weights_table()
    count = sum(len(reszoo.weights.list_tags(m)) for m in reszoo.weights.models_with_weights())
    assert len(listing.splitlines()) == count + 2
    assert any(line.split()[:3] == ["resnet50", "a1_in1k", "*"] for line in listing.splitlines())


def test_weights_json_ships_as_package_data():
    text = (Path(reszoo.__file__).parent / "weights.json").read_text()
    assert json.loads(text)["format"] == tag_module.FORMAT
