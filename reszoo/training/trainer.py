"""reszoo.fit: train a zoo model on tf.distribute with one custom step for every strategy.

    import reszoo
    result = reszoo.fit("resnet20", "digits", epochs=15, output_dir="runs/resnet20-digits")
    result.history["val_accuracy"][-1]

Keras 3's model.fit cannot run under MultiWorkerMirroredStrategy (DESIGN.md), so the step is
ours: ``strategy.run`` inside a ``tf.function`` (``steps_per_execution`` steps per call),
``tf.GradientTape``, the per-replica loss averaged over the *global* batch with
``tf.nn.compute_average_loss``, and a Keras 3 optimizer (wrapped in ``LossScaleOptimizer`` for
mixed_float16). The same code runs on the default strategy, OneDevice, Mirrored,
MultiWorkerMirrored and TPU strategies.

Weight decay (SGD): an L2 term ``weight_decay / 2 * sum(w**2)`` over convolution and dense
*kernels* only (no BatchNorm gamma/beta, no biases) is added to the loss; its gradient is
``weight_decay * w``, i.e. PyTorch's ``SGD(weight_decay=...)``. With adam/adamw the decay is
decoupled (the optimizer's ``weight_decay``) with the same variables excluded.

Run directory (``output_dir``): config.json, summary.json, history.csv, learning_curves.png
(needs matplotlib), tensorboard/, checkpoints/ and model.keras. Rerunning with the same
output_dir resumes from the last checkpoint (mid-epoch included); a directory holding another
config is refused before anything is written.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import shutil
import sys
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from reszoo.errors import (
    CheckpointWriteError,
    ConfigError,
    DataError,
    DivergedError,
    ReszooError,
    TrainingError,
    WorkerLostError,
    first_line,
)
from reszoo.training import checkpoint_store, preemption, recipes, rundir
from reszoo.training.devices import describe_device, is_chief, select_precision, select_strategy
from reszoo.training.recipes import check_output_dir

CONFIG_VERSION = recipes.CONFIG_VERSION


# What a collective op raises when a peer is gone (TF's coordination service notices a dead or
# frozen worker within seconds and aborts the pending collectives with one of these).
_PEER_ERRORS = (
    tf.errors.UnavailableError,
    tf.errors.DeadlineExceededError,
    tf.errors.AbortedError,
    tf.errors.CancelledError,
)


@dataclasses.dataclass
class FitResult:
    """What fit returns. history: per-epoch lists (epoch, loss, accuracy, val_loss, val_accuracy,
    lr, images_per_sec, epoch_time); summary: what summary.json holds."""

    model: keras.Model
    history: dict
    summary: dict
    config: dict
    output_dir: str | None = None
    is_chief: bool = True

    @property
    def metrics(self) -> dict:
        return self.summary.get("final_metrics", {})


# --------------------------------------------------------------------------- schedule


class LRSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up, then cosine decay to min_lr, step decay at given steps, or constant."""

    def __init__(
        self, lr, total_steps, warmup_steps=0, kind="cosine", boundaries=(), decay=0.1, min_lr=0.0
    ):
        self.lr = float(lr)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.kind = kind
        self.boundaries = [int(b) for b in boundaries]
        self.decay = float(decay)
        self.min_lr = float(min_lr)

    def __call__(self, step):
        step = tf.cast(tf.convert_to_tensor(step), tf.float32)
        lr = tf.constant(self.lr, tf.float32)
        if self.kind == "cosine":
            span = float(max(1, self.total_steps - self.warmup_steps))
            progress = tf.clip_by_value((step - self.warmup_steps) / span, 0.0, 1.0)
            lr = self.min_lr + (self.lr - self.min_lr) * 0.5 * (1.0 + tf.cos(math.pi * progress))
        elif self.kind == "steps" and self.boundaries:
            passed = tf.add_n([tf.cast(step >= b, tf.float32) for b in self.boundaries])
            lr = lr * tf.pow(self.decay, passed)
        if self.warmup_steps > 0:
            warm = self.lr * (step + 1.0) / self.warmup_steps
            lr = tf.where(step < self.warmup_steps, warm, lr)
        return lr

    def get_config(self):
        return dict(
            lr=self.lr,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
            kind=self.kind,
            boundaries=self.boundaries,
            decay=self.decay,
            min_lr=self.min_lr,
        )


