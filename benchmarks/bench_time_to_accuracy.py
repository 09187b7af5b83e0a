"""Time to accuracy: resnet20 on the shared CIFAR-10 training JPEGs.

The 50,000 CIFAR-10 training JPEGs (/work/shared/data/cifar10-train-jpeg.tar.gz, extracted to a
temporary folder, or an extracted folder given with --data) with 500 images per class held out
(``validation_split=5000``: reszoo.data's fixed per-class split; the CIFAR-10 test split is not
used) are trained with ``reszoo.fit("resnet20", folder, ...)`` and its defaults (precision
"auto", CIFAR augmentation, SGD momentum 0.9, weight decay 1e-4 on kernels) on a short CPU
schedule instead of the paper's 182 epochs: ``--epochs`` epochs (default 15), lr 0.1 at batch
128, one linear warm-up epoch (when epochs >= 3), cosine decay to 0. Printed and recorded:
validation accuracy per epoch, the epoch's training images/s, the wall time since the start of
fit (data loading, tracing and evaluation included), and the wall time at which validation
accuracy first reached 80/85/90%.

``--reference`` also trains benchmarks/reference_torch.py (plain PyTorch, written from He et al.
2016) in the same invocation, after reszoo, on exactly the same files: the train/held-out split
is taken from reszoo's own folder split and handed to it as a JSON file. Same epochs, batch,
learning rate, schedule, warm-up, momentum, weight decay and seed; both columns per epoch.
``--per-class N`` trains on the first N images of each class only (a small-scale comparison).

A full run takes about one minute per epoch on this 2-core CPU when it is quiet (15 epochs:
15 min, 2026-11-27), and up to twice that under load; --quick is 2 epochs (to prove the script
works end to end, not a result worth quoting).

    python benchmarks/bench_time_to_accuracy.py --quick
    python benchmarks/bench_time_to_accuracy.py --epochs 15 [--output runs/tta-resnet20]
    nice -n 15 python benchmarks/bench_time_to_accuracy.py --reference --data /work/data/train \\
        --per-class 600 --holdout 1000 --epochs 8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import common
import keras

import reszoo
from reszoo.training.recipes import parse_set

CIFAR_TAR = os.environ.get("RESZOO_CIFAR_TAR", "/work/shared/data/cifar10-train-jpeg.tar.gz")
THRESHOLDS = (0.80, 0.85, 0.90)
REFERENCE = os.path.join(common.HERE, "reference_torch.py")
FULL_GOAL = {"train": 45_000, "epochs": (15, 30), "seeds": 2}  # the comparison still to run


class WallClock(keras.callbacks.Callback):
    def __init__(self, t_start):
        super().__init__()
        self.t_start = t_start
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.rows.append({"epoch": epoch + 1, "wall": time.perf_counter() - self.t_start, **logs})
        print(
            f"  epoch {epoch + 1}: val_accuracy {logs.get('val_accuracy', float('nan')):.4f} "
            f"at {self.rows[-1]['wall']:.0f}s",
            flush=True,
        )


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 epochs")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", help="extracted folder of class sub-folders (default: the tarball)")
    p.add_argument("--per-class", type=int, help="use only the first N images of each class")
    p.add_argument("--holdout", type=int, default=5000, help="images held out (per-class split)")
    p.add_argument("--reference", action="store_true", help="also run reference_torch.py")
    p.add_argument("--reference-threads", type=int, default=1)
    p.add_argument("--output", help="run directory kept after the run (default: a temp dir)")
    p.add_argument("--no-record", action="store_true")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a training option over the bench's recipe, as reszoo train --set (repeatable): "
        "one ablation per run, recorded in its own slot",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.epochs = 2
    if args.data is None and not os.path.exists(CIFAR_TAR):
        p.error(f"{CIFAR_TAR} not found and no --data folder given: nothing to train on")
    if args.data is not None and not os.path.isdir(args.data):
        p.error(f"--data {args.data} is not a folder of class sub-folders")
    if args.per_class is not None and args.per_class < 2:
        p.error("--per-class must be at least 2")
    return args


def training_folder(args, tmp: str) -> str:
    """The folder to train on: --data or the extracted tarball, cut to --per-class images."""
    folder = args.data
    if folder is None:
        subprocess.run(["tar", "-xzf", CIFAR_TAR, "-C", tmp], check=True)
        folder = os.path.join(tmp, "train")
    if args.per_class is None:
        return os.path.abspath(folder)
    subset = os.path.join(tmp, f"first{args.per_class}")
    for name in sorted(e.name for e in os.scandir(folder) if e.is_dir()):
        os.makedirs(os.path.join(subset, name))
        for f in sorted(os.listdir(os.path.join(folder, name)))[: args.per_class]:
            # copies: reszoo's folder scan does not follow links out of the folder
            shutil.copyfile(os.path.join(folder, name, f), os.path.join(subset, name, f))
    return subset


def write_split(folder: str, holdout: int, path: str) -> dict:
    """reszoo's own train/held-out file lists for this folder (the call fit makes), as JSON."""
    from reszoo.data_sources import SourceRequest, folder_source

    source = folder_source(SourceRequest(folder, None, holdout, None))

    def items(split):
        return [
            [os.path.relpath(p.decode(), folder), int(label)]
            for p, label in split.dataset.as_numpy_iterator()
        ]

    split = {
        "root": folder,
        "class_names": list(source.class_names),
        "train": items(source.train),
        "validation": items(source.validation),
    }
    with open(path, "w") as f:
        json.dump(split, f)
    return split


