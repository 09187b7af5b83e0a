"""GPU training throughput: reszoo models on Keras's JAX backend, and torchvision's ResNet-50
on PyTorch, in the same run on the same GPU. No TensorFlow needed.

Measured (images/s, synthetic data already on the device, warm-up/compilation excluded):

* reszoo resnet50, 224x224, batch 256, mixed_bfloat16 (Keras dtype policy), and
* reszoo resnet20, 32x32, batch 512, mixed_bfloat16: a jitted training step written with
  Keras's stateless API (``model.stateless_call`` + ``jax.value_and_grad`` +
  ``optimizer.stateless_apply``, SGD momentum 0.9, sparse softmax cross-entropy, donated
  buffers), i.e. what ``model.fit(jit_compile=True)`` runs on JAX minus its Python overhead;
* torchvision resnet50 (weights=None), batch 256, bf16 autocast, channels_last, SGD momentum
  0.9 (eager, or ``--torch-compile``); skipped with a message when torch/torchvision or CUDA is
  missing.

Each model: ``--warmup`` steps (compilation), then ``--steps`` timed steps; the loss of the last
step is fetched before stopping the clock. Anchors: stock PyTorch ResNet-50 on one H100
about 2,790 img/s; NVIDIA's TensorFlow ResNet-50 on one A100 2,375 img/s (mixed precision, XLA).

Run through run_gpu_suite.sh (installs the carried keras wheel); on its own:

    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/gpu/bench_jax.py
    # tiny CPU check (any machine with jax + keras):
    KERAS_BACKEND=jax PYTHONPATH=. python benchmarks/gpu/bench_jax.py --tiny
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave memory for torch


def log(*a):
    print(*a, flush=True)


def bench_keras(name, size, batch, precision, steps, warmup, num_classes):
    import functools

    import jax
    import jax.numpy as jnp
    import keras

    import reszoo

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = reszoo.build(name, input_shape=(size, size, 3), num_classes=num_classes)
    finally:
        keras.config.set_dtype_policy(previous)
    optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)

    def loss_fn(tv, ntv, x, y):
        logits, ntv = model.stateless_call(tv, ntv, x, training=True)
        logits = logits.astype(jnp.float32)
        logp = jax.nn.log_softmax(logits)
        loss = -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))
        return loss, ntv

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)

    @functools.partial(jax.jit, donate_argnums=(0, 1, 2))
    def train_step(tv, ntv, ov, x, y):
        (loss, ntv), grads = grad_fn(tv, ntv, x, y)
        tv, ov = optimizer.stateless_apply(ov, grads, tv)
        return tv, ntv, ov, loss

    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    ov = [v.value for v in optimizer.variables]
    key = jax.random.PRNGKey(0)
    x = jax.random.uniform(key, (batch, size, size, 3), jnp.float32, 0.0, 255.0)
    y = jax.random.randint(key, (batch,), 0, num_classes, jnp.int32)
    t0 = time.perf_counter()
    for _ in range(warmup):
        tv, ntv, ov, loss = train_step(tv, ntv, ov, x, y)
    float(loss)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        tv, ntv, ov, loss = train_step(tv, ntv, ov, x, y)
    final = float(loss)
    dt = time.perf_counter() - t0
    return {
        "images_per_sec": steps * batch / dt,
        "warmup_s": compile_s,
        "loss": final,
        "params": int(model.count_params()),
    }


def bench_torch(size, batch, steps, warmup, compile_model, num_classes=1000):
    try:
        import torch
        import torchvision
    except ImportError as e:
        return {"skipped": f"{e.name} is not installed"}
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu" and not os.environ.get("RESZOO_TORCH_ON_CPU"):
        return {"skipped": "no CUDA device (set RESZOO_TORCH_ON_CPU=1 to run on CPU anyway)"}
    torch.backends.cudnn.benchmark = True
    model = torchvision.models.resnet50(weights=None, num_classes=num_classes)
    model = model.to(device, memory_format=torch.channels_last).train()
    if compile_model:
        model = torch.compile(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    x = torch.rand(batch, 3, size, size, device=device).contiguous(
        memory_format=torch.channels_last
    )
    y = torch.randint(0, num_classes, (batch,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type=device, dtype=torch.bfloat16):
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    t0 = time.perf_counter()
    for _ in range(warmup):
        loss = step()
    float(loss)
    warm = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    final = float(loss)  # synchronizes
    dt = time.perf_counter() - t0
    return {
        "images_per_sec": steps * batch / dt,
        "warmup_s": warm,
        "loss": final,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "compiled": bool(compile_model),
    }


def device_description():
    import jax

    devs = jax.devices()
    return {
        "jax_devices": [f"{d.platform}:{getattr(d, 'device_kind', '?')}" for d in devs],
        "jax": jax.__version__,
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--tiny", action="store_true", help="CPU smoke test: small batches and images, 2 steps"
    )
    p.add_argument("--precision", default="mixed_bfloat16")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--r50-batch", type=int, default=256)
    p.add_argument("--r50-size", type=int, default=224)
    p.add_argument("--r20-batch", type=int, default=512)
    p.add_argument("--torch-compile", action="store_true")
    p.add_argument("--skip", default="", help="comma list of: resnet50,resnet20,torch")
    p.add_argument("--json", help="write the results here too")
    args = p.parse_args(argv)
    if args.tiny:
        args.steps, args.warmup = 2, 1
        args.r50_batch, args.r50_size, args.r20_batch = 2, 64, 8
    skip = set(filter(None, args.skip.split(",")))

    import keras

    if keras.backend.backend() != "jax":
        raise SystemExit(f"KERAS_BACKEND must be jax (got {keras.backend.backend()})")
    info = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "keras": keras.__version__,
        "tensorflow_imported": "tensorflow" in sys.modules,
        **device_description(),
    }
    log("device:", json.dumps(info))
    results = {}
    jobs = [
        (
            "reszoo resnet50 (Keras/JAX)",
            "resnet50",
            lambda: bench_keras(
                "resnet50",
                args.r50_size,
                args.r50_batch,
                args.precision,
                args.steps,
                args.warmup,
                1000,
            ),
        ),
        (
            "reszoo resnet20 (Keras/JAX)",
            "resnet20",
            lambda: bench_keras(
                "resnet20", 32, args.r20_batch, args.precision, args.steps, args.warmup, 10
            ),
        ),
        (
            "torchvision resnet50 (PyTorch)",
            "torch",
            lambda: bench_torch(
                args.r50_size, args.r50_batch, args.steps, args.warmup, args.torch_compile
            ),
        ),
    ]
    for label, key, job in jobs:
        if key in skip:
            continue
        log(f"running {label} ...")
        try:
            results[label] = job()
        except Exception as e:  # noqa: BLE001 - report and go on with the others
            results[label] = {"error": f"{type(e).__name__}: {e}"[:500]}
        log(f"  {label}: {json.dumps(results[label])}")
    info["tensorflow_imported"] = "tensorflow" in sys.modules
    log("")
    log("| model | batch | input | precision | img/s | warm-up s |")
    log("|---|---|---|---|---|---|")
    shapes = {
        "reszoo resnet50 (Keras/JAX)": (args.r50_batch, args.r50_size, args.precision),
        "reszoo resnet20 (Keras/JAX)": (args.r20_batch, 32, args.precision),
        "torchvision resnet50 (PyTorch)": (args.r50_batch, args.r50_size, "bf16 autocast"),
    }
    for label, r in results.items():
        b, s, prec = shapes[label]
        ips = (
            f"{r['images_per_sec']:,.0f}"
            if "images_per_sec" in r
            else r.get("skipped") or r.get("error")
        )
        warm = f"{r['warmup_s']:.0f}" if "warmup_s" in r else "-"
        log(f"| {label} | {b} | {s}x{s} | {prec} | {ips} | {warm} |")
    log(
        "Anchors: stock PyTorch ResNet-50, one H100 ~2,790 img/s; NVIDIA TF ResNet-50, one A100 "
        "2,375 img/s (mixed precision, XLA)."
    )
    log(f"TensorFlow imported: {info['tensorflow_imported']}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"machine": info, "results": results, "args": vars(args)}, f, indent=2)


if __name__ == "__main__":
    main()
