"""The compiled steps fit runs: train (n steps per call), evaluate, sync BatchNorm statistics.

Keras 3's model.fit cannot run under MultiWorkerMirroredStrategy, so the step is
ours: ``strategy.run`` inside a ``tf.function`` (``steps_per_execution`` steps per call),
``tf.GradientTape``, the per-replica loss averaged over the *global* batch with
``tf.nn.compute_average_loss``, and a Keras 3 optimizer (wrapped in ``LossScaleOptimizer`` for
mixed_float16). The same code runs on every strategy.

Weight decay (SGD, and any optimizer whose OPTIMIZERS entry says l2_in_loss): an L2 term ``weight_decay / 2 * sum(w**2)`` over convolution and dense
*kernels* only (no BatchNorm gamma/beta, no biases) is added to the loss; its gradient is
``weight_decay * w``, i.e. PyTorch's ``SGD(weight_decay=...)``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from reszoo.training.optimizers import loss_weight_decay

_SUM = tf.distribute.ReduceOp.SUM
_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")


def _is_kernel(variable) -> bool:
    name = getattr(variable, "path", None) or variable.name
    return name.split("/")[-1].split(":")[0] in _KERNEL_NAMES


def _labels_and_loss(labels, logits, num_classes, label_smoothing):
    """(per-example cross-entropy, per-example correct) from float32 logits."""
    if labels.shape.rank == 2:  # soft labels (mixup / cutmix)
        target = tf.cast(labels, tf.float32)
        hard = tf.argmax(target, axis=-1, output_type=tf.int32)
    else:
        hard = tf.cast(tf.reshape(labels, [-1]), tf.int32)
        target = None
    if target is None and label_smoothing == 0:
        ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=hard, logits=logits)
    else:
        if target is None:
            target = tf.one_hot(hard, num_classes, dtype=tf.float32)
        if label_smoothing:
            target = target * (1.0 - label_smoothing) + label_smoothing / num_classes
        ce = tf.nn.softmax_cross_entropy_with_logits(labels=target, logits=logits)
    correct = tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=tf.int32), hard), tf.float32)
    return ce, correct


def _regularization(model, decay_vars, l2):
    """The model's own losses plus the SGD L2 term, as float32 terms to add (maybe none)."""
    extra = [tf.cast(x, tf.float32) for x in model.losses]
    if l2 and decay_vars:
        squares = [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in decay_vars]
        extra.append(0.5 * l2 * tf.add_n(squares))
    return extra


def _make_forward_backward(model, optimizer, cfg, global_batch, num_classes):
    """Per replica: (gradients, data loss, correct count, example count) of one batch."""
    variables = model.trainable_variables
    decay_vars = [v for v in variables if _is_kernel(v)]
    l2 = loss_weight_decay(cfg)
    smoothing = float(cfg.label_smoothing)

    def forward_backward(images, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            ce, correct = _labels_and_loss(labels, logits, num_classes, smoothing)
            data_loss = tf.nn.compute_average_loss(ce, global_batch_size=global_batch)
            loss = data_loss
            extra = _regularization(model, decay_vars, l2)
            if extra:
                loss = loss + tf.nn.scale_regularization_loss(tf.add_n(extra))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        return grads, data_loss, tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32)

    if cfg.jit_compile:
        return tf.function(forward_backward, jit_compile=True)
    return forward_backward


def _clip_global(grads, clip, optimizer, replicas):
    """Clip the *global* gradient (after the cross-replica sum), then hand the optimizer a
    1/replicas share so its own all-reduce sums back to the clipped value."""
    lso = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    ctx = tf.distribute.get_replica_context()
    grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
    limit = clip * (optimizer.dynamic_scale if lso else 1.0)
    grads, _ = tf.clip_by_global_norm(grads, tf.cast(limit, tf.float32))
    return [g / replicas for g in grads]


