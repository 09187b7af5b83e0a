"""Image files for evaluation and prediction: listing them, and decoding them in order.

Decoding is TensorFlow's (tf.io.decode_image, as reszoo.data's pipelines decode): JPEG, PNG,
GIF (first frame) and BMP, gray and RGBA turned into RGB. A file that does not decode is
reported with its reason, never fatal: the callers list such files and go on.
"""

from __future__ import annotations

import concurrent.futures
import os
import re

import numpy as np
import tensorflow as tf

from reszoo.errors import DataError, first_line

DECODE_THREADS = 4  # TensorFlow's decoders release the GIL
DECODE_WINDOW = 64  # files decoded ahead of the consumer


def decode_file(path: str) -> tuple:
    """(uint8 [h, w, 3], None) for an image file, or (None, why it cannot be used)."""
    try:
        contents = tf.io.read_file(path)
        if int(tf.strings.length(contents)) == 0:
            return None, "empty file"
        image = tf.io.decode_image(contents, channels=3, expand_animations=False)
    except (tf.errors.OpError, OSError) as error:
        return None, _reason(error)
    return image.numpy(), None


def _reason(error) -> str:
    """TensorFlow's decoder message without its node name and op suffix."""
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", first_line(error))
    return re.split(r"\s*\[Op:", text)[0].rstrip(". ") or type(error).__name__


def decoded_in_order(paths):
    """Yield (path, image or None, problem or None) for every path, in order, decoding a few
    threads ahead."""
    with concurrent.futures.ThreadPoolExecutor(DECODE_THREADS) as pool:
        for start in range(0, len(paths), DECODE_WINDOW):
            chunk = paths[start : start + DECODE_WINDOW]
            for path, (image, problem) in zip(chunk, pool.map(decode_file, chunk)):
                yield path, image, problem


def _walk_files(root: str) -> list:
    """Every non-hidden file under root, recursively, in sorted order."""
    found = []
    for directory, subdirs, files in os.walk(root, followlinks=True):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        found.extend(os.path.join(directory, f) for f in sorted(files) if not f.startswith("."))
    return found


def expand_paths(arguments) -> list:
    """The files named on a command line: a file as given, a folder's files (recursively,
    sorted). A path that does not exist is bad input."""
    files = []
    for argument in arguments:
        if os.path.isdir(argument):
            files.extend(_walk_files(argument))
        elif os.path.isfile(argument):
            files.append(argument)
        else:
            raise DataError(f"{argument} does not exist; pass image files or folders of images")
    return files


def class_folder(root: str) -> tuple:
    """(class names, file paths, labels) of a folder with one sub-folder per class (the sorted
    sub-folder names are the classes, as reszoo.data reads folders)."""
    try:
        names = sorted(
            e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")
        )
    except OSError as error:
        raise DataError(f"cannot read the folder {root}: {error}") from error
    if not names:
        raise DataError(
            f"{root} has no class sub-folders; a dataset folder holds one sub-folder per class "
            f"({root}/<class>/<image>)"
        )
    paths, labels = [], []
    for label, name in enumerate(names):
        found = _walk_files(os.path.join(root, name))
        paths.extend(found)
        labels.extend([label] * len(found))
    if not paths:
        raise DataError(f"{root} has class sub-folders but no files in them")
    return tuple(names), paths, np.asarray(labels, np.int64)
