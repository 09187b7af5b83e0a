"""BatchNormalization that runs TensorFlow's fused kernel on the TensorFlow backend.

Keras 3's BatchNormalization upcasts bfloat16 activations to float32 and normalises with about
ten separate ops forward and more backward. On this project's 2-core CPU that was most of the
half of resnet20's training step not spent in convolutions (benchmarks/profile_step.py;
benchmarks/history/notes-2026-11-27.md). TensorFlow's
FusedBatchNormV3 does the same work in one kernel each way and reads bfloat16 directly.

The layer keeps Keras's variables (gamma, beta, moving_mean, moving_variance) and its
moving-average rule (biased batch variance), so weights and checkpoints move freely between it
and keras.layers.BatchNormalization. Other backends, and settings the kernel does not cover
(masks, renorm, synchronized, a channel axis other than the last of a 4-D input, other dtypes),
take Keras's own path. So does bfloat16 when a GPU is visible: TensorFlow registers the GPU
kernel for float32 and float16 only (fused_batch_norm_op.cc), and soft placement would move
the op to the CPU.
"""

from __future__ import annotations

import functools

import keras
from keras import ops

# The fused kernel's smallest epsilon (cuDNN's limit, rounded up as TensorFlow's own
# fused_batch_norm wrapper and Keras 2 did). 1e-5, the PyTorch default, is raised to this;
# the output changes by under 5e-4 relative even for a channel whose variance is zero.
FUSED_MIN_EPSILON = 1.001e-5
_FUSED_DTYPES = ("float32", "bfloat16", "float16")


@functools.lru_cache(maxsize=1)
def gpu_visible() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


@keras.saving.register_keras_serializable(package="reszoo")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """keras.layers.BatchNormalization with TensorFlow's one-kernel path where it applies."""

    def _fusable(self, inputs, mask) -> bool:
        return (
            keras.backend.backend() == "tensorflow"
            and mask is None
            and not self.renorm
            and not self.synchronized
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and self.compute_dtype in _FUSED_DTYPES
            and not (self.compute_dtype == "bfloat16" and gpu_visible())
        )

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = ops.cast(inputs, self.compute_dtype)
        channels = inputs.shape[-1]
        scale = ops.cast(self.gamma, "float32") if self.scale else ops.ones((channels,))
        offset = ops.cast(self.beta, "float32") if self.center else ops.zeros((channels,))
        epsilon = max(float(self.epsilon), FUSED_MIN_EPSILON)
        if training and self.trainable:
            empty = tf.zeros((0,), tf.float32)
            outputs, mean, unbiased_variance, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x,
                scale=scale,
                offset=offset,
                mean=empty,
                variance=empty,
                epsilon=epsilon,
                is_training=True,
                data_format="NHWC",
            )
            # The kernel returns the Bessel-corrected variance; Keras averages the biased one.
            count = tf.cast(tf.size(x) // channels, tf.float32)
            variance = unbiased_variance * (count - 1.0) / tf.maximum(count, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
            return outputs
        outputs, *_ = tf.raw_ops.FusedBatchNormV3(
            x=x,
            scale=scale,
            offset=offset,
            mean=ops.cast(self.moving_mean, "float32"),
            variance=ops.cast(self.moving_variance, "float32"),
            epsilon=epsilon,
            is_training=False,
            data_format="NHWC",
        )
        return outputs
