"""reszoo.fit: train a zoo model on tf.distribute with one custom step for every strategy.

    import reszoo
    result = reszoo.fit("resnet20", "digits", epochs=15, output_dir="runs/resnet20-digits")
    result.history["val_accuracy"][-1]

fit reads as its steps: check the arguments, resolve the TrainConfig once (recipes.json plus
overrides, frozen), place the run (strategy, then precision), load the data, build the model and
optimizer inside the strategy's scope, open the run directory, run the Loop. The parts live in
reszoo/training/: config.py (TrainConfig, RunFacts), setup.py (placement, data, model),
optimizers.py and schedules.py, steps.py (the compiled train/eval steps), checkpoints.py,
rundir.py (the run directory), state.py (RunState, the summary) and loop.py.

Run directory (``output_dir``): config.json, summary.json, history.csv, learning_curves.png
(needs matplotlib), tensorboard/, checkpoints/ and model.keras. Rerunning with the same
output_dir resumes from the last checkpoint (mid-epoch included); a directory holding another
config is refused before anything is written.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time

import keras
import tensorflow as tf

from reszoo.errors import ConfigError, DataError
from reszoo.training import preemption, recipes, setup
from reszoo.training.checkpoints import load_checkpoint_weights, make_checkpoint
from reszoo.training.config import TrainConfig, record
from reszoo.training.devices import select_precision, select_strategy
from reszoo.training.loop import Job, Loop
from reszoo.training.optimizers import make_optimizer
from reszoo.training.rundir import RunDirectory
from reszoo.training.schedules import LRSchedule
from reszoo.training.steps import make_train_function

CONFIG_VERSION = recipes.CONFIG_VERSION

__all__ = [
    "CONFIG_VERSION",
    "FitResult",
    "LRSchedule",
    "fit",
    "load_checkpoint_weights",
    "make_checkpoint",
    "make_optimizer",
    "make_train_function",
    "select_precision",
    "select_strategy",
]


@dataclasses.dataclass
class FitResult:
    """What fit returns. history: per-epoch lists (epoch, loss, accuracy, val_loss, val_accuracy,
    lr, images_per_sec, epoch_time); summary: what summary.json holds; config: config.json."""

    model: keras.Model
    history: dict
    summary: dict
    config: dict
    output_dir: str | None = None
    is_chief: bool = True

    @property
    def metrics(self) -> dict:
        return self.summary.get("final_metrics", {})


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
    precision, strategy: a name of reszoo.training.choices (PRECISIONS, STRATEGIES); strategy
        may also be a tf.distribute.Strategy.
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
    """
    started_at = time.time()
    model_obj, strategy_obj = _check_arguments(model, train, precision, strategy)
    name = model if model_obj is None else model_obj.name
    request = setup.Request(
        model_obj, name, _model_config(model, model_obj), train, validation, class_names,
        list(callbacks or []), output_dir, verbose, started_at,
    )  # fmt: skip
    opts = dict(options, epochs=epochs, lr=lr, precision=precision)
    opts["batch_size"] = _batch_size(train, batch_size)
    opts["strategy"] = None if strategy_obj is not None else strategy
    return _configure_and_run(request, config, opts, strategy_obj)


def _configure_and_run(request, config, options, strategy_obj):
    """Resolve the TrainConfig (once), place the run, then run it under its dtype policy."""
    prepared = recipes.prepare(
        request.model_name,
        request.model_config,
        request.train,
        config=config,
        options=options,
        output_dir=request.output_dir,
    )
    cfg = TrainConfig.from_dict(prepared)
    placement = setup.place(cfg, strategy_obj, request.model)
    _announce(cfg, placement, request.verbose)
    with _dtype_policy(placement.precision), preemption.watching():
        return _run(request, cfg, placement)


def _announce(cfg, placement, verbose):
    if verbose and placement.chief:
        print(
            f"reszoo.fit: precision {placement.precision} ({placement.precision_reason}); "
            f"strategy {placement.strategy_name} with {placement.replicas} replica(s); "
            f"global batch {cfg.batch_size}, lr {cfg.lr:g}",
            flush=True,
        )


@contextlib.contextmanager
def _dtype_policy(policy):
    """The global Keras dtype policy set while the model is built and trained, then restored."""
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous_policy)


def _check_arguments(model, train, precision, strategy):
    """(model object or None, strategy object or None); ConfigError for a wrong type."""
    if not isinstance(precision, str):
        raise ConfigError(f"precision must be a string, got {precision!r}")
    model_obj = model if isinstance(model, keras.Model) else None
    if model_obj is None and not isinstance(model, str):
        raise ConfigError(f"model must be a zoo name or a keras.Model, got {type(model).__name__}")
    strategy_obj = strategy if isinstance(strategy, tf.distribute.Strategy) else None
    return model_obj, strategy_obj


def _model_config(model, model_obj):
    """The zoo config of a model name; the name and input shape of a model object."""
    if model_obj is None:
        import reszoo

        return reszoo.get_config(model)
    if model_obj.inputs:
        return {"name": model_obj.name, "input_shape": list(model_obj.inputs[0].shape[1:])}
    return None


def _dataset_batch_size(ds):
    spec = ds.element_spec
    try:
        return spec[0].shape[0]
    except (TypeError, IndexError, AttributeError):
        raise DataError("train must yield (images, labels) batches") from None


def _batch_size(train, batch_size):
    """A dataset object's batches fix the global batch size (a different one is refused)."""
    if isinstance(train, str):
        return batch_size
    if not isinstance(train, tf.data.Dataset):
        raise ConfigError(
            f"train must be a dataset name or a tf.data.Dataset, got {type(train).__name__}"
        )
    b = _dataset_batch_size(train)
    if b is not None and batch_size is not None and b != batch_size:
        raise ConfigError(
            f"batch_size={batch_size} but the train dataset's batches hold {b} "
            "examples (batch_size is the global batch of the dataset)"
        )
    if batch_size is not None:
        return batch_size
    if b is None:
        b = int(next(iter(train.take(1)))[0].shape[0])
    return int(b)


def _run(request, cfg, placement) -> FitResult:
    """Data, then model and optimizer inside the strategy's scope, then the run directory and
    the loop."""
    data = setup.load_data(request, cfg)
    keras.utils.set_random_seed(cfg.seed)
    with placement.strategy.scope():
        model, build = setup.build_model(request, cfg, data)
        facts = setup.run_facts(cfg, placement, data, build)
        optimizer, schedule = make_optimizer(cfg, data.steps_per_epoch, placement.precision)
        # Built before any restore: a resumed run's slot variables (momentum, ...) then exist
        # and the checkpoint restores them at once instead of deferring.
        optimizer.build(model.trainable_variables)
    run_record = record(cfg, facts)
    rundir = RunDirectory.open(request.output_dir, placement.chief, run_record, model, optimizer)
    job = Job(cfg, facts, placement, model, optimizer, schedule, data.train, data.validation)
    try:
        loop = Loop(job, rundir, request.callbacks, request.verbose, request.started_at)
        state, summary = loop.run()
    finally:
        rundir.cleanup()
    return FitResult(
        model=model,
        history=state.history(),
        summary=summary,
        config=run_record,
        output_dir=request.output_dir,
        is_chief=placement.chief,
    )
