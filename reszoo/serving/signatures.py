"""The signatures of a SavedModel export, as one table: SIGNATURES.

Each entry says what a client sends (input name, dtype, shape, in words), how the serving
graph turns that request into logits, and how to carry given pixels in such a request. The
table drives the serving functions (reszoo/serving/saved_model.py), the TF Serving warm-up
records (reszoo/serving/warmup.py), the export's metadata, the `--signature` choices of
`reszoo export` and the per-signature tests: adding a signature is one entry here plus a test
of what is special about it.

Every signature has the same outputs (OUTPUTS): logits float32 [B, C], probabilities float32
[B, C] (softmax), classes int64 [B] (argmax) and class_names string [B]. This module does not
import TensorFlow, so the command line can list the choices before TensorFlow starts.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from collections.abc import Callable

import numpy as np

from reszoo.errors import ExportError

OUTPUTS = ("logits", "probabilities", "classes", "class_names")
PIXEL_BATCH = (None, None, None, 3)


@dataclasses.dataclass(frozen=True)
class Signature:
    """One serving signature.

    input_name, dtype, shape: the request tensor (dtype by TensorFlow name).
    description: what the client sends, one line (metadata, README, --help).
    logits: (graph, request tensor) -> float32 logits [B, C], through the shared
        reszoo.serving.graph.ServingGraph (`pixel_logits` or `encoded_logits`), which checks
        the request's shape and limits first.
    encode: uint8 RGB pixels [B, h, w, 3] (numpy) -> the request value that carries exactly
        those pixels: the warm-up records and the tests use it.
    """

    input_name: str
    dtype: str
    shape: tuple
    description: str
    logits: Callable
    encode: Callable

    def metadata(self) -> dict:
        shape = [-1 if d is None else d for d in self.shape]
        return {
            "inputs": {self.input_name: self.dtype},
            "input_shape": shape,
            "description": self.description,
            "outputs": list(OUTPUTS),
        }


def png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG file of uint8 RGB pixels [h, w, 3] (8-bit truecolour, no filtering), written with
    zlib so that neither TensorFlow nor an imaging library is needed."""
    height, width, _ = pixels.shape
    rows = b"".join(b"\0" + np.ascontiguousarray(row, np.uint8).tobytes() for row in pixels)

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _pixel_logits(graph, images):
    return graph.pixel_logits(images)


def _encoded_logits(graph, image_bytes):
    return graph.encoded_logits(image_bytes)


def _png_files(pixels: np.ndarray) -> np.ndarray:
    return np.array([png_bytes(image) for image in pixels], dtype=object)


SIGNATURES = {
    "serving_default": Signature(
        input_name="images",
        dtype="float32",
        shape=PIXEL_BATCH,
        description="RGB pixel values 0..255 as float32; NaN or infinity is refused",
        logits=_pixel_logits,
        encode=lambda pixels: pixels.astype(np.float32),
    ),
    "serving_uint8": Signature(
        input_name="images",
        dtype="uint8",
        shape=PIXEL_BATCH,
        description="RGB pixels as uint8 (4x less to send than float32)",
        logits=_pixel_logits,
        encode=lambda pixels: pixels.astype(np.uint8),
    ),
    "serving_image_bytes": Signature(
        input_name="image_bytes",
        dtype="string",
        shape=(None,),
        description="encoded JPEG, PNG, GIF (first frame) or BMP files, any size",
        logits=_encoded_logits,
        encode=_png_files,
    ),
    "serving_unit_float": Signature(
        input_name="images",
        dtype="float32",
        shape=PIXEL_BATCH,
        description="RGB pixel values 0..1 as float32 (as from tf.image.convert_image_dtype)",
        logits=lambda graph, images: graph.pixel_logits(images * 255.0),
        encode=lambda pixels: pixels.astype(np.float32) / 255.0,
    ),
}


def check_names(names) -> list[str]:
    """The signatures to export, in table order (None: all); ExportError for an unknown one."""
    if names is None:
        return list(SIGNATURES)
    if isinstance(names, str):
        names = [names]
    names = list(names)
    unknown = [n for n in names if n not in SIGNATURES]
    if unknown or not names:
        raise ExportError(
            f"unknown signature(s) {unknown}; choose one or more of {list(SIGNATURES)}"
            if unknown
            else f"no signature chosen; choose one or more of {list(SIGNATURES)}"
        )
    return [n for n in SIGNATURES if n in names]
