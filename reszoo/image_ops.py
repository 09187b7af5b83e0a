"""Graph-mode image ops used inside tf.data maps: decoding only the window a crop needs,
centre and random-resized windows, resizing, and CIFAR-style crop + flip vectorised per batch.
"""

from __future__ import annotations

import tensorflow as tf

RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)


def _to_rgb(image):
    """Decoded [h, w, c] -> [h, w, 3]: gray (+alpha) is repeated, alpha is dropped."""
    channels = image.shape[-1]
    if channels == 3:
        return image
    if channels in (1, 2):
        return tf.tile(image[..., :1], [1, 1, 3])
    if channels == 4:
        return image[..., :3]
    image = tf.cond(
        tf.shape(image)[-1] < 3,
        lambda: tf.tile(image[..., :1], [1, 1, 3]),
        lambda: image[..., :3],
    )
    image.set_shape([None, None, 3])
    return image


def _decode(contents):
    image = tf.io.decode_image(contents, channels=3, expand_animations=False, dtype=tf.uint8)
    image.set_shape([None, None, 3])
    return image


def windowed(source, kind, window_fn):
    """Decode (when encoded) only the window ``window_fn(height_width) -> [y, x, h, w]``."""
    if kind == "decoded":
        image = _to_rgb(source)
        win = window_fn(tf.shape(image)[:2])
        return tf.slice(image, tf.stack([win[0], win[1], 0]), tf.stack([win[2], win[3], 3]))

    def jpeg():
        win = window_fn(tf.io.extract_jpeg_shape(source)[:2])
        return tf.io.decode_and_crop_jpeg(source, win, channels=3)

    def other():
        image = _decode(source)
        win = window_fn(tf.shape(image)[:2])
        return tf.slice(image, tf.stack([win[0], win[1], 0]), tf.stack([win[2], win[3], 3]))

    image = tf.cond(tf.io.is_jpeg(source), jpeg, other)
    image.set_shape([None, None, 3])
    return image


def center_window(size, fraction):
    """Centered window that, resized to ``size``, equals "resize so that size/fraction fits,
    then center crop ``size``" (fraction 1: fit and crop the overflow)."""
    th, tw = float(size[0]) / fraction, float(size[1]) / fraction

    def window(hw):
        h, w = tf.cast(hw[0], tf.float32), tf.cast(hw[1], tf.float32)
        scale = tf.maximum(th / h, tw / w)
        ch = tf.minimum(hw[0], tf.maximum(1, tf.cast(tf.round(size[0] / scale), tf.int32)))
        cw = tf.minimum(hw[1], tf.maximum(1, tf.cast(tf.round(size[1] / scale), tf.int32)))
        return tf.stack([(hw[0] - ch) // 2, (hw[1] - cw) // 2, ch, cw])

    return window


def random_resized_window(hw):
    begin, crop, _ = tf.image.sample_distorted_bounding_box(
        tf.concat([hw, [3]], 0),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        min_object_covered=0.0,
        aspect_ratio_range=RRC_RATIO,
        area_range=RRC_SCALE,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    return tf.stack([begin[0], begin[1], crop[0], crop[1]])


def resize(image, size):
    """uint8/float [h, w, 3] -> float32 [H, W, 3] in 0..255 (identity when already that size)."""
    h, w = size
    if image.shape[0] == h and image.shape[1] == w:
        return tf.cast(image, tf.float32)

    def do_resize():
        resized = tf.image.resize(image, size, method="bilinear", antialias=True)
        return tf.clip_by_value(resized, 0.0, 255.0)

    shape = tf.shape(image)
    out = tf.cond(
        tf.logical_and(tf.equal(shape[0], h), tf.equal(shape[1], w)),
        lambda: tf.cast(image, tf.float32),
        do_resize,
    )
    out.set_shape([h, w, 3])
    return out


def to_uint8(image):
    return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)


def cifar_batch_augment(images, pad):
    """Per-image random crop of a ``pad``-reflect-padded image and random horizontal flip,
    vectorized over the batch (gathers, no per-image ops)."""
    shape = tf.shape(images)
    b = shape[0]
    h, w = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
    oy = tf.random.uniform([b], 0, 2 * pad + 1, dtype=tf.int32)
    ox = tf.random.uniform([b], 0, 2 * pad + 1, dtype=tf.int32)
    rows = oy[:, None] + tf.range(h)[None, :]
    out = tf.gather(padded, rows, axis=1, batch_dims=1)
    cols = ox[:, None] + tf.range(w)[None, :]
    out = tf.gather(out, cols, axis=2, batch_dims=1)
    flip = tf.random.uniform([b]) < 0.5
    return tf.where(flip[:, None, None, None], tf.reverse(out, axis=[2]), out)
