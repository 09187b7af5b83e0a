"""Files of a run directory: atomic JSON and model writes, history CSV, plot, TensorBoard scalars.

Every write goes to a temporary file renamed into place, so a full disk or a kill leaves the
previous file or none, never a truncated one.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import shutil

import keras
import numpy as np
import tensorflow as tf

from reszoo.errors import CheckpointWriteError, first_line
from reszoo.training.recipes import jsonable


def write_json(path, value):
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(jsonable(value), f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:  # a full disk leaves the old file, never a truncated one
        remove_quietly(tmp)
        raise


def remove_quietly(path):
    try:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.remove(path)
    except OSError:
        pass


def checkpoint_failure(directory, step, error) -> str:
    """Remove what a failed save of checkpoint ``step`` left (partial data/index files, temp
    directories) unless it did become the latest, and say what happened."""
    latest = tf.train.latest_checkpoint(directory)
    prefix = os.path.join(directory, f"ckpt-{step}")
    if latest != prefix:
        for leftover in tf.io.gfile.glob(prefix + ".*") + tf.io.gfile.glob(prefix + "_temp*"):
            remove_quietly(leftover)
    reason = (
        f"{error.strerror} (errno {error.errno})"
        if isinstance(error, OSError) and error.strerror
        else first_line(error)
    )
    return (
        f"cannot write checkpoint ckpt-{step} in {directory}: {reason}; "
        + (f"the last good checkpoint {latest} is kept" if latest else "no checkpoint kept")
        + "; free space or fix the directory, then rerun the same command to resume"
    )


def save_model_atomically(model, path):
    """model.save into a temporary .keras file renamed over ``path``: a full disk leaves no
    truncated model.keras."""
    tmp = os.path.join(os.path.dirname(path), ".model-tmp.keras")
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except (OSError, tf.errors.OpError) as e:
        remove_quietly(tmp)
        raise CheckpointWriteError(f"cannot write {path}: {e}") from e


def read_history(path, upto_epoch):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for row in csv.DictReader(f):
                try:
                    if int(row["epoch"]) <= upto_epoch:
                        rows.append(
                            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
                        )
                except (KeyError, ValueError):
                    continue
    for r in rows:
        r["epoch"] = int(r["epoch"])
    return rows


HISTORY_FIELDS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "images_per_sec",
    "epoch_time",
]


def write_history(path, rows):
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in HISTORY_FIELDS})
    os.replace(tmp, path)


def plot_history(rows, path) -> str | None:
    """Write learning curves to path; returns None, or why it was skipped."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install matplotlib) - learning_curves.png skipped"
    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy")):
        ax.plot(epochs, [r.get(key) for r in rows], label=f"train {key}")
        if any(r.get(f"val_{key}") is not None for r in rows):
            ax.plot(epochs, [r.get(f"val_{key}") for r in rows], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_title(key)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def package_versions():
    out = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }
    try:
        import reszoo

        out["reszoo"] = getattr(reszoo, "__version__", None)
    except Exception:  # noqa: BLE001
        pass
    return out


def _scalar_metadata():
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata()
    meta.plugin_data.plugin_name = "scalars"  # what TensorBoard's scalar dashboard reads
    return meta.SerializeToString()


def summary_scalar(writer, tag, value, step):
    """A TensorBoard scalar without needing the tensorboard package (tf.summary.scalar does)."""
    if writer is None or value is None:
        return
    with writer.as_default():
        tf.summary.write(
            tag, tf.constant(float(value), tf.float32), step=step, metadata=_scalar_metadata()
        )
