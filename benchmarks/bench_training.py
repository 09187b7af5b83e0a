"""Training throughput (images/s): reszoo.fit against plain Keras model.fit, same run, same batch.

What it measures:

* resnet20 (32x32, batch 128): ``reszoo.fit("resnet20", ...)`` against a plain functional Keras
  ResNet-20 written below (~30 lines: the same option-A architecture, ``padding="same"``,
  ``model.compile(SGD, sparse CE, accuracy)`` + ``model.fit``);
* resnet50 (224x224, batch 32): ``reszoo.fit("resnet50", ...)`` against
  ``keras.applications.ResNet50(weights=None)`` with ``model.fit``;

each in float32 and in its best precision on this machine (mixed_bfloat16 with AVX512_BF16;
reszoo.fit's ``precision="auto"`` picks it by itself). Data: one synthetic batch held in memory
(``tf.data.Dataset.from_tensors(batch).repeat()``), so only the training step is measured.

How: every variant runs ``warmup + steps`` steps in one fit call; a callback stamps the time at
each batch end and the rate is taken over the last ``steps`` steps only (tracing, the first
step and one-off allocations excluded). Variants are interleaved round by round (A B C D, A B C D)
on the same process, and the median over rounds is reported with ratios, because the machine is
shared. reszoo.fit gets a model *name* (it builds the model under its precision policy, as users
call it) and ``output_dir=None`` (no checkpoints written).

    python benchmarks/bench_training.py            # resnet20 (5 rounds) + resnet50 (1 round)
    python benchmarks/bench_training.py --quick    # shorter
    python benchmarks/bench_training.py --models resnet20 --variants keras_f32,reszoo_auto
    python benchmarks/bench_training.py --reszoo-option steps_per_execution=8   # try fit options
    # attempts side by side in one run: reszoo variants with their own fit options
    python benchmarks/bench_training.py --models resnet20 \
        --variants "keras_bf16,reszoo_auto,reszoo_auto[steps_per_execution=16],reszoo_auto[jit_compile=true]"
"""

from __future__ import annotations

import argparse
import json
import time

import common  # noqa: F401  (sets TF log level before TensorFlow is imported)
import keras
import numpy as np
import tensorflow as tf

import reszoo

CONFIGS = {  # model -> (image size, batch, classes, default timed steps, warm-up steps)
    "resnet20": (32, 128, 10, 16, 3),
    "resnet50": (224, 32, 1000, 4, 2),
}
VARIANTS = ("keras_f32", "keras_bf16", "reszoo_f32", "reszoo_auto")


def plain_keras_resnet20(num_classes=10):
    """What a Keras user writes: the CIFAR ResNet-20 (He et al. 2016, option-A shortcuts)."""
    layers = keras.layers

    def conv_bn(x, filters, stride, relu=True):
        x = layers.Conv2D(
            filters,
            3,
            strides=stride,
            padding="same",
            use_bias=False,
            kernel_initializer="he_normal",
        )(x)
        x = layers.BatchNormalization(momentum=0.9, epsilon=1e-5)(x)
        return layers.ReLU()(x) if relu else x

    inputs = keras.Input((32, 32, 3), name="images")
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = conv_bn(x, 16, 1)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(3):
            stride = 2 if stage > 0 and block == 0 else 1
            y = conv_bn(x, filters, stride)
            y = conv_bn(y, filters, 1, relu=False)
            if stride == 2:  # option A: subsample, zero-pad the new channels
                x = x[:, ::2, ::2, :]
                extra = filters - x.shape[-1]
                x = keras.ops.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])
            x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(num_classes, dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name="plain_resnet20")


def plain_keras_model(model_name, num_classes):
    if model_name == "resnet20":
        return plain_keras_resnet20(num_classes)
    if model_name == "resnet50":
        base = keras.applications.ResNet50(
            weights=None, classes=num_classes, classifier_activation=None
        )
        # logits in float32 under mixed precision (the Dense layer computes in bfloat16)
        outputs = keras.layers.Activation("linear", dtype="float32")(base.output)
        return keras.Model(base.input, outputs, name="keras_applications_resnet50")
    raise ValueError(model_name)


