"""The serving graph every signature shares: variables, class names, checks, resizing, network.

A signature (reszoo/serving/signatures.py) turns its request into logits through
`pixel_logits` (pixel tensors) or `encoded_logits` (encoded files), and `outputs` turns logits
into the four outputs. The Keras model is only closed over, never tracked: the SavedModel holds
plain variables, a lookup table and functions, which tf.saved_model.load and TF Serving restore
without Keras or reszoo.

Input size: a model built for a fixed height and width gets every image resized to it in the
graph (bilinear, aspect ratio not kept; an image of that size goes in unchanged). A model built
with free dimensions (`input_shape=(None, None, 3)`) gets each image at its own size: a pixel
tensor runs as one batch, encoded files run one image at a time (they may differ in size). A
dimension that is free keeps the image's own size while a fixed one is resized to.
"""

from __future__ import annotations

import tensorflow as tf

from reszoo.serving import image_headers
from reszoo.serving.limits import ServingLimits
from reszoo.serving.request_checks import batch_checks, pixel_checks


def _class_table(class_names_path: str) -> tf.lookup.StaticHashTable:
    """Class index -> name, read from the text file that the SavedModel keeps as an asset."""
    return tf.lookup.StaticHashTable(
        tf.lookup.TextFileInitializer(
            class_names_path,
            key_dtype=tf.int64,
            key_index=tf.lookup.TextFileIndex.LINE_NUMBER,
            value_dtype=tf.string,
            value_index=tf.lookup.TextFileIndex.WHOLE_LINE,
        ),
        default_value="",
    )


class ServingGraph:
    """What the signatures of one export share. `module` is the tf.Module to save."""

    def __init__(self, model, class_names_path: str, limits: ServingLimits):
        self.height, self.width = model.inputs[0].shape[1:3]
        self.num_classes = int(model.outputs[0].shape[-1])
        self.limits = limits
        self.free_size = self.height is None or self.width is None
        self.module = tf.Module()
        self.module.model_variables = list(model.variables)
        self.module.class_table = _class_table(class_names_path)
        # One trace of the network, shared by every signature.
        spec = tf.TensorSpec([None, self.height, self.width, 3], tf.float32)
        self._network = tf.function(
            lambda images: model(images, training=False), input_signature=[spec]
        )

    # ------------------------------------------------------------------ outputs

    def outputs(self, logits: tf.Tensor) -> dict:
        classes = tf.argmax(logits, axis=-1, output_type=tf.int64)
        return {
            "logits": tf.identity(logits, name="logits"),
            "probabilities": tf.nn.softmax(logits, axis=-1),
            "classes": classes,
            "class_names": self.module.class_table.lookup(classes),
        }

    def _logits(self, images: tf.Tensor) -> tf.Tensor:
        logits = tf.cast(self._network(images), tf.float32)
        return tf.ensure_shape(logits, [None, self.num_classes])

    # ------------------------------------------------------------------ pixels

    def _to_model_size(self, images: tf.Tensor) -> tf.Tensor:
        """uint8 or float [B, h, w, 3] or [h, w, 3] -> float32 at the model's size (fixed
        dimensions resized to, free ones kept). uint8 is resized as it is: no float copy of a
        large image is made first."""
        own = tf.shape(images)[-3:-1]
        target = tf.stack(
            [
                own[0] if self.height is None else self.height,
                own[1] if self.width is None else self.width,
            ]
        )
        return tf.cond(
            tf.reduce_all(tf.equal(own, target)),
            lambda: tf.cast(images, tf.float32),
            lambda: tf.image.resize(images, target, method="bilinear"),
        )

    def pixel_logits(self, images: tf.Tensor) -> tf.Tensor:
        """Pixel tensor [B, h, w, 3] (uint8, or float 0..255) -> float32 logits [B, C]."""
        # The signature's shape is not enforced when a server feeds a tensor: check it here,
        # first, so a wrong rank or channel count fails with a message that names the input.
        images = tf.ensure_shape(
            images, [None, None, None, 3], name="images_must_be_batch_height_width_3"
        )
        shape = tf.shape(images, out_type=tf.int64)
        with tf.control_dependencies(batch_checks("images", shape[0], self.limits)):
            sizes = tf.tile(shape[None, 1:3], tf.stack([shape[0], 1]))
            checks = [
                tf.debugging.assert_positive(
                    shape[1:3], message="every image needs a height and width of at least 1 pixel"
                ),
                *pixel_checks("images", sizes, self.limits),
            ]
        with tf.control_dependencies(checks):
            if images.dtype.is_floating:
                images = tf.debugging.check_numerics(
                    images, "images: every pixel must be a finite number, not NaN or infinity"
                )
            images = self._to_model_size(images)
        return self._logits(tf.ensure_shape(images, [None, self.height, self.width, 3]))

    # ------------------------------------------------------------------ encoded files

    def _decode(self, data: tf.Tensor, decode_length: tf.Tensor) -> tf.Tensor:
        """One encoded file -> float32 [h, w, 3] at the model's size."""
        image = image_headers.decode_rgb(data, decode_length)
        checks = [
            tf.debugging.assert_positive(
                tf.shape(image)[:2], message="image_bytes: a decoded image has no pixels"
            )
        ]
        with tf.control_dependencies(checks):
            image = self._to_model_size(image)
        return tf.ensure_shape(image, [self.height, self.width, 3])

    def _one_image_logits(self, element) -> tf.Tensor:
        data, decode_length = element
        return self._logits(self._decode(data, decode_length)[None])[0]

    def encoded_logits(self, image_bytes: tf.Tensor) -> tf.Tensor:
        """Encoded JPEG/PNG/GIF/BMP files [B] -> float32 logits [B, C]; sizes are checked from
        the headers before any file is decoded."""
        image_bytes = tf.ensure_shape(
            image_bytes, [None], name="image_bytes_must_be_a_list_of_encoded_images"
        )
        known = image_headers.recognised(image_bytes)
        checks = batch_checks("image_bytes", tf.size(image_bytes, tf.int64), self.limits)
        checks.append(
            tf.debugging.Assert(
                tf.reduce_all(known),
                [
                    "image_bytes: every element must be an encoded JPEG, PNG, GIF or BMP file; "
                    "element(s) not recognised:",
                    tf.where(tf.logical_not(known))[:, 0],
                ],
            )
        )
        with tf.control_dependencies(checks):
            declared = image_headers.encoded_sizes(image_bytes)
        elements = (image_bytes, declared[:, 2])
        with tf.control_dependencies(pixel_checks("image_bytes", declared[:, :2], self.limits)):
            if self.free_size:  # images may differ in size: one at a time
                return tf.map_fn(
                    self._one_image_logits,
                    elements,
                    fn_output_signature=tf.TensorSpec([self.num_classes], tf.float32),
                )
            images = tf.map_fn(
                lambda element: self._decode(*element),
                elements,
                fn_output_signature=tf.TensorSpec([self.height, self.width, 3], tf.float32),
            )
        return self._logits(images)