def run_reszoo(folder: str, args, tmp: str) -> tuple[list, dict, float]:
    """Per-epoch rows (epoch, lr, loss, accuracy, val_accuracy, img/s, epoch s, wall s)."""
    t_start = time.perf_counter()
    clock = WallClock(t_start)
    options = {
        "schedule": "cosine",
        "lr_steps": [],
        "warmup_epochs": 1 if args.epochs >= 3 else 0,
        "seed": args.seed,
    }
    options.update(parse_set(args.set))
    result = reszoo.fit(
        "resnet20",
        folder,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        validation_split=args.holdout,
        output_dir=args.output or os.path.join(tmp, "run"),
        callbacks=[clock],
        verbose=2,
        **options,
    )
    wall = time.perf_counter() - t_start
    hist = result.history
    rows = [
        {
            "epoch": row["epoch"],
            "lr": hist["lr"][i],
            "loss": hist["loss"][i],
            "accuracy": hist["accuracy"][i],
            "val_accuracy": row.get("val_accuracy"),
            "images_per_sec": hist["images_per_sec"][i],
            "epoch_time": hist["epoch_time"][i],
            "wall": row["wall"],
        }
        for i, row in enumerate(clock.rows)
    ]
    return rows, result.summary, wall


def run_reference(split_path: str, args, tmp: str) -> dict:
    """reference_torch.py in its own process (no TensorFlow in it), same recipe and seed."""
    out = os.path.join(tmp, "reference.json")
    command = [sys.executable, REFERENCE, "--split", split_path, "--output", out]
    command += ["--epochs", str(args.epochs), "--batch-size", str(args.batch_size)]
    command += ["--lr", str(args.lr), "--schedule", "cosine", "--seed", str(args.seed)]
    command += ["--warmup-epochs", "1" if args.epochs >= 3 else "0"]
    command += ["--threads", str(args.reference_threads)]
    subprocess.run(command, check=True)
    with open(out) as f:
        return json.load(f)


def reached(rows: list) -> str:
    out = []
    for th in THRESHOLDS:
        hit = next((r for r in rows if (r.get("val_accuracy") or 0) >= th), None)
        where = f"epoch {hit['epoch']}, {hit['wall'] / 60:.1f} min" if hit else "not reached"
        out.append(f"{th:.0%}: {where}")
    return "; ".join(out)


def reszoo_report(rows, summary, wall, args, counts) -> str:
    keys = ("epoch", "lr", "loss", "accuracy", "val_accuracy", "images_per_sec", "epoch_time")
    headers = ["epoch", "lr (end)", "train loss", "train acc", "val acc", "train img/s"]
    body = common.table(
        headers + ["epoch s", "wall s"], [[r[k] for k in (*keys, "wall")] for r in rows]
    )
    final = summary["final_metrics"].get("val_accuracy", float("nan"))
    return body + (
        f"\n\n- resnet20, CIFAR-10 train JPEGs, {counts[0]:,} train / {counts[1]:,} held out "
        f"(per class); {args.epochs} epochs, batch {args.batch_size}, lr {args.lr} cosine"
        f"{', 1 warm-up epoch' if args.epochs >= 3 else ''}; precision "
        f"{summary.get('precision')}; final val accuracy {final:.4f}, best "
        f"{summary.get('best_val_accuracy') or float('nan'):.4f}; wall {wall / 60:.1f} min "
        f"(fit's own: {summary.get('wall_time_sec', 0) / 60:.1f} min)"
        f"{'; over the recipe: ' + ', '.join(args.set) if args.set else ''}.\n"
        f"- Time to accuracy: {reached(rows)}."
        + (
            "\n- --quick run (2 epochs): proves the script works; not a result to quote."
            if args.quick
            else ""
        )
    )