class StepTimer(keras.callbacks.Callback):
    """Stamps (batch index, wall time) at every batch end. Keras model.fit calls it per step;
    reszoo.fit per executed chunk of ``steps_per_execution`` steps, with the index of the chunk's
    last step, so the number of steps between stamps comes from the indices."""

    def __init__(self):
        super().__init__()
        self.stamps = []

    def on_train_batch_end(self, batch, logs=None):
        if logs and "loss" in logs:  # make sure the step really ran (Keras may be async)
            float(logs["loss"])
        self.stamps.append((batch, time.perf_counter()))

    def rate(self, batch_size, warmup):
        """Images/s from the first stamp at or after ``warmup`` steps to the last stamp."""
        ref = next(i for i, (b, _) in enumerate(self.stamps) if b + 1 >= warmup)
        (b0, t0), (b1, t1) = self.stamps[ref], self.stamps[-1]
        if b1 <= b0:
            raise RuntimeError(f"no timed steps after {warmup} warm-up steps: {self.stamps}")
        return (b1 - b0) * batch_size / (t1 - t0)


def synthetic(size, batch, classes, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, (batch, size, size, 3)).astype("float32")
    y = rng.integers(0, classes, (batch,)).astype("int32")
    return tf.data.Dataset.from_tensors((x, y)).repeat()


