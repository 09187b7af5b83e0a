"""Write the PyTorch reference outputs the tests compare reszoo against.

    pip install -e ".[reference]"      # torch 2.13 (CPU); not needed to run the tests
    python tests/torch_reference/make_fixtures.py

Each case is a PyTorch model written from its source (here: the article's SmallResNet), given
weights and trained-looking BatchNorm statistics, run on fixed random images in eval mode; the
state dict, the images and the outputs go to tests/data/torch_reference/<case>.npz. The tests
load that file without PyTorch, so README's test command does not download PyTorch (several GB
with its CUDA dependencies from PyPI on Linux), and the reference stays an independent
implementation whose outputs are pinned.
"""

from pathlib import Path

import numpy as np
import torch
from article import ArticleSmallResNet
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


CASES = {"article_smallresnet": article_smallresnet}

if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in CASES.items():
        arrays = make()
        np.savez_compressed(OUT / f"{name}.npz", torch_version=np.str_(torch.__version__), **arrays)
        print(f"wrote {OUT / name}.npz")