def _is_kernel(variable) -> bool:
    name = getattr(variable, "path", None) or variable.name
    return name.split("/")[-1].split(":")[0] in (
        "kernel",
        "depthwise_kernel",
        "pointwise_kernel",
        "embeddings",
    )


def make_optimizer(cfg, steps_per_epoch, precision):
    total = cfg["epochs"] * steps_per_epoch
    schedule = LRSchedule(
        cfg["lr"],
        total,
        warmup_steps=round(cfg["warmup_epochs"] * steps_per_epoch),
        kind=cfg["schedule"],
        boundaries=[round(e * steps_per_epoch) for e in cfg["lr_steps"]],
        decay=cfg["lr_decay"],
        min_lr=cfg["min_lr"],
    )
    common = {}
    if cfg["ema_decay"] is not None:
        common.update(use_ema=True, ema_momentum=cfg["ema_decay"])
    if cfg["optimizer"] == "sgd":
        opt = keras.optimizers.SGD(
            learning_rate=schedule, momentum=cfg["momentum"], nesterov=cfg["nesterov"], **common
        )
    else:
        cls = keras.optimizers.AdamW if cfg["optimizer"] == "adamw" else keras.optimizers.Adam
        kwargs = dict(common)
        if cfg["weight_decay"]:
            kwargs["weight_decay"] = cfg["weight_decay"]
        opt = cls(learning_rate=schedule, **kwargs)
        if cfg["weight_decay"]:
            opt.exclude_from_weight_decay(var_names=["gamma", "beta", "bias"])
    if precision == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt, schedule


# --------------------------------------------------------------------------- checkpoints


def make_checkpoint(model, optimizer=None, step=None, epoch=None) -> tf.train.Checkpoint:
    """The checkpoint fit writes: TensorFlow's plain object-graph checkpoint
    tf.train.Checkpoint(model=..., optimizer=..., step=..., epoch=...), the parts given as None
    left out. ``model`` saves every model variable (BatchNorm moving statistics included) under
    its attribute path (reszoo's layers keep their sublayers as named attributes), ``optimizer``
    its iterations and slot variables; step: the global step (int64); epoch: the number of
    completed epochs. Restore the optimizer part into a *built* optimizer so that its slot
    variables are restored at once."""
    parts = {"model": model, "optimizer": optimizer, "step": step, "epoch": epoch}
    return tf.train.Checkpoint(**{k: v for k, v in parts.items() if v is not None})


def load_checkpoint_weights(model, path) -> int:
    """Load the model weights of a fit checkpoint (a checkpoint prefix, a run directory or its
    checkpoints/ directory; the latest is taken) into ``model`` built with the run's
    config.json["build"]. The optimizer state is ignored; every model variable must be in the
    checkpoint (TrainingError otherwise). Returns the checkpoint's global step (0 without one)."""
    if os.path.isdir(path):
        sub = os.path.join(path, "checkpoints")
        path = checkpoint_store.newest_readable(sub if os.path.isdir(sub) else path)[0]
        if path is None:
            raise TrainingError("no checkpoint found there")
    try:
        tf.train.Checkpoint(model=model).read(
            path
        ).expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as e:
        raise TrainingError(
            f"checkpoint {path} does not match the model {model.name!r} (built "
            f"with another config?): {str(e).splitlines()[0]}"
        ) from e
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(step=step).read(path).expect_partial()
    return int(step.numpy())


# --------------------------------------------------------------------------- steps


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