class Runner:
    """Holds the Keras models (built once, compiled once) so later rounds do not retrace."""

    def __init__(self, model_name, reszoo_options, keras_jit):
        self.model_name = model_name
        self.size, self.batch, self.classes, _, _ = CONFIGS[model_name]
        self.ds = synthetic(self.size, self.batch, self.classes)
        self.keras_models = {}
        self.reszoo_options = reszoo_options
        self.keras_jit = keras_jit

    def keras_model(self, policy):
        if policy not in self.keras_models:
            previous = keras.config.dtype_policy()
            keras.config.set_dtype_policy(policy)
            try:
                model = plain_keras_model(self.model_name, self.classes)
            finally:
                keras.config.set_dtype_policy(previous)
            model.compile(
                optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                metrics=["accuracy"],
                jit_compile=self.keras_jit,
            )
            self.keras_models[policy] = model
        return self.keras_models[policy]

    def run(self, variant, steps, warmup):
        timer = StepTimer()
        if variant.startswith("keras"):
            policy = "float32" if variant == "keras_f32" else "mixed_bfloat16"
            model = self.keras_model(policy)
            model.fit(
                self.ds, epochs=1, steps_per_epoch=warmup + steps, callbacks=[timer], verbose=0
            )
            return timer.rate(self.batch, warmup), policy
        base, extra = variant.split("[", 1) if "[" in variant else (variant, "")
        options = dict(self.reszoo_options)
        for item in filter(None, extra.rstrip("]").split(";")):  # reszoo_auto[k=json;k=json]
            k, v = item.split("=", 1)
            options[k] = json.loads(v)
        precision = "float32" if base == "reszoo_f32" else "auto"
        # the first executed chunk (steps_per_execution steps) holds the tracing: all warm-up
        from reszoo.training import recipes

        k = int(options.get("steps_per_execution", recipes.defaults()["steps_per_execution"]))
        warm = -(-warmup // k) * k
        result = reszoo.fit(
            self.model_name,
            self.ds,
            epochs=1,
            steps_per_epoch=warm + steps,
            batch_size=self.batch,
            precision=precision,
            output_dir=None,
            verbose=0,
            callbacks=[timer],
            num_classes=self.classes,
            **options,
        )
        self.resolved = {k: result.config.get(k) for k in ("steps_per_execution", "jit_compile")}
        return timer.rate(self.batch, warm), result.config["precision"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    p.add_argument("--models", default="resnet20,resnet50")
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument(
        "--rounds",
        type=int,
        help="interleaved rounds (default 5 for resnet20, 1 for resnet50; --quick: 2 and 1)",
    )
    p.add_argument("--steps", type=int, help="timed steps per variant per round")
    p.add_argument(
        "--reszoo-option",
        action="append",
        default=[],
        metavar="KEY=JSON",
        help="extra reszoo.fit option, e.g. steps_per_execution=8 or jit_compile=true",
    )
    p.add_argument("--keras-jit", action="store_true", help="compile the Keras models with XLA")
    p.add_argument(
        "--threads",
        metavar="INTRA,INTER",
        help="tf.config.threading intra-op,inter-op thread counts (default: TF's)",
    )
    p.add_argument("--label", default="", help="added to the run's title in the history")
    p.add_argument("--no-record", action="store_true", help="print only")
    args = p.parse_args(argv)
    if args.threads:
        intra, inter = (int(v) for v in args.threads.split(","))
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    opts = {}
    for item in args.reszoo_option:
        k, v = item.split("=", 1)
        opts[k] = json.loads(v)
    variants = args.variants.split(",")
    models = args.models.split(",")

    rows, runners, all_rates = [], {}, {}
    for model_name in models:
        size, batch, _, default_steps, warmup = CONFIGS[model_name]
        steps = args.steps or (max(2, default_steps // 2) if args.quick else default_steps)
        rounds = args.rounds or ((2 if args.quick else 5) if model_name == "resnet20" else 1)
        runner = runners[model_name] = Runner(model_name, opts, args.keras_jit)
        rates = {v: [] for v in variants}
        precision = {}
        for r in range(rounds):
            for v in variants:
                rate, prec = runner.run(v, steps, warmup)
                rates[v].append(rate)
                precision[v] = prec
                print(
                    f"  {model_name} round {r + 1}/{rounds} {v:12s} ({prec}): {rate:7.1f} img/s",
                    flush=True,
                )
        med = {v: common.median(rates[v]) for v in variants}
        all_rates[model_name] = rates
        base = med.get("keras_f32")
        for v in variants:
            same = med.get("keras_f32" if precision[v] == "float32" else "keras_bf16")
            rows.append(
                [
                    model_name,
                    f"{size}x{size}",
                    batch,
                    v,
                    precision[v],
                    med[v],
                    " / ".join(f"{x:.1f}" for x in rates[v]),
                    f"{med[v] / base:.2f}x" if base else "-",
                    f"{med[v] / same:.2f}x" if same and not v.startswith("keras") else "-",
                ]
            )
            common.save_latest(f"train_ips/{model_name}/{v}", med[v])
        for v in variants:
            if v.startswith("reszoo"):
                common.save_latest(f"train_ips/{model_name}/{v}/options", opts)

    standard = not (args.quick or opts or args.keras_jit or args.threads)
    standard = standard and variants == list(VARIANTS)
    for m in models:
        body = model_report(m, [r for r in rows if r[0] == m], all_rates[m], opts, runners, args)
        title = f"Training throughput (bench_training), {m}" + (
            f": {args.label}" if args.label else ""
        )
        # Only a run of the standard variants with fit's defaults is the model's current figure;
        # --quick checks and tuning attempts go to the history only.
        common.record_results(
            "training", title, body, slot=m, current=standard, record=not args.no_record
        )


def model_report(model_name, rows, rates, opts, runners, args) -> str:
    """One model's table and its goal lines (same-round ratios, robust to load drift)."""
    headers = [
        "model",
        "input",
        "batch",
        "variant",
        "precision",
        "img/s (median)",
        "per round",
        "vs keras f32",
        "vs keras same precision",
    ]
    resolved = getattr(runners[model_name], "resolved", None)
    notes = [
        f"reszoo.fit options: {opts or 'defaults'} (resolved: {{{model_name!r}: {resolved}}}); "
        f"Keras jit_compile={args.keras_jit}; threads (intra,inter)={args.threads or 'TF default'}."
    ]
    med = {v: common.median(r) for v, r in rates.items()}

    def paired(a, b):
        return common.median([x / y for x, y in zip(rates[a], rates[b])])

    if "reszoo_auto" in med and "keras_f32" in med:
        goal = paired("reszoo_auto", "keras_f32")
        notes.append(
            f"Goal {model_name}: reszoo.fit auto / Keras f32 = {goal:.2f}x (median of "
            f"same-round ratios; goal >= 1.3x): {'MET' if goal >= 1.3 else 'MISSED'}."
        )
    pairs = [("reszoo_f32", "keras_f32"), ("reszoo_auto", "keras_bf16")]
    pairs += [(v, "reszoo_auto") for v in med if "[" in v and "reszoo_auto" in med]
    for a, b in pairs:
        if a in med and b in med:
            x = paired(a, b)
            notes.append(
                f"{model_name}: {a} / {b} = {x:.2f}x (median of same-round ratios; goal "
                f">= 1.0): {'MET' if x >= 1.0 else 'MISSED'}."
            )
    return common.table(headers, rows) + "\n\n" + "\n".join(f"- {n}" for n in notes)


if __name__ == "__main__":
    main()
