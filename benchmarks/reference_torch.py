"""An independent reference: the CIFAR ResNet-20 of He et al. 2016, trained in plain PyTorch.

Written from the paper (section 4.2), not from reszoo, to check reszoo's trainer against:
- model: a 3x3 conv with 16 filters, then 3 stages of n=3 basic blocks (two 3x3 convs each,
  BatchNorm after every conv, ReLU after the first and after the sum) with 16, 32 and 64
  filters; the first conv of stages 2 and 3 has stride 2; global average pooling and a 10-way
  fully connected layer. Shortcuts are identities (option A): where the shape changes they
  subsample by 2 and append zero channels, so they add no parameters. 6n+2 = 20 weighted
  layers, 269,722 trainable parameters (the paper's "0.27M"). Weights initialised as in the
  paper's reference [13] (He et al. 2015: normal, std sqrt(2 / (k*k*c_in))).
- data: 4-pixel zero padding then a random 32x32 crop, a random horizontal flip, per-channel
  normalisation with the mean and standard deviation of the training images.
- optimisation: SGD, momentum 0.9, batch 128 (incomplete last batch dropped), weight decay 1e-4
  on the convolution and fully connected weights (not on BatchNorm or biases, as reszoo's CIFAR
  recipe states), cross-entropy; the learning rate follows one of reszoo's schedule formulas
  (recipes.json "schedule": cosine, steps or constant, with linear warm-up), per step.

The images and the train/held-out split come from a JSON file (``--split``, written by
benchmarks/bench_time_to_accuracy.py --reference from reszoo's own folder split, so both train
on exactly the same files) or, standalone, from a folder of class sub-folders with the last
``--holdout-per-class`` files of each class held out. Prints accuracy per epoch, wall time and
training images/s; ``--output`` writes them as JSON.

    nice -n 15 python benchmarks/reference_torch.py --split split.json --epochs 8 --output ref.json
    python benchmarks/reference_torch.py --data /work/data/train --holdout-per-class 100 --epochs 1

``--pad-mode reflect`` pads by reflection instead of zeros (what reszoo does), for ablations.

Measured here (2026-12-02, a shared 2-core Xeon, 1 thread, bfloat16 autocast; 5,000 training
images and 1,000 held out, 8 epochs): 150-350 training images/s; final held-out accuracy 0.511
on average over seeds 0-3 (0.547 with --pad-mode reflect) where reszoo.fit reached 0.566 on the
same files. Per epoch: benchmarks/RESULTS.md, "Time to accuracy", the side-by-side slots.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

# --------------------------------------------------------------------------- model


def option_a_shortcut(x: torch.Tensor, out_channels: int, stride: int) -> torch.Tensor:
    """Identity; across a stage boundary: subsample by ``stride``, pad zero channels at the end."""
    if stride > 1:
        x = x[:, :, ::stride, ::stride]
    extra = out_channels - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, 0, extra)) if extra else x


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.out_channels, self.stride = out_channels, stride
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + option_a_shortcut(x, self.out_channels, self.stride))


class CifarResNet(nn.Module):
    """6n+2 layers: n=3 is ResNet-20, n=5 ResNet-32, n=9 ResNet-56."""

    def __init__(self, n: int = 3, widths=(16, 32, 64), num_classes: int = 10):
        super().__init__()
        self.conv = nn.Conv2d(3, widths[0], 3, 1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(widths[0])
        blocks, in_channels = [], widths[0]
        for stage, width in enumerate(widths):
            for i in range(n):
                blocks.append(BasicBlock(in_channels, width, 2 if stage > 0 and i == 0 else 1))
                in_channels = width
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(in_channels, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")

    def forward(self, x):
        x = self.blocks(F.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


# --------------------------------------------------------------------------- data


def read_split(path: str) -> dict:
    """{"root", "class_names", "train": [[relative path, label]...], "validation": [...]}."""
    with open(path) as f:
        split = json.load(f)
    missing = {"root", "class_names", "train", "validation"} - set(split)
    if missing:
        raise ValueError(f"split file {path} lacks {sorted(missing)}")
    return split


def folder_split(root: str, holdout_per_class: int) -> dict:
    """Sorted class folders and files; the last ``holdout_per_class`` of each class held out."""
    names = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if len(names) < 2:
        raise ValueError(f"{root} needs one sub-folder per class (at least 2)")
    train, validation = [], []
    for label, name in enumerate(names):
        files = sorted(f for f in os.listdir(os.path.join(root, name)) if not f.startswith("."))
        cut = len(files) - holdout_per_class
        if cut < 1:
            raise ValueError(f"class {name} has {len(files)} images: hold out fewer")
        train += [[f"{name}/{f}", label] for f in files[:cut]]
        validation += [[f"{name}/{f}", label] for f in files[cut:]]
    return {"root": root, "class_names": names, "train": train, "validation": validation}


def load_images(root: str, items: list) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images [N, 3, H, W] (RGB, decoded once and kept in memory) and int64 labels [N]."""
    arrays = []
    for rel, _ in items:
        with Image.open(os.path.join(root, rel)) as image:
            arrays.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
    images = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
    return images, torch.tensor([label for _, label in items], dtype=torch.int64)


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and standard deviation of uint8 images, on the 0..1 scale."""
    x = images.to(torch.float64).div_(255.0)
    mean = x.mean(dim=(0, 2, 3))
    std = x.permute(1, 0, 2, 3).reshape(3, -1).std(dim=1)
    return mean.float().view(1, 3, 1, 1), std.float().view(1, 3, 1, 1)


def augment(
    batch: torch.Tensor, generator: torch.Generator, pad: int = 4, mode: str = "zeros"
) -> torch.Tensor:
    """Pad ``pad`` pixels (zeros as in the paper, or "reflect"), crop back to the original size
    at a random offset, flip half."""
    n, _, h, w = batch.shape
    if mode == "reflect":  # reflect padding needs a float tensor
        padded = F.pad(batch.float(), (pad, pad, pad, pad), mode="reflect").to(batch.dtype)
    else:
        padded = F.pad(batch, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator).tolist()
    flips = (torch.rand(n, generator=generator) < 0.5).tolist()
    out = torch.empty_like(batch)
    for i in range(n):
        crop = padded[i, :, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


def normalize(batch: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (batch.float().div_(255.0) - mean) / std


# --------------------------------------------------------------------------- optimisation


def cosine(step: int, c: dict) -> float:
    """Half a cosine from lr down to min_lr over the steps after the warm-up."""
    progress = (step - c["warmup"]) / max(1, c["total"] - c["warmup"])
    progress = min(1.0, max(0.0, progress))
    return c["min_lr"] + (c["lr"] - c["min_lr"]) * 0.5 * (1 + math.cos(math.pi * progress))


def steps(step: int, c: dict) -> float:
    """lr times decay for every boundary (a step index) passed."""
    return c["lr"] * c["decay"] ** sum(step >= b for b in c["boundaries"])


# lr at the (0-based) step of `total` steps, after `warmup` linear warm-up steps: the formulas
# of reszoo's schedules (recipes.json "schedule"), so both runs follow the same curve.
SCHEDULES = {"cosine": cosine, "steps": steps, "constant": lambda step, c: c["lr"]}


def learning_rate(step: int, schedule: dict) -> float:
    if step < schedule["warmup"]:
        return schedule["lr"] * (step + 1) / schedule["warmup"]
    return SCHEDULES[schedule["kind"]](step, schedule)


def make_optimizer(model: nn.Module, args) -> torch.optim.SGD:
    """SGD with weight decay on conv and fully connected weights only."""
    decay = [p for name, p in model.named_parameters() if name.endswith("weight") and p.dim() > 1]
    rest = [
        p for name, p in model.named_parameters() if not (name.endswith("weight") and p.dim() > 1)
    ]
    groups = [
        {"params": decay, "weight_decay": args.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    return torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum)


def train_epoch(model, optimizer, data, state, args) -> dict:
    """One pass over the shuffled training images in full batches; loss, accuracy, img/s."""
    images, labels, mean, std = data
    model.train()
    order = torch.randperm(len(labels), generator=state["generator"])
    steps = len(labels) // args.batch_size
    loss_sum, correct, start = 0.0, 0, time.perf_counter()
    for i in range(steps):
        index = order[i * args.batch_size : (i + 1) * args.batch_size]
        x = augment(images[index], state["generator"], mode=args.pad_mode)
        x = normalize(x, mean, std)
        x = x.contiguous(memory_format=torch.channels_last)
        lr = learning_rate(state["step"], state["schedule"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bfloat16"):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state["step"] += 1
        loss_sum += loss.item()
        correct += (logits.argmax(1) == labels[index]).sum().item()
    seconds = time.perf_counter() - start
    images_seen = steps * args.batch_size
    return {
        "lr": lr,
        "loss": loss_sum / steps,
        "accuracy": correct / images_seen,
        "images_per_sec": images_seen / seconds,
        "epoch_time": seconds,
    }


@torch.no_grad()
def evaluate(model, images, labels, mean, std, args) -> float:
    model.eval()
    correct = 0
    for i in range(0, len(labels), 500):
        x = normalize(images[i : i + 500], mean, std).contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bfloat16"):
            correct += (model(x).argmax(1) == labels[i : i + 500]).sum().item()
    return correct / len(labels)


# --------------------------------------------------------------------------- command line


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--split", help="JSON split file (bench_time_to_accuracy --reference)")
    source.add_argument("--data", help="folder of class sub-folders (standalone)")
    p.add_argument("--holdout-per-class", type=int, default=500, help="with --data")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default="cosine")
    p.add_argument("--warmup-epochs", type=float, default=1.0)
    p.add_argument("--lr-steps", default="", help="epochs of the steps schedule, e.g. 91,136")
    p.add_argument("--lr-decay", type=float, default=0.1)
    p.add_argument("--min-lr", type=float, default=0.0)
    p.add_argument("--precision", choices=("float32", "bfloat16"), default="bfloat16")
    p.add_argument(
        "--pad-mode",
        choices=("zeros", "reflect"),
        default="zeros",
        help="crop padding (paper: zeros)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, help="train on this many batches per epoch (checks)")
    p.add_argument("--output", help="write the per-epoch results here as JSON")
    args = p.parse_args(argv)
    if args.epochs < 1 or args.batch_size < 1 or args.threads < 1:
        p.error("--epochs, --batch-size and --threads must be at least 1")
    return args


def prepare(args):
    """(split, training data tuple, held-out images, labels) or a one-line error (exit 2)."""
    try:
        split = (
            read_split(args.split)
            if args.split
            else folder_split(args.data, args.holdout_per_class)
        )
        train_images, train_labels = load_images(split["root"], split["train"])
        val_images, val_labels = load_images(split["root"], split["validation"])
    except (OSError, ValueError) as e:
        print(f"reference_torch: {e}", file=sys.stderr)
        raise SystemExit(2) from e
    if len(train_labels) < args.batch_size:
        print(
            f"reference_torch: {len(train_labels)} training images < batch {args.batch_size}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    mean, std = channel_stats(train_images)
    return split, (train_images, train_labels, mean, std), val_images, val_labels


def schedule_of(args, steps_per_epoch: int) -> dict:
    return {
        "kind": args.schedule,
        "lr": args.lr,
        "min_lr": args.min_lr,
        "decay": args.lr_decay,
        "total": args.epochs * steps_per_epoch,
        "warmup": round(args.warmup_epochs * steps_per_epoch),
        "boundaries": [round(float(e) * steps_per_epoch) for e in args.lr_steps.split(",") if e],
    }


def main(argv=None) -> dict:
    args = parse_args(argv)
    start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    split, data, val_images, val_labels = prepare(args)
    model = CifarResNet(num_classes=len(split["class_names"])).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, args)
    if args.max_steps:  # a short check: the first max_steps batches' worth of images
        keep = args.max_steps * args.batch_size
        data = (data[0][:keep], data[1][:keep], *data[2:])
    steps_per_epoch = len(data[1]) // args.batch_size
    state = {
        "step": 0,
        "schedule": schedule_of(args, steps_per_epoch),
        "generator": torch.Generator().manual_seed(args.seed),
    }
    rows = []
    for epoch in range(1, args.epochs + 1):
        row = {"epoch": epoch, **train_epoch(model, optimizer, data, state, args)}
        row["val_accuracy"] = evaluate(model, val_images, val_labels, *data[2:], args)
        row["wall"] = time.perf_counter() - start
        rows.append(row)
        print(
            f"epoch {epoch}: loss {row['loss']:.3f} acc {row['accuracy']:.3f} val_acc "
            f"{row['val_accuracy']:.4f} lr {row['lr']:.4g} {row['images_per_sec']:.0f} img/s "
            f"wall {row['wall']:.0f}s",
            flush=True,
        )
    result = {
        "epochs": rows,
        "train_examples": len(split["train"]),
        "validation_examples": len(split["validation"]),
        "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "torch": torch.__version__,
        "threads": args.threads,
        "precision": args.precision,
        "pad_mode": args.pad_mode,
        "wall": time.perf_counter() - start,
    }
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
