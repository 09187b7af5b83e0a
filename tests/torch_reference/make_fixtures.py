"""Write the PyTorch reference outputs the tests compare reszoo against.

    pip install -e ".[reference]"      # torch 2.13 (CPU); not needed to run the tests
    python tests/torch_reference/make_fixtures.py [CASE ...]     # rewrite (all cases by default)
    python tests/torch_reference/make_fixtures.py --check         # do the files still reproduce?

Each case is a PyTorch model written from its source (article.py: the article's SmallResNet;
timm_reference.py: timm's ResNets under timm's parameter names), given weights and trained-
looking BatchNorm statistics, run on fixed random images in eval mode; what the tests need goes
to tests/data/torch_reference/<case>.npz with the torch version that computed it. The tests load
that file without PyTorch, so README's test command does not download PyTorch (several GB with
its CUDA dependencies from PyPI on Linux), and the reference stays an independent implementation
whose outputs are pinned.

The timm cases are too large to pin whole (resnet50: 25M parameters). Their weights are drawn
with NumPy from (parameter name, shape, seed) by tests/pinned_reference.py, which the tests use to
draw them again; the file pins the names, shapes and seeds, the BatchNorm statistics measured
here (float16, and the reference runs on exactly those values) and the outputs. Every run writes
the same bytes for the same torch build (fixed zip timestamps, seeded generators).
"""

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from article import ArticleSmallResNet
from timm_cases import TIMM_CASES, timm_case
from torch import nn

OUT = Path(__file__).resolve().parent.parent / "data" / "torch_reference"


def trained_looking(model: nn.Module) -> nn.Module:
    """BatchNorm statistics and affine terms away from PyTorch's 0/1 defaults."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.2)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
    return model.eval()


def article_smallresnet() -> dict:
    torch.manual_seed(0)
    model = trained_looking(ArticleSmallResNet())
    images = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    with torch.no_grad():  # the article feeds NCHW tensors straight in
        logits = model(torch.from_numpy(images.transpose(0, 3, 1, 2))).numpy()
    state = {f"state/{k}": v.numpy() for k, v in model.state_dict().items()}
    trainable = sum(p.numel() for p in model.parameters())
    return {"images": images, "logits": logits, "trainable": np.int64(trainable), **state}


def strided_conv() -> dict:
    """A 3x3 stride-2 conv with PyTorch's padding=1 (every side): the padding a strided conv must
    have for ported weights to compute the same function. On the 8 px input Keras's "same"
    padding (bottom/right only) differs from it; on the 9 px input the two coincide."""
    rng = np.random.default_rng(0)
    arrays = {"kernel_oihw": rng.normal(0, 0.3, size=(3, 2, 3, 3)).astype("float32")}
    for size in (9, 8):
        image = rng.normal(size=(1, size, size, 2)).astype("float32")
        output = F.conv2d(
            torch.from_numpy(image.transpose(0, 3, 1, 2)),
            torch.from_numpy(arrays["kernel_oihw"]),
            stride=2,
            padding=1,
        )
        arrays[f"image/{size}"] = image
        arrays[f"output/{size}"] = output.numpy().transpose(0, 2, 3, 1)
    return arrays


CASES = {
    "article_smallresnet": article_smallresnet,
    "strided_conv": strided_conv,
    **{name: (lambda spec=spec: timm_case(spec)) for name, spec in TIMM_CASES.items()},
}


def write_npz(target, arrays: dict) -> None:
    """np.savez_compressed, but with fixed timestamps: the same arrays give the same bytes."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for key, value in arrays.items():
            member = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            member.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(member, "w") as stream:
                np.lib.format.write_array(stream, np.asanyarray(value), allow_pickle=False)


def main(arguments: list[str]) -> int:
    """Write the named cases (all without names); with --check, write nothing and list the
    committed files this torch build and these references no longer reproduce byte for byte."""
    check = "--check" in arguments
    names = [a for a in arguments if a != "--check"] or list(CASES)
    torch.set_num_threads(1)  # one summation order, whatever the machine
    OUT.mkdir(parents=True, exist_ok=True)
    stale = []
    for name in names:
        buffer = io.BytesIO()
        write_npz(buffer, {"torch_version": np.str_(torch.__version__), **CASES[name]()})
        path = OUT / f"{name}.npz"
        if check:
            stale += [] if path.is_file() and path.read_bytes() == buffer.getvalue() else [name]
            continue
        path.write_bytes(buffer.getvalue())
        print(f"wrote {path} ({len(buffer.getvalue()) / 1024:.0f} KiB)")
    if check:
        print(f"differ from this run: {', '.join(stale)}" if stale else "all cases reproduced")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