def side_by_side_report(rows, summary, reference, split, args) -> str:
    """Both runs per epoch, what was the same and what was not, and what the full goal costs."""
    ref_rows = reference["epochs"]
    headers = ["epoch", "lr (end)", "val acc reszoo", "val acc reference", "train acc reszoo"]
    headers += ["train acc reference", "img/s reszoo", "img/s reference", "wall s reszoo"]
    headers += ["wall s reference"]
    table_rows = [
        [r["epoch"], r["lr"], r["val_accuracy"], q["val_accuracy"], r["accuracy"], q["accuracy"]]
        + [r["images_per_sec"], q["images_per_sec"], r["wall"], q["wall"]]
        for r, q in zip(rows, ref_rows)
    ]
    digest = hashlib.sha256(json.dumps([split["train"], split["validation"]]).encode())
    n_train, n_val = len(split["train"]), len(split["validation"])
    notes = [
        f"Same files for both: {n_train:,} train / {n_val:,} held out, reszoo's per-class split "
        f"(file lists sha256 {digest.hexdigest()[:12]}); {args.epochs} epochs, batch "
        f"{args.batch_size}, SGD momentum 0.9, weight decay 1e-4 on conv/dense weights, lr "
        f"{args.lr} cosine{' after 1 linear warm-up epoch' if args.epochs >= 3 else ''}, seed "
        f"{args.seed} (one seed each).",
        f"reszoo: resnet20 via reszoo.fit, precision {summary.get('precision')}, TensorFlow's "
        f"threads; final {rows[-1]['val_accuracy']:.4f}, wall {summary.get('wall_time_sec', 0):.0f} s.",
        f"reference: benchmarks/reference_torch.py (torch {reference['torch']}, "
        f"{reference['threads']} thread(s), {reference['precision']} autocast, "
        f"{reference['parameters']:,} parameters); final {ref_rows[-1]['val_accuracy']:.4f}, "
        f"wall {reference['wall']:.0f} s.",
        "Not the same by design: reszoo pads by reflection before its random crop and "
        "normalises with fixed CIFAR-10 constants inside the model; the reference zero-pads "
        "(the paper) and normalises with this training set's mean/std; JPEGs decoded by "
        "TensorFlow vs Pillow; weight initialisation and batch order differ.",
        full_goal_estimate(rows, ref_rows, args.batch_size),
    ]
    if n_train < FULL_GOAL["train"] or args.epochs not in FULL_GOAL["epochs"]:
        notes.insert(0, small_scale_label(n_train, args.epochs))
    return common.table(headers, table_rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


def small_scale_label(n_train: int, epochs: int) -> str:
    return (
        f"**Small-scale comparison** ({n_train:,} training images, {epochs} epochs, one seed "
        "per run): a check that both trainers learn, not the full comparison (last line). "
        "One seed cannot tell a gap of a few points from seed-to-seed variation: compare "
        "runs with other --seed values before concluding."
    )


def full_goal_estimate(rows, ref_rows, batch_size) -> str:
    """Hours the full comparison (FULL_GOAL) takes at the training rates just measured."""
    images = FULL_GOAL["train"] // batch_size * batch_size
    epochs = sum(FULL_GOAL["epochs"]) * FULL_GOAL["seeds"]
    # the median epoch after the first (the first includes tracing and filling the data cache)
    rates = [
        statistics.median(r["images_per_sec"] for r in runs[1:] or runs)
        for runs in (rows, ref_rows)
    ]
    hours = [images * epochs / rate / 3600 for rate in rates]
    return (
        f"Full goal ({FULL_GOAL['train']:,} train images, {' and '.join(map(str, FULL_GOAL['epochs']))} "
        f"epochs, {FULL_GOAL['seeds']} seeds = {epochs} epochs per side): at the rates "
        f"measured here (median epoch after the first: {rates[0]:.0f} and {rates[1]:.0f} img/s) about {hours[0]:.1f} h for reszoo "
        f"and {hours[1]:.1f} h for the reference, {sum(hours):.1f} h run one after the other "
        "(training only; evaluation adds a little)."
    )


def main(argv=None):
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reszoo-bench-tta-") as tmp:
        folder = training_folder(args, tmp)
        split_path = os.path.join(tmp, "split.json")
        try:
            split = write_split(folder, args.holdout, split_path)
        except ValueError as e:  # reszoo's DataError: no classes, too few images to hold out
            print(f"bench_time_to_accuracy: {e}", file=sys.stderr)
            raise SystemExit(2) from e
        rows, summary, wall = run_reszoo(folder, args, tmp)
        reference = run_reference(split_path, args, tmp) if args.reference else None
    counts = (len(split["train"]), len(split["validation"]))
    if reference is None:
        title = f"Time to accuracy, resnet20 CIFAR-10, {args.epochs} epochs"
        body, slot = reszoo_report(rows, summary, wall, args, counts), f"{args.epochs} epochs"
        if args.set:
            title += ", " + ", ".join(args.set)
            slot += ", " + ", ".join(args.set)
    else:
        title = f"resnet20 side by side with the PyTorch reference, {args.epochs} epochs"
        body = side_by_side_report(rows, summary, reference, split, args)
        slot = (
            f"side by side with the PyTorch reference: {len(split['train']):,} train / "
            f"{len(split['validation']):,} held out, {args.epochs} epochs, seed {args.seed}"
        )
    common.record_results(
        "time_to_accuracy",
        f"{title} (bench_time_to_accuracy)",
        body,
        slot=slot,
        current=not args.quick,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
