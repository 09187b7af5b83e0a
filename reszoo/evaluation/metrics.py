"""Accuracy, loss and the confusion matrix from a classifier's float32 logits, in float64 NumPy.

Definitions (what an independent evaluation must compute to get the same numbers):
  probabilities  softmax of the logits in float64; with test-time flips, the mean of the
                 softmax of the image and that of its mirror image
  top-5          the true class is among the 5 most probable (every class when there are
                 fewer); classes tied with it count for it, as tf.math.in_top_k counts them
  top-1          the first most probable class (numpy.argmax) is the true one
  loss           mean cross-entropy: log(sum(exp(z - max z))) - (z_true - max z) per image
                 without flips, -log(p_true) of the mean probabilities with them; the mean is
                 math.fsum / count, so it does not depend on the order of the images
  confusion      rows: true class, columns: the top-1 class
"""

from __future__ import annotations

import math

import numpy as np

TOP_K = 5


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    return np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(z)), labels]


class Totals:
    """Running counts over batches of (probabilities, per-image losses, labels)."""

    def __init__(self, num_classes: int):
        self.k = min(TOP_K, num_classes)
        self.confusion = np.zeros([num_classes, num_classes], np.int64)
        self.top_k_correct = 0
        self.losses = []

    def add(self, probabilities: np.ndarray, losses: np.ndarray, labels: np.ndarray) -> None:
        true_p = probabilities[np.arange(len(labels)), labels]
        self.top_k_correct += int(((probabilities > true_p[:, None]).sum(axis=1) < self.k).sum())
        np.add.at(self.confusion, (labels, probabilities.argmax(axis=1)), 1)
        self.losses.extend(losses.tolist())

    def summary(self, class_names) -> dict:
        images = int(self.confusion.sum())
        correct = int(np.trace(self.confusion))
        per_class = [
            {
                "class": str(name),
                "images": int(row.sum()),
                "correct": int(row[i]),
                "accuracy": float(row[i] / row.sum()) if row.sum() else None,
            }
            for i, (name, row) in enumerate(zip(class_names, self.confusion))
        ]
        return {
            "images": images,
            "top1": correct / images,
            "top1_correct": correct,
            "top5": self.top_k_correct / images,
            "top5_correct": self.top_k_correct,
            "loss": math.fsum(self.losses) / images,
            "per_class": per_class,
            "confusion_matrix": self.confusion.tolist(),
        }
