"""The timm-layout reference cases: which reference, which weights, which inputs and outputs.

A case's weights are drawn with NumPy by tests/pinned_reference.py (the tests draw them again);
its BatchNorm statistics are measured here on a forward pass in training mode, as training would
leave them, then perturbed so every normalisation is non-trivial, and rounded to float16, the
values the reference then runs with and the file pins.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from timm_reference import LAYOUTS
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pinned_reference import (  # noqa: E402  (tests/ is not a package)
    IMAGES,
    STATISTICS,
    abs_sums,
    flatten_shapes,
    generated_state_dict,
)

# timm's data constants: IMAGENET_DEFAULT_MEAN/STD (torchvision's and most timm tags) and
# IMAGENET_INCEPTION_MEAN/STD (timm's ra4 recipe tags, resnet50d.ra4_e3600_r224_in1k among them).
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


@dataclass(frozen=True)
class TimmCase:
    layout: str  # key of timm_reference.LAYOUTS
    depths: tuple
    seed: int  # weights (NumPy) and calibration batch (torch)
    output: str = "logits"  # key of OUTPUTS; nothing is computed without sizes
    sizes: tuple = ()
    normalization: tuple = IMAGENET
    image_kind: str = "ramp"  # key of pinned_reference.IMAGES
    image_seed: int = 1
    image_count: int = 2
    num_classes: int = 1000


REDUCED = (2, 1, 1, 1)  # a projection block and a plain block in stage 1, one block after
TIMM_CASES = {
    # tests/test_weights_parity.py
    "timm_resnet50": TimmCase("resnet50", (3, 4, 6, 3), seed=0, sizes=(224, 160)),
    "timm_resnet50d": TimmCase(
        "resnet50d", (3, 4, 6, 3), seed=1, sizes=(100,), normalization=INCEPTION
    ),
    **{
        f"timm_{layout}_reduced": TimmCase(layout, REDUCED, seed=2, sizes=(100,))
        for layout in ("resnet18", "resnext50_32x4d", "wide_resnet50_2", "seresnet50")
    },
    # tests/test_weights_errors.py
    "timm_resnet18_small": TimmCase("resnet18", (1, 1, 1, 1), seed=0),
    "timm_resnet18_small_10_classes": TimmCase(
        "resnet18", (1, 1, 1, 1), seed=0, sizes=(64,), image_kind="uniform", image_seed=0,
        num_classes=10,
    ),
    # tests/test_weights_transfer.py
    "timm_resnet18_features": TimmCase(
        "resnet18", (2, 2, 2, 2), seed=5, output="features", sizes=(96,), image_kind="uniform",
        image_seed=0,
    ),
    "timm_resnet50_stage2": TimmCase(
        "resnet50", (1, 2, 1, 1), seed=6, output="stage2", sizes=(64,), image_kind="uniform",
    ),
}  # fmt: skip


def _stem(model, x):
    return model.maxpool(torch.relu(model.bn1(model.conv1(x))))


OUTPUTS = {
    # output name -> the reference's forward pass it pins
    "logits": lambda model, x: model(x),
    "features": lambda model, x: model.forward_features(x),
    "stage2": lambda model, x: model.layer2(model.layer1(_stem(model, x))),
}


def _is_statistic(name: str) -> bool:
    return name.rsplit(".", 1)[1] in STATISTICS


def _statistics(model: nn.Module) -> np.ndarray:
    """The running statistics in state-dict order, as one flat array."""
    state = model.state_dict()
    return np.concatenate([state[k].numpy().ravel() for k in state if _is_statistic(k)])


def calibrate(model: nn.Module, seed: int) -> np.ndarray:
    """Measure the BN statistics on 8 random 64 px images (a cumulative average over the pass),
    perturb them, round them to float16 and leave the model using exactly those, in eval mode."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average over the batches since the count's 0
            module.num_batches_tracked.zero_()
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 3, 64, 64))
    rng = np.random.default_rng(seed)
    state = model.state_dict()
    for name in [k for k in state if _is_statistic(k)]:
        value = state[name].numpy()
        if name.endswith("running_mean"):
            value = value + rng.normal(0, 0.05, value.shape)
        else:
            value = value * rng.uniform(0.8, 1.25, value.shape)
        state[name].copy_(torch.from_numpy(value.astype(np.float16).astype(np.float32)))
    model.eval()
    statistics = _statistics(model)
    assert np.isfinite(statistics).all() and statistics.min() > -1e4  # float16 held them
    assert all(state[k].min() > 0 for k in state if k.endswith("running_var"))
    return statistics.astype(np.float16)


def _outputs(model: nn.Module, spec: TimmCase) -> dict:
    """The reference's outputs (channels last) for raw 0..255 RGB pixels normalised as the
    weights' tag says, and how much of them the images (not the biases) decide."""
    mean, std = (np.asarray(v) for v in spec.normalization)
    outputs = {}
    for size in spec.sizes:
        images = IMAGES[spec.image_kind](size, spec.image_count, spec.image_seed)
        x = torch.from_numpy(
            ((images / 255.0 - mean) / std).transpose(0, 3, 1, 2).astype("float32")
        )
        with torch.no_grad():
            out = OUTPUTS[spec.output](model, x).numpy()
        outputs[f"output/{size}"] = out.transpose(0, 2, 3, 1) if out.ndim == 4 else out
        spread = np.abs(out - out.mean(axis=0)).max() / np.abs(out).max()
        print(f"  {spec.layout} {spec.output} at {size}: across-image spread {spread:.3f} of max")
    return outputs


def timm_case(spec: TimmCase) -> dict:
    model = LAYOUTS[spec.layout](list(spec.depths), num_classes=spec.num_classes)
    declared = model.state_dict()
    names, shapes = list(declared), [tuple(v.shape) for v in declared.values()]
    drawn = generated_state_dict(names, shapes, spec.seed, _statistics(model))
    # NumPy's weights, PyTorch's 0/1 statistics until calibrated
    model.load_state_dict({k: torch.from_numpy(v) for k, v in drawn.items()}, strict=True)
    statistics = calibrate(model, spec.seed)
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    drawn_again = generated_state_dict(names, shapes, spec.seed, statistics)
    for name in names:  # what the tests rebuild is what the reference ran with
        assert np.array_equal(state[name], drawn_again[name]), name
    return {
        "layout": np.str_(spec.layout),
        "depths": np.array(spec.depths, np.int64),
        "num_classes": np.int64(spec.num_classes),
        "seed": np.int64(spec.seed),
        "names": np.array(names),
        **flatten_shapes(shapes),
        "statistics": statistics,
        "abs_sums": abs_sums(state),
        "mean": np.array(spec.normalization[0]),
        "std": np.array(spec.normalization[1]),
        "image_kind": np.str_(spec.image_kind),
        "image_seed": np.int64(spec.image_seed),
        "image_count": np.int64(spec.image_count),
        "output_kind": np.str_(spec.output),
        **_outputs(model, spec),
    }
