"""In-graph checks of one request, run before anything large is allocated.

Each function returns assertion ops; the caller makes the work that follows depend on them, so
a bad request fails with an InvalidArgument error that names the input and what to do, and the
server carries on. The limits come from ServingLimits (reszoo/serving/limits.py).
"""

from __future__ import annotations

import tensorflow as tf

from reszoo.serving.limits import ServingLimits


def batch_checks(input_name: str, batch: tf.Tensor, limits: ServingLimits) -> list:
    """At least one image, at most max_batch_size."""
    return [
        tf.debugging.assert_positive(batch, message="empty batch: send at least one image"),
        tf.debugging.Assert(
            batch <= limits.max_batch_size,
            [
                f"{input_name}: more images in one request than max_batch_size="
                f"{limits.max_batch_size} allows; split the request. Images sent:",
                batch,
            ],
        ),
    ]


def pixel_checks(input_name: str, sizes: tf.Tensor, limits: ServingLimits) -> list:
    """sizes: int64 [B, 2] (height, width) of each image, as sent or declared by its header.
    Every image at most max_image_pixels, all of them together at most max_request_pixels."""
    pixels = sizes[:, 0] * sizes[:, 1]
    largest = tf.argmax(pixels)
    total = tf.reduce_sum(pixels)
    return [
        tf.debugging.Assert(
            tf.reduce_max(pixels) <= limits.max_image_pixels,
            [
                f"{input_name}: an image has more pixels (height x width) than "
                f"max_image_pixels={limits.max_image_pixels} allows; send a smaller image. "
                "Its index, height and width:",
                largest,
                sizes[largest, 0],
                sizes[largest, 1],
            ],
        ),
        tf.debugging.Assert(
            total <= limits.max_request_pixels,
            [
                f"{input_name}: the images of one request have more pixels in total than "
                f"max_request_pixels={limits.max_request_pixels} allows; send fewer or "
                "smaller images per request. Pixels sent:",
                total,
            ],
        ),
    ]
