"""PyTorch reference cases reproduced without PyTorch: weights from NumPy, outputs from a file.

tests/torch_reference/make_fixtures.py fills a PyTorch reference (timm's parameter names) with
the weights `generated_tensor` draws from (parameter name, shape, seed), measures its BatchNorm
statistics on a forward pass, and pins in tests/data/torch_reference/<case>.npz the names and
shapes, the seeds, those statistics and the reference's outputs. `load_case` rebuilds the same
state dict here with NumPy alone, so a test can write the hub's safetensors file and compare
reszoo with PyTorch's numbers without importing PyTorch: this file imports NumPy only.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent / "data" / "torch_reference"
STATISTICS = ("running_mean", "running_var")  # measured by the reference, pinned in the file
CALIBRATION_BATCHES = 1  # forward passes that measured the statistics (num_batches_tracked)
MODULE_KINDS = {4: "conv", 2: "linear", 1: "batchnorm"}  # rank of a module's weight -> kind


def _he_normal_fan_out(rng, shape, fan_in):
    """timm's and torchvision's conv init (kaiming_normal_, mode="fan_out", relu gain)."""
    fan_out = shape[0] * math.prod(shape[2:])
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(2.0 / fan_out))


def _linear_default(rng, shape, fan_in):
    """PyTorch's nn.Linear init, weight and bias: uniform within 1 / sqrt(fan_in)."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def _small_shift(rng, shape, fan_in):
    """Conv biases (the SE convs) and BN shifts: normal, standard deviation 0.1."""
    return rng.normal(0, 0.1, shape).astype(np.float32)


def _bn_scale(rng, shape, fan_in):
    """BN scales away from 1, on both sides."""
    return rng.uniform(0.5, 1.5, shape).astype(np.float32)


def _batches_tracked(rng, shape, fan_in):
    return np.array(CALIBRATION_BATCHES, np.int64)


GENERATORS = {
    # (module kind, parameter) -> f(rng, shape, fan_in of the module's weight)
    ("conv", "weight"): _he_normal_fan_out,
    ("conv", "bias"): _small_shift,
    ("linear", "weight"): _linear_default,
    ("linear", "bias"): _linear_default,
    ("batchnorm", "weight"): _bn_scale,
    ("batchnorm", "bias"): _small_shift,
    ("batchnorm", "num_batches_tracked"): _batches_tracked,
}


def generated_tensor(name: str, shape: tuple, seed: int, weight_shape: tuple) -> np.ndarray:
    """The value of parameter `name`: a function of its name, its shape and the case's seed only
    (`weight_shape`, its module's weight, says whether the module is a conv, linear or BN)."""
    kind = MODULE_KINDS[len(weight_shape)]
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    fan_in = math.prod(weight_shape[1:])
    return GENERATORS[kind, name.rsplit(".", 1)[1]](rng, tuple(shape), fan_in)


def generated_state_dict(names, shapes, seed: int, statistics: np.ndarray) -> dict:
    """The reference's state dict: generated tensors, and the pinned BatchNorm statistics
    (float16 values, one flat array in `names` order) for running_mean and running_var."""
    shapes = dict(zip(names, shapes))
    state, offset = {}, 0
    for name in names:
        shape = shapes[name]
        if name.rsplit(".", 1)[1] in STATISTICS:
            size = math.prod(shape)
            state[name] = statistics[offset : offset + size].astype(np.float32).reshape(shape)
            offset += size
        else:
            weight_shape = shapes[name.rsplit(".", 1)[0] + ".weight"]
            state[name] = generated_tensor(name, shape, seed, weight_shape)
    if offset != statistics.size:
        raise ValueError(f"{statistics.size - offset} pinned statistics were left over")
    return state


def ramp_images(size: int, count: int, seed: int) -> np.ndarray:
    """Noise over a different colour gradient per image: pooled features differ between images."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, size)[None, :, None, None] * rng.uniform(-120, 120, (count, 1, 1, 3))
    noise = rng.uniform(-60, 60, (count, size, size, 3))
    return np.clip(128 + ramp + noise, 0, 255).astype("float32")


def uniform_images(size: int, count: int, seed: int) -> np.ndarray:
    """Uniform noise over the whole 0..255 range."""
    return np.random.default_rng(seed).uniform(0, 255, (count, size, size, 3)).astype("float32")


IMAGES = {"ramp": ramp_images, "uniform": uniform_images}


def split_shapes(ranks: np.ndarray, dims: np.ndarray) -> list[tuple]:
    """Shapes stored as their ranks and all their dimensions in one row (npz has no ragged
    arrays); the inverse of `flatten_shapes`."""
    ends = np.cumsum(ranks)
    return [tuple(int(d) for d in dims[end - rank : end]) for rank, end in zip(ranks, ends)]


def flatten_shapes(shapes) -> dict[str, np.ndarray]:
    return {
        "ranks": np.array([len(s) for s in shapes], np.int64),
        "dims": np.array([d for s in shapes for d in s], np.int64),
    }


def abs_sums(state: dict) -> np.ndarray:
    """One number per tensor: catches a NumPy whose generators no longer give the pinned stream."""
    return np.array([np.abs(v).sum(dtype=np.float64) for v in state.values()])


@dataclass(frozen=True)
class ReferenceCase:
    """One pinned reference: its state dict, its inputs and PyTorch's outputs for them."""

    name: str
    arrays: dict

    def state_dict(self) -> dict[str, np.ndarray]:
        names = [str(n) for n in self.arrays["names"]]
        shapes = split_shapes(self.arrays["ranks"], self.arrays["dims"])
        state = generated_state_dict(
            names, shapes, int(self.arrays["seed"]), self.arrays["statistics"]
        )
        if not np.allclose(abs_sums(state), self.arrays["abs_sums"], rtol=1e-6, atol=0):
            raise AssertionError(
                f"{self.name}: NumPy no longer draws the pinned weights; rerun "
                "tests/torch_reference/make_fixtures.py"
            )
        return state

    def images(self, size: int) -> np.ndarray:
        make = IMAGES[str(self.arrays["image_kind"])]
        return make(size, int(self.arrays["image_count"]), int(self.arrays["image_seed"]))

    def output(self, size: int) -> np.ndarray:
        """The reference's output (channels last) for `images(size)`."""
        return self.arrays[f"output/{size}"]

    @property
    def depths(self) -> list[int]:
        return self.arrays["depths"].tolist()

    @property
    def mean_std(self) -> tuple[list, list]:
        return self.arrays["mean"].tolist(), self.arrays["std"].tolist()


def load_case(name: str) -> ReferenceCase:
    with np.load(DATA / f"{name}.npz") as data:
        return ReferenceCase(name, {key: data[key] for key in data.files})


def relative_difference(ours: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(ours - expected).max() / np.abs(expected).max())
