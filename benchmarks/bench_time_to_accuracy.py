"""Time to accuracy: resnet20 on the shared CIFAR-10 training JPEGs (issue 5, 1e).

The 50,000 CIFAR-10 training JPEGs (/work/shared/data/cifar10-train-jpeg.tar.gz, extracted to a
temporary folder) with 500 images per class held out (``validation_split=5000``: reszoo.data's
fixed per-class split; the CIFAR-10 test split is not used) are trained with
``reszoo.fit("resnet20", folder, ...)`` and its defaults (precision "auto", CIFAR augmentation,
SGD momentum 0.9, weight decay 1e-4 on kernels) on a short CPU schedule instead of the
paper's 182 epochs: ``--epochs`` epochs (default 15), lr 0.1 at batch 128, one linear warm-up
epoch (when epochs >= 3), cosine decay to 0. Printed and recorded: validation accuracy per epoch,
the epoch's training images/s, the wall time since the start of fit (data loading, tracing and
evaluation included), and the wall time at which validation accuracy first reached 80/85/90%.

A full run takes about one minute per epoch on this 2-core CPU when it is quiet (15 epochs:
15 min, 2026-11-27), and up to twice that under load; --quick is 2 epochs (to prove the script
works end to end, not a result worth quoting).

    python benchmarks/bench_time_to_accuracy.py --quick
    python benchmarks/bench_time_to_accuracy.py --epochs 15 [--output runs/tta-resnet20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time

import common
import keras

import reszoo

CIFAR_TAR = os.environ.get("RESZOO_CIFAR_TAR", "/work/shared/data/cifar10-train-jpeg.tar.gz")
THRESHOLDS = (0.80, 0.85, 0.90)


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 epochs")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--output", help="run directory kept after the run (default: a temp dir)")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    epochs = 2 if args.quick else args.epochs
    if not os.path.exists(CIFAR_TAR):
        raise SystemExit(f"{CIFAR_TAR} not found: nothing to train on")
    tmp = tempfile.mkdtemp(prefix="reszoo-bench-tta-")
    try:
        subprocess.run(["tar", "-xzf", CIFAR_TAR, "-C", tmp], check=True)
        out = args.output or os.path.join(tmp, "run")
        t_start = time.perf_counter()
        clock = WallClock(t_start)
        result = reszoo.fit(
            "resnet20",
            os.path.join(tmp, "train"),
            epochs=epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            validation_split=5000,
            schedule="cosine",
            lr_steps=[],
            warmup_epochs=1 if epochs >= 3 else 0,
            output_dir=out,
            callbacks=[clock],
            verbose=2,
        )
        wall = time.perf_counter() - t_start
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    hist = result.history
    rows = []
    for i, row in enumerate(clock.rows):
        rows.append(
            [
                row["epoch"],
                hist["lr"][i],
                hist["loss"][i],
                hist["accuracy"][i],
                row.get("val_accuracy"),
                hist["images_per_sec"][i],
                hist["epoch_time"][i],
                row["wall"],
            ]
        )
    reached = []
    for th in THRESHOLDS:
        hit = next((r for r in clock.rows if (r.get("val_accuracy") or 0) >= th), None)
        reached.append(
            f"{th:.0%}: "
            + (f"epoch {hit['epoch']}, {hit['wall'] / 60:.1f} min" if hit else "not reached")
        )
    s = result.summary
    body = common.table(
        [
            "epoch",
            "lr (end)",
            "train loss",
            "train acc",
            "val acc",
            "train img/s",
            "epoch s",
            "wall s",
        ],
        rows,
    )
    body += (
        f"\n\n- resnet20, CIFAR-10 train JPEGs, 45,000 train / 5,000 held out (500 per class); "
        f"{epochs} epochs, batch {args.batch_size}, lr {args.lr} cosine"
        f"{', 1 warm-up epoch' if epochs >= 3 else ''}; precision {s.get('precision')}; "
        f"final val accuracy {s['final_metrics'].get('val_accuracy', float('nan')):.4f}, "
        f"best {s.get('best_val_accuracy') or float('nan'):.4f}; wall {wall / 60:.1f} min "
        f"(fit's own: {s.get('wall_time_sec', 0) / 60:.1f} min).\n"
        f"- Time to accuracy: {'; '.join(reached)}."
        + (
            "\n- --quick run (2 epochs): proves the script works; not a result to quote."
            if args.quick
            else ""
        )
    )
    common.record_results(
        "time_to_accuracy",
        f"Time to accuracy, resnet20 CIFAR-10, {epochs} epochs (bench_time_to_accuracy)",
        body,
        slot=f"{epochs} epochs",
        current=not args.quick,
        record=not args.no_record,
    )


if __name__ == "__main__":
    main()