def _make_replica_step(strategy, model, optimizer, cfg, global_batch, num_classes):
    forward_backward = _make_forward_backward(model, optimizer, cfg, global_batch, num_classes)
    variables = model.trainable_variables
    lso = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    replicas = strategy.num_replicas_in_sync

    def replica_step(images, labels):
        grads, data_loss, correct, count = forward_backward(images, labels)
        if not lso:  # (loss scaling skips non-finite steps by design)
            # Report non-finite gradients as a NaN loss, so the divergence check sees them even
            # when the forward pass hides the NaN (oneDNN's fused BatchNorm+ReLU maps NaN to 0).
            finite = tf.math.is_finite(tf.linalg.global_norm(grads))
            data_loss = tf.where(finite, data_loss, tf.constant(float("nan"), data_loss.dtype))
        if cfg.grad_clip_norm:
            grads = _clip_global(grads, cfg.grad_clip_norm, optimizer, replicas)
        optimizer.apply(grads, variables)
        return data_loss, correct, count

    return replica_step


def make_train_function(strategy, model, optimizer, cfg, global_batch, num_classes):
    """tf.function(iterator, n) running n steps; returns (losses[n], correct_sum, count_sum).
    cfg: a TrainConfig (weight_decay, optimizer, label_smoothing, grad_clip_norm, jit_compile)."""
    replica_step = _make_replica_step(strategy, model, optimizer, cfg, global_batch, num_classes)

    @tf.function
    def train_function(iterator, n):
        losses = tf.TensorArray(tf.float32, size=n)
        correct = tf.constant(0.0)
        count = tf.constant(0.0)
        for i in tf.range(n):
            images, labels = next(iterator)
            loss, c, k = strategy.run(replica_step, args=(images, labels))
            losses = losses.write(i, strategy.reduce(_SUM, loss, axis=None))
            correct += strategy.reduce(_SUM, c, axis=None)
            count += strategy.reduce(_SUM, k, axis=None)
        return losses.stack(), correct, count

    return train_function


def make_sync_function(strategy, model):
    """A tf.function averaging the model's non-trainable float variables (BatchNorm moving
    statistics) over all replicas, or None with one replica. Keras 3 creates them with
    aggregation NONE, so each replica (each worker) otherwise keeps its own copy; fit syncs them
    before every evaluation and checkpoint, so all workers hold the same weights."""
    variables = [v for v in model.non_trainable_variables if "float" in str(v.dtype)]
    if strategy.num_replicas_in_sync == 1 or not variables:
        return None

    def replica_sync():
        ctx = tf.distribute.get_replica_context()
        means = ctx.all_reduce(
            tf.distribute.ReduceOp.MEAN, [tf.identity(v.value) for v in variables]
        )
        for v, m in zip(variables, means):
            v.assign(m)
        return tf.constant(0)

    @tf.function
    def sync():
        strategy.run(replica_sync)

    return sync


def make_eval_function(strategy, model, num_classes):
    def replica_eval(images, labels):
        logits = tf.cast(model(images, training=False), tf.float32)
        ce, correct = _labels_and_loss(labels, logits, num_classes, 0.0)
        return tf.reduce_sum(ce), tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32)

    @tf.function(reduce_retracing=True)
    def eval_step(images, labels):
        out = strategy.run(replica_eval, args=(images, labels))
        return [strategy.reduce(_SUM, x, axis=None) for x in out]

    return eval_step


def evaluate(strategy, eval_step, dist_dataset, steps=None) -> dict:
    loss = correct = count = 0.0
    for i, (images, labels) in enumerate(dist_dataset):
        if steps is not None and i >= steps:
            break
        batch_loss, batch_correct, batch_count = eval_step(images, labels)
        loss += float(batch_loss)
        correct += float(batch_correct)
        count += float(batch_count)
    if count == 0:
        return {}
    return {"val_loss": loss / count, "val_accuracy": correct / count}