def make_train_function(strategy, model, optimizer, cfg, global_batch, num_classes):
    """tf.function(iterator, n) running n steps; returns (losses[n], correct_sum, count_sum)."""
    variables = model.trainable_variables
    decay_vars = [v for v in variables if _is_kernel(v)]
    l2 = cfg["weight_decay"] if cfg["optimizer"] == "sgd" else 0.0
    smoothing = float(cfg["label_smoothing"])
    clip = cfg["grad_clip_norm"]
    lso = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    replicas = strategy.num_replicas_in_sync

    def forward_backward(images, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(images, training=True), tf.float32)
            ce, correct = _labels_and_loss(labels, logits, num_classes, smoothing)
            data_loss = tf.nn.compute_average_loss(ce, global_batch_size=global_batch)
            loss = data_loss
            extra = [tf.cast(x, tf.float32) for x in model.losses]
            if l2 and decay_vars:
                extra.append(
                    0.5
                    * l2
                    * tf.add_n(
                        [tf.reduce_sum(tf.square(tf.cast(v, tf.float32))) for v in decay_vars]
                    )
                )
            if extra:
                loss = loss + tf.nn.scale_regularization_loss(tf.add_n(extra))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, variables)
        return grads, data_loss, tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32)

    if cfg["jit_compile"]:
        forward_backward = tf.function(forward_backward, jit_compile=True)

    def replica_step(images, labels):
        grads, data_loss, correct, count = forward_backward(images, labels)
        if not lso:  # (loss scaling skips non-finite steps by design)
            # Report non-finite gradients as a NaN loss, so the divergence check sees them even
            # when the forward pass hides the NaN (oneDNN's fused BatchNorm+ReLU maps NaN to 0).
            finite = tf.math.is_finite(tf.linalg.global_norm(grads))
            data_loss = tf.where(finite, data_loss, tf.constant(float("nan"), data_loss.dtype))
        if clip:
            # Clip the *global* gradient (after the cross-replica sum), then hand the optimizer
            # a 1/replicas share so its own all-reduce sums back to the clipped value.
            ctx = tf.distribute.get_replica_context()
            grads = ctx.all_reduce(tf.distribute.ReduceOp.SUM, grads)
            limit = clip * (optimizer.dynamic_scale if lso else 1.0)
            grads, _ = tf.clip_by_global_norm(grads, tf.cast(limit, tf.float32))
            grads = [g / replicas for g in grads]
        optimizer.apply(grads, variables)
        return data_loss, correct, count

    sum_ = tf.distribute.ReduceOp.SUM

    @tf.function
    def train_function(iterator, n):
        losses = tf.TensorArray(tf.float32, size=n)
        correct = tf.constant(0.0)
        count = tf.constant(0.0)
        for i in tf.range(n):
            images, labels = next(iterator)
            loss, c, k = strategy.run(replica_step, args=(images, labels))
            losses = losses.write(i, strategy.reduce(sum_, loss, axis=None))
            correct += strategy.reduce(sum_, c, axis=None)
            count += strategy.reduce(sum_, k, axis=None)
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
    sum_ = tf.distribute.ReduceOp.SUM

    def replica_eval(images, labels):
        logits = tf.cast(model(images, training=False), tf.float32)
        ce, correct = _labels_and_loss(labels, logits, num_classes, 0.0)
        return tf.reduce_sum(ce), tf.reduce_sum(correct), tf.cast(tf.size(correct), tf.float32)

    @tf.function(reduce_retracing=True)
    def eval_step(images, labels):
        out = strategy.run(replica_eval, args=(images, labels))
        return [strategy.reduce(sum_, x, axis=None) for x in out]

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


# --------------------------------------------------------------------------- fit


def _model_from_name(name, model_config, cfg, input_shape, num_classes):
    import reszoo

    build = {
        "name": name,
        "num_classes": int(num_classes),
        "input_shape": list(input_shape),
        "overrides": dict(cfg["overrides"]),
    }
    try:
        model = reszoo.build(
            name,
            num_classes=build["num_classes"],
            input_shape=tuple(build["input_shape"]),
            **build["overrides"],
        )
    except ReszooError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(
            f"cannot build {name} with num_classes={num_classes}, "
            f"input_shape={list(input_shape)}, overrides={cfg['overrides']}: {e}"
        ) from e
    return model, build


def _dataset_batch_size(ds):
    spec = ds.element_spec
    try:
        return spec[0].shape[0]
    except (TypeError, IndexError, AttributeError):
        raise DataError("train must yield (images, labels) batches") from None


