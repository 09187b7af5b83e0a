"""Helpers for the evaluate/predict tests: small runs and image folders, and an evaluation
written independently of reszoo.evaluation (the definitions in reszoo/evaluation/metrics.py and
transforms.py, computed here with plain NumPy, PIL and TensorFlow ops)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from PIL import Image
from serving_support import tiny_overrides

import reszoo


def tiny_run(
    path: Path, classes: int = 3, size: int = 16, seed: int = 1, names=None
) -> keras.Model:
    """A run directory holding a small random float32 ResNet (model.keras and config.json);
    its classes are `names`, by default class_0, class_1, ..."""
    keras.utils.set_random_seed(seed)
    model = reszoo.build("resnet20", **tiny_overrides("resnet20", size=size, classes=classes))
    path.mkdir(parents=True)
    model.save(path / "model.keras")
    config = {
        "model": "resnet20",
        "build": None,
        "class_names": list(names or [f"class_{i}" for i in range(classes)]),
        "dataset": "tiny-test-data",
        "augment": "auto",
        "precision": "float32",
    }
    (path / "config.json").write_text(json.dumps(config))
    return model


def image_folder(root: Path, names, shapes, per_class: int = 2, seed: int = 0) -> list:
    """root/<name>/<i>.png, random pixels tinted per class, the sizes taken in turn from
    `shapes`; returns the files in sorted order (class, then file name)."""
    rng = np.random.default_rng(seed)
    files = []
    for label, name in enumerate(names):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            h, w = shapes[(label * per_class + i) % len(shapes)]
            pixels = rng.integers(0, 200, (h, w, 3)) + np.array([label * 20, 0, 40])
            path = root / name / f"{i:02d}.png"
            Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path)
            files.append(path)
    return files


def read_png(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def fit(image: np.ndarray, size: tuple) -> np.ndarray:
    """The centred window with the target's aspect ratio, resized (bilinear, antialiased) and
    rounded to whole pixel values: reszoo.data's evaluation transform at crop fraction 1."""
    h, w = image.shape[:2]
    scale = max(size[0] / h, size[1] / w)
    ch, cw = min(h, round(size[0] / scale)), min(w, round(size[1] / scale))
    top, left = (h - ch) // 2, (w - cw) // 2
    window = image[top : top + ch, left : left + cw]
    if window.shape[:2] == tuple(size):
        return window.astype(np.float32)
    resized = tf.image.resize(window, size, method="bilinear", antialias=True).numpy()
    return np.round(np.clip(resized, 0, 255)).astype(np.float32)


def softmax64(logits) -> np.ndarray:
    z = np.asarray(logits, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def logits_in_batches(call, images: np.ndarray, batch_size: int) -> np.ndarray:
    return np.concatenate(
        [np.asarray(call(images[i : i + batch_size])) for i in range(0, len(images), batch_size)]
    )


def reference_numbers(logits, labels, num_classes: int, flipped_logits=None) -> dict:
    """top-1, top-5, loss and the confusion matrix, computed from the definitions."""
    labels = np.asarray(labels)
    rows = np.arange(len(labels))
    if flipped_logits is None:
        z = np.asarray(logits, np.float64)
        m = z.max(axis=1)
        losses = np.log(np.sum(np.exp(z - m[:, None]), axis=1)) - (z[rows, labels] - m)
        probs = softmax64(logits)
        top5 = tf.math.in_top_k(labels, tf.constant(logits, tf.float32), min(5, num_classes))
        top5 = int(np.sum(top5.numpy()))
    else:
        probs = (softmax64(logits) + softmax64(flipped_logits)) / 2
        losses = -np.log(probs[rows, labels])
        rank = np.array([np.sum(p > p[y]) for p, y in zip(probs, labels)])
        top5 = int(np.sum(rank < min(5, num_classes)))
    predicted = np.argmax(probs, axis=1)
    confusion = np.zeros([num_classes, num_classes], int)
    for y, p in zip(labels, predicted):
        confusion[y, p] += 1
    return {
        "images": len(labels),
        "top1_correct": int(np.sum(predicted == labels)),
        "top1": float(np.mean(predicted == labels)),
        "top5_correct": top5,
        "top5": top5 / len(labels),
        "loss": math.fsum(losses.tolist()) / len(labels),
        "confusion_matrix": confusion.tolist(),
    }


def assert_same_numbers(result: dict, expected: dict) -> None:
    for key, value in expected.items():
        assert result[key] == value, (key, result[key], value)