def fit(
    model,
    train,
    validation=None,
    *,
    epochs=None,
    batch_size=None,
    lr=None,
    precision="auto",
    strategy="auto",
    callbacks=None,
    output_dir=None,
    config=None,
    class_names=None,
    verbose=1,
    **options,
) -> FitResult:
    """Train ``model`` (a zoo name or a keras.Model) on ``train``.

    model: a zoo name ("resnet20"), built inside ``strategy.scope()`` after the precision policy
        is set, or a keras.Model (built by you inside the strategy's scope, under the policy you
        want; precision="auto" then follows the model's dtype policy).
    train: a dataset name for reszoo.data.load ("digits", "synthetic", "cifar10", a folder), or
        a tf.data.Dataset of (images float32 [B,H,W,3] pixels 0..255, labels int [B] or soft
        labels [B,C]) batches with the *global* batch size, one epoch per iteration.
    validation: a tf.data.Dataset of batches (with a dataset name, the loader's split is used).
    epochs, batch_size (global), lr (None: recipe base_lr * batch_size / base_batch_size):
        override the recipe, as do ``options`` (any key of recipes.json "defaults": momentum,
        weight_decay, schedule, warmup_epochs, lr_steps, label_smoothing, grad_clip_norm,
        ema_decay, steps_per_epoch, steps_per_execution, checkpoint_every, keep_checkpoints,
        augment, data_dir, overrides={architecture fields}, ...).
    precision: "auto", "float32", "mixed_float16" or "mixed_bfloat16".
    strategy: "auto", "default", "one_device", "mirrored", "multi_worker", "tpu" or a
        tf.distribute.Strategy.
    callbacks: Keras callbacks (set_model, on_train_begin/end, on_epoch_begin/end with logs
        loss, accuracy, val_loss, val_accuracy, lr; on_train_batch_end per executed chunk);
        model.stop_training is honoured at epoch ends (EarlyStopping).
    output_dir: the run directory (see the module docstring); None writes nothing and does not
        checkpoint.
    config: a JSON/YAML file path or a dict of option overrides (applied before the kwargs).
    class_names: for a tf.data.Dataset, the names of the classes (written to config.json).
    verbose: 0 silent, 1 progress bar, 2 one line per epoch.

    Raises ConfigError/DataError for bad input (nothing written) and TrainingError when the run
    cannot start (output_dir of another config) or diverges (NaN/inf loss, naming the step).
    Raises reszoo.errors.PreemptedError after saving a checkpoint on SIGTERM/SIGINT (preemption.py).
    """
    t_start = time.time()
    callbacks = list(callbacks or [])
    strategy_obj = strategy if isinstance(strategy, tf.distribute.Strategy) else None
    opts = dict(options)
    opts.update(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        precision=precision if isinstance(precision, str) else None,
        strategy=None if strategy_obj is not None else strategy,
    )
    if not isinstance(precision, str):
        raise ConfigError(f"precision must be a string, got {precision!r}")

    # --- model config and recipe (pure Python: nothing built, nothing written)
    model_obj = model if isinstance(model, keras.Model) else None
    if model_obj is None and not isinstance(model, str):
        raise ConfigError(f"model must be a zoo name or a keras.Model, got {type(model).__name__}")
    model_config = None
    if model_obj is None:
        import reszoo

        model_config = reszoo.get_config(model)
    elif model_obj.inputs:
        shape = list(model_obj.inputs[0].shape[1:])
        model_config = {"name": model_obj.name, "input_shape": shape}
    dataset_is_name = isinstance(train, str)
    if not dataset_is_name and not isinstance(train, tf.data.Dataset):
        raise ConfigError(
            f"train must be a dataset name or a tf.data.Dataset, got {type(train).__name__}"
        )
    if not dataset_is_name:
        b = _dataset_batch_size(train)
        if b is not None and batch_size is not None and b != batch_size:
            raise ConfigError(
                f"batch_size={batch_size} but the train dataset's batches hold {b} "
                "examples (batch_size is the global batch of the dataset)"
            )
        if batch_size is None:
            if b is None:
                b = int(next(iter(train.take(1)))[0].shape[0])
            opts["batch_size"] = int(b)
    model_name = model if model_obj is None else model_obj.name
    cfg = recipes.prepare(
        model_name, model_config, train, config=config, options=opts, output_dir=output_dir
    )

    # --- strategy, then precision (before anything is built)
    strat, strat_name = select_strategy(
        strategy_obj if strategy_obj is not None else cfg["strategy"]
    )
    replicas = strat.num_replicas_in_sync
    if cfg["batch_size"] % replicas:
        raise ConfigError(
            f"batch_size {cfg['batch_size']} is not divisible by the {replicas} "
            f"replicas of the {strat_name} strategy; use a multiple of {replicas}"
        )
    if model_obj is not None:
        if (
            strat_name != "default"
            and model_obj.weights
            and not strat.extended.variable_created_in_scope(model_obj.weights[0])
        ):
            raise ConfigError(
                f"the model was not built inside {strat_name} strategy's scope(): "
                "pass the model's name, or build it under strategy.scope()"
            )
        model_policy = model_obj.dtype_policy.name
        if cfg["precision"] == "auto":
            policy, reason = model_policy, "the model's dtype policy"
        else:
            policy, reason = select_precision(cfg["precision"], strat)
            if policy != model_policy:
                raise ConfigError(
                    f"precision {policy} differs from the model's dtype policy "
                    f"{model_policy}; build the model under the policy, or pass "
                    "its name"
                )
    else:
        policy, reason = select_precision(cfg["precision"], strat)
    cfg["precision"] = policy
    cfg["precision_reason"] = reason
    cfg["strategy_name"] = strat_name
    cfg["num_replicas"] = replicas
    chief = is_chief(strat)
    if verbose and chief:
        print(
            f"reszoo.fit: precision {policy} ({reason}); strategy {strat_name} with "
            f"{replicas} replica(s); global batch {cfg['batch_size']}, lr {cfg['lr']:g}",
            flush=True,
        )

    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    watch = preemption.install()  # reliability: SIGTERM/SIGINT save and stop (preemption.py)
    try:
        return _run(
            model_obj,
            model_name,
            model_config,
            train,
            validation,
            cfg,
            strat,
            chief,
            callbacks,
            output_dir,
            class_names,
            verbose,
            t_start,
        )
    finally:
        preemption.uninstall(watch)
        keras.config.set_dtype_policy(previous_policy)


def _run(
    model_obj,
    model_name,
    model_config,
    train,
    validation,
    cfg,
    strat,
    chief,
    callbacks,
    output_dir,
    class_names,
    verbose,
    t_start,
):
    global_batch = cfg["batch_size"]
    # --- data
    if isinstance(train, str):
        from reszoo import data as rdata

        image_size = cfg["image_size"] or (model_config.get("input_shape") or [None, None])[:2]
        if image_size[0] is None:
            image_size = None
        train_ds, val_ds, info = rdata.load(
            train,
            batch_size=global_batch,
            image_size=tuple(image_size) if image_size else None,
            augment=cfg["augment"],
            data_dir=cfg["data_dir"],
            validation_split=cfg["validation_split"],
            seed=cfg["seed"],
            cache=cfg["cache"],
            num_classes=cfg["num_classes"],
            examples=cfg["examples"],
            drop_remainder=True,
            follow_links=cfg["follow_links"],  # reliability: image folders' symbolic links
        )
        if validation is not None:
            val_ds = validation
        num_classes = int(info.num_classes)
        names = list(info.class_names)
        input_shape = list(info.image_shape)
        spe = cfg["steps_per_epoch"] or max(1, int(info.train_examples) // global_batch)
    else:
        train_ds, val_ds = train, validation
        spec = train_ds.element_spec
        input_shape = list(spec[0].shape[1:])
        label_shape = spec[1].shape
        if cfg["num_classes"]:
            num_classes = cfg["num_classes"]
        elif label_shape.rank == 2 and label_shape[-1]:
            num_classes = int(label_shape[-1])
        elif model_obj is not None:
            num_classes = int(model_obj.outputs[0].shape[-1])
        else:
            num_classes = int(model_config.get("num_classes") or 10)
        names = (
            [str(c) for c in class_names] if class_names else [str(i) for i in range(num_classes)]
        )
        card = int(train_ds.cardinality())
        spe = cfg["steps_per_epoch"] or (card if card > 0 else None)
        if spe is None:
            raise ConfigError("the train dataset's length is unknown: pass steps_per_epoch")
    if len(names) != num_classes:
        raise ConfigError(f"{len(names)} class names for {num_classes} classes")
    cfg["class_names"] = names
    cfg["steps_per_epoch_resolved"] = spe
    cfg["total_steps"] = spe * cfg["epochs"]

    # --- model, optimizer, checkpoint (inside the strategy's scope)
    keras.utils.set_random_seed(cfg["seed"])
    with strat.scope():
        if model_obj is None:
            model, build = _model_from_name(model_name, model_config, cfg, input_shape, num_classes)
        else:
            model, build = model_obj, None
            out = int(model.outputs[0].shape[-1])
            if out != num_classes:
                raise ConfigError(
                    f"the model has {out} outputs but the data has {num_classes} classes"
                )
        cfg["build"] = build
        optimizer, schedule = make_optimizer(cfg, spe, cfg["precision"])
        # Built before any restore: a resumed run's slot variables (momentum, ...) then exist
        # and the checkpoint restores them at once instead of deferring.
        optimizer.build(model.trainable_variables)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    checkpoint = make_checkpoint(model, optimizer, step_var, epoch_var)

    # --- run directory (the full compatibility check happens before anything is written)
    check_output_dir(output_dir, cfg)  # raises for a directory holding another config
    write_dir = worker_tmp = None
    manager = None
    if output_dir is not None:
        if chief:
            write_dir = output_dir
            try:
                os.makedirs(output_dir, exist_ok=True)
            except OSError as e:
                raise TrainingError(
                    f"cannot create output directory {output_dir}: "
                    f"{e.strerror or e}; choose another --output"
                ) from e
            # also on resume: epochs may have grown, and config.json stays the truth
            rundir.write_json(os.path.join(output_dir, "config.json"), cfg)
        else:
            worker_tmp = write_dir = tempfile.mkdtemp(prefix="reszoo-worker-")
        # reliability: restores the newest good checkpoint (checkpoint_store.py)
        manager = checkpoint_store.open_manager(
            checkpoint,
            os.path.join(write_dir, "checkpoints"),
            cfg["keep_checkpoints"],
            resume_from=os.path.join(output_dir, "checkpoints"),
        )
    try:
        return _loop(
            model,
            optimizer,
            schedule,
            checkpoint,
            manager,
            step_var,
            epoch_var,
            cfg,
            strat,
            chief,
            train_ds,
            val_ds,
            spe,
            num_classes,
            callbacks,
            output_dir,
            write_dir,
            verbose,
            t_start,
        )
    finally:
        if worker_tmp:
            shutil.rmtree(worker_tmp, ignore_errors=True)


def _loop(
    model,
    optimizer,
    schedule,
    checkpoint,
    manager,
    step_var,
    epoch_var,
    cfg,
    strat,
    chief,
    train_ds,
    val_ds,
    spe,
    num_classes,
    callbacks,
    output_dir,
    write_dir,
    verbose,
    t_start,
):
    epochs = cfg["epochs"]
    total_steps = spe * epochs
    global_batch = cfg["batch_size"]
    start_step = 0
    if output_dir is not None:
        latest = manager.resumed_from  # reliability: restored by checkpoint_store.open_manager
        if latest:
            start_step = int(step_var.numpy())
            if verbose and chief:
                where = (
                    "the run is already complete"
                    if start_step >= total_steps
                    else f"epoch {start_step // spe + 1} step {start_step % spe}"
                )
                print(
                    f"reszoo.fit: resuming from {latest} (global step {start_step}: {where})",
                    flush=True,
                )

    dist_train = strat.experimental_distribute_dataset(train_ds.repeat())
    iterator = iter(dist_train)
    dist_val = strat.experimental_distribute_dataset(val_ds) if val_ds is not None else None
    train_function = make_train_function(strat, model, optimizer, cfg, global_batch, num_classes)
    eval_step = make_eval_function(strat, model, num_classes)
    sync = make_sync_function(strat, model)

    history_path = os.path.join(output_dir, "history.csv") if output_dir else None
    rows = rundir.read_history(history_path, start_step // spe) if (history_path and chief) else []
    tb = {}
    if output_dir is not None and chief:
        tb = {
            k: tf.summary.create_file_writer(os.path.join(output_dir, "tensorboard", k))
            for k in ("train", "validation")
        }
    plot_note = None

    cb = keras.callbacks.CallbackList(
        callbacks,
        add_history=False,
        add_progbar=False,
        model=model,
        epochs=epochs,
        steps=spe,
        verbose=verbose,
    )
    model.stop_training = False
    cb.on_train_begin()
    step = start_step
    train_images = 0
    train_time = 0.0
    logs = {}
    status = "completed"
    ckpt_every = cfg["checkpoint_every"]

    def save(step_now, epochs_done):
        if manager is None:
            return
        if sync is not None:
            sync()
        step_var.assign(step_now)
        epoch_var.assign(epochs_done)
        try:
            manager.save(checkpoint_number=step_now)
        except (OSError, tf.errors.OpError) as e:
            raise CheckpointWriteError(
                rundir.checkpoint_failure(manager.directory, step_now, e)
            ) from e

    try:
        for epoch in range(step // spe, epochs):
            if model.stop_training:
                break
            cb.on_epoch_begin(epoch)
            in_epoch = step - epoch * spe
            bar = None
            if verbose and chief:
                print(
                    f"Epoch {epoch + 1}/{epochs}"
                    + (f" (resuming at step {in_epoch})" if in_epoch else ""),
                    flush=True,
                )
                interactive = verbose == 1 and sys.stdout.isatty()
                bar = keras.utils.Progbar(
                    spe,
                    verbose=1 if interactive else 2,
                    stateful_metrics=["loss", "accuracy", "img/s"],
                )
            loss_sum = correct = count = 0.0
            n_done = 0
            t0 = time.time()
            while in_epoch < spe:
                signum = preemption.agreed_signal(strat)  # reliability: preemption.py
                if signum:
                    status = "preempted"
                    save(step, epoch)
                    raise preemption.stopped(signum, step, manager)
                n = min(cfg["steps_per_execution"], spe - in_epoch)
                if ckpt_every:
                    n = min(n, ckpt_every - step % ckpt_every)
                losses, c, k = train_function(iterator, tf.constant(n, tf.int32))
                losses = losses.numpy()
                bad = np.flatnonzero(~np.isfinite(losses))
                if bad.size:
                    status = "diverged"
                    last = manager.latest_checkpoint if manager else None
                    raise DivergedError(
                        f"loss or gradients became {losses[bad[0]]} at global step "
                        f"{step + int(bad[0]) + 1} "
                        f"(epoch {epoch + 1}); stopped without saving"
                        + (f"; the last good checkpoint is {last}" if last else "")
                        + "; lower the learning rate or enable grad_clip_norm"
                    )
                step += n
                in_epoch += n
                n_done += n
                loss_sum += float(losses.sum())
                correct += float(c)
                count += float(k)
                elapsed = time.time() - t0
                if bar is not None:
                    bar.update(
                        in_epoch,
                        [
                            ("loss", loss_sum / n_done),
                            ("accuracy", correct / max(count, 1.0)),
                            ("img/s", n_done * global_batch / max(elapsed, 1e-9)),
                        ],
                    )
                cb.on_train_batch_end(in_epoch - 1, {"loss": float(losses[-1])})
                if ckpt_every and step % ckpt_every == 0 and in_epoch < spe:
                    save(step, epoch)
            epoch_time = time.time() - t0
            train_images += n_done * global_batch
            train_time += epoch_time
            logs = {"loss": loss_sum / max(n_done, 1), "accuracy": correct / max(count, 1.0)}
            if sync is not None:
                sync()
            if dist_val is not None:
                logs.update(evaluate(strat, eval_step, dist_val, cfg["validation_steps"]))
            logs["lr"] = float(schedule(step))
            ips = n_done * global_batch / max(epoch_time, 1e-9)
            save(step, epoch + 1)
            if verbose and chief:
                extra = "  ".join(
                    f"{k} {logs[k]:.4f}" for k in ("val_loss", "val_accuracy") if k in logs
                )
                print(f"  {ips:.0f} img/s  lr {logs['lr']:.4g}  {extra}", flush=True)
            row = {"epoch": epoch + 1, **logs, "images_per_sec": ips, "epoch_time": epoch_time}
            rows.append(row)
            if chief and output_dir is not None:
                rundir.write_history(history_path, rows)
                for key in ("loss", "accuracy"):
                    rundir.summary_scalar(tb.get("train"), key, logs.get(key), epoch + 1)
                    rundir.summary_scalar(
                        tb.get("validation"), key, logs.get(f"val_{key}"), epoch + 1
                    )
                rundir.summary_scalar(tb.get("train"), "learning_rate", logs["lr"], epoch + 1)
                rundir.summary_scalar(tb.get("train"), "images_per_sec", ips, epoch + 1)
                for w in tb.values():
                    w.flush()
            cb.on_epoch_end(epoch, dict(logs))
            if model.stop_training:
                status = "stopped_early"
        if step < total_steps and status == "completed":
            status = "stopped_early"
        if cfg["ema_decay"] is not None:
            with strat.scope():
                optimizer.finalize_variable_values(model.trainable_variables)
            if dist_val is not None:
                logs.update(evaluate(strat, eval_step, dist_val, cfg["validation_steps"]))
        elif not logs and dist_val is not None:  # nothing left to train (a finished run rerun)
            logs = evaluate(strat, eval_step, dist_val, cfg["validation_steps"])
        cb.on_train_end(dict(logs))
        if write_dir is not None:
            rundir.save_model_atomically(model, os.path.join(write_dir, "model.keras"))
    except _PEER_ERRORS as e:
        status = "failed"
        if not isinstance(strat, tf.distribute.MultiWorkerMirroredStrategy):
            raise
        last = (
            tf.train.latest_checkpoint(os.path.join(output_dir, "checkpoints"))
            if output_dir
            else None
        )
        raise WorkerLostError(
            f"another worker of the {cfg['num_replicas']}-replica multi-worker run died or "
            f"stopped answering near global step {step} ({type(e).__name__}: "
            f"{first_line(e)}); restart every worker with the same command to resume from "
            + (last or "the start (no checkpoint yet)")
        ) from e
    except BaseException:
        if status == "completed":
            status = "failed"
        raise
    finally:
        wall = time.time() - t_start
        history = {k: [r.get(k) for r in rows] for k in rundir.HISTORY_FIELDS}
        if not logs and rows:
            logs = {
                k: rows[-1].get(k) for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr")
            }
        summary = {
            "status": status,
            "model": cfg["model"],
            "dataset": cfg["dataset"],
            "config": cfg,
            "versions": rundir.package_versions(),
            "device": describe_device(),
            "precision": cfg["precision"],
            "precision_reason": cfg["precision_reason"],
            "strategy": cfg["strategy_name"],
            "num_replicas": cfg["num_replicas"],
            "final_metrics": {k: v for k, v in logs.items() if v is not None},
            "best_val_accuracy": max(
                (r["val_accuracy"] for r in rows if r.get("val_accuracy") is not None), default=None
            ),
            "epochs_completed": step // spe,
            "global_step": step,
            "total_steps": total_steps,
            "resumed_from_step": start_step if start_step else None,
            "images_per_sec": train_images / train_time if train_time else None,
            "train_time_sec": train_time,
            "wall_time_sec": wall,
            "finished_at": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        if chief and output_dir is not None:
            try:
                if rows and status != "diverged":
                    plot_note = rundir.plot_history(
                        rows, os.path.join(output_dir, "learning_curves.png")
                    )
                    if plot_note:
                        summary["plot"] = plot_note
                        if verbose:
                            print(f"reszoo.fit: {plot_note}", flush=True)
                rundir.write_json(os.path.join(output_dir, "summary.json"), summary)
            except OSError as e:
                if status == "completed":
                    raise CheckpointWriteError(f"cannot write {output_dir}: {e}") from e
                # already failing: keep the original error, not this one
                print(
                    f"reszoo.fit: could not write summary.json ({e})", file=sys.stderr, flush=True
                )
            for w in tb.values():
                w.close()
    if verbose and chief:
        final = "  ".join(f"{k} {v:.4f}" for k, v in summary["final_metrics"].items())
        print(
            f"reszoo.fit: {status} at step {step}/{total_steps} in {wall:.1f}s; {final}", flush=True
        )
    return FitResult(
        model=model,
        history=history,
        summary=summary,
        config=cfg,
        output_dir=output_dir,
        is_chief=chief,
    )
