"""reszoo.fit and reszoo.recipes: the custom distributed step, run directory, resume, NaN stop,
callbacks, precision, strategies (Mirrored on 2 logical CPUs, MultiWorkerMirrored with 2 worker
processes) and a short digits run that learns.

Models are tiny (resnet20 with one block per stage) so each test takes seconds; the
multi-process tests run scripts in subprocesses because device and cluster setup must happen
before TensorFlow initializes.
"""

import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from conftest import free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"depths": [1, 1, 1]}

from reszoo.errors import ConfigError, TrainingError  # noqa: E402
from reszoo.training import recipes  # noqa: E402  (pure Python, no TensorFlow)


def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _run_script(code, *args, timeout=240, **env):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        cwd=ROOT,
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _dataset(n=128, batch=32, classes=2, seed=0, poison_batch=None):
    """A learnable toy problem: the class is whether the red channel is bright."""
    import tensorflow as tf

    rng = np.random.RandomState(seed)
    x = rng.uniform(0, 255, (n, 32, 32, 3)).astype("float32")
    y = (x[:, :, :, 0].mean(axis=(1, 2)) > 127.5).astype("int32") % classes
    if poison_batch is not None:
        x[poison_batch * batch : (poison_batch + 1) * batch] = np.nan
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True)


def _fit(*args, **kwargs):
    from reszoo.training import fit

    kwargs.setdefault("precision", "float32")
    kwargs.setdefault("overrides", TINY)
    kwargs.setdefault("verbose", 0)
    return fit(*args, **kwargs)


# --------------------------------------------------------------------------- recipes (no TF)


def test_recipes_cifar_and_imagenet_defaults():
    import reszoo

    c = recipes.resolve(reszoo.get_config("resnet56"), "cifar10")
    assert c["kind"] == "cifar"
    assert (c["optimizer"], c["momentum"], c["lr"], c["batch_size"]) == ("sgd", 0.9, 0.1, 128)
    assert (c["epochs"], c["schedule"], c["lr_steps"], c["lr_decay"]) == (
        182,
        "steps",
        [91, 136],
        0.1,
    )
    assert c["weight_decay"] == 1e-4
    i = recipes.resolve(reszoo.get_config("resnet50"), "imagenet2012")
    assert i["kind"] == "imagenet"
    assert (i["epochs"], i["batch_size"], i["lr"], i["warmup_epochs"], i["label_smoothing"]) == (
        90,
        256,
        0.1,
        5,
        0.1,
    )
    assert recipes.resolve(reszoo.get_config("wrn28_10"), "cifar100")["kind"] == "cifar"
    assert recipes.resolve(reszoo.get_config("resnet20"), "digits")["epochs"] == 15


def test_recipes_layers_scaling_and_validation(tmp_path):
    import reszoo

    cfg = reszoo.get_config("resnet20")
    # linear scaling from the recipe's base batch; an explicit lr wins
    assert recipes.resolve(cfg, "cifar10", options={"batch_size": 512})["lr"] == pytest.approx(0.4)
    assert recipes.resolve(cfg, "cifar10", options={"batch_size": 512, "lr": 0.05})["lr"] == 0.05
    # shortening the run scales the recipe's step epochs
    assert recipes.resolve(cfg, "cifar10", options={"epochs": 18})["lr_steps"] == [9.0, 13.451]
    # config file, then options (kwargs / --set) win
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"momentum": 0.8, "weight_decay": 5e-4}))
    r = recipes.resolve(cfg, "cifar10", config=str(f), options={"momentum": 0.95})
    assert (r["momentum"], r["weight_decay"]) == (0.95, 5e-4)
    with pytest.raises(ConfigError, match="did you mean 'momentum'"):
        recipes.resolve(cfg, "cifar10", options={"momentun": 0.9})
    with pytest.raises(ConfigError, match="epochs must be a positive integer"):
        recipes.resolve(cfg, "cifar10", options={"epochs": 0})
    with pytest.raises(ConfigError, match="schedule must be one of"):
        recipes.resolve(cfg, "cifar10", options={"schedule": "no_such_schedule"})
    assert recipes.parse_set(
        ["lr_steps=[3,6]", "overrides.depths=[1,1,1]", "augment=none", "nesterov=true"]
    ) == {
        "lr_steps": [3, 6],
        "overrides": {"depths": [1, 1, 1]},
        "augment": "none",
        "nesterov": True,
    }
    with pytest.raises(ConfigError):
        recipes.parse_set(["novalue"])


def test_lr_schedule_warmup_cosine_steps():
    from reszoo.training.trainer import LRSchedule

    s = LRSchedule(0.1, total_steps=100, warmup_steps=10, kind="cosine")
    assert float(s(0)) == pytest.approx(0.01)
    assert float(s(9)) == pytest.approx(0.1)
    assert float(s(55)) == pytest.approx(0.05, rel=1e-4)
    assert float(s(100)) == pytest.approx(0.0, abs=1e-7)
    s = LRSchedule(0.1, total_steps=100, kind="steps", boundaries=[50, 75], decay=0.1)
    assert [round(float(s(i)), 6) for i in (49, 50, 75)] == [0.1, 0.01, 0.001]


def test_precision_and_strategy_selection(monkeypatch):
    import reszoo.training.trainer as fitmod
    from reszoo.training import devices

    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert fitmod.select_precision("auto")[0] == "mixed_bfloat16"
    monkeypatch.setattr(devices, "cpu_flags", lambda: {"avx2"})
    assert fitmod.select_precision("auto")[0] == "float32"
    assert fitmod.select_precision("mixed_float16") == ("mixed_float16", "requested")
    with pytest.raises(ConfigError):
        fitmod.select_precision("float64")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        fitmod.select_strategy("auto")
    monkeypatch.delenv("TF_CONFIG")
    strategy, name = fitmod.select_strategy("auto")
    assert name == "default" and strategy.num_replicas_in_sync == 1


# --------------------------------------------------------------------------- fit in-process


def test_fit_writes_run_directory_and_resumes(tmp_path):
    import keras
    import tensorflow as tf

    import reszoo
    from reszoo.training import make_checkpoint

    out = tmp_path / "run"
    before = keras.config.dtype_policy().name
    r = _fit(
        "resnet20",
        _dataset(),
        _dataset(64, seed=1),
        epochs=2,
        output_dir=str(out),
        num_classes=2,
        class_names=["dark", "bright"],
        checkpoint_every=3,
    )
    assert keras.config.dtype_policy().name == before
    assert sorted(os.listdir(out)) == sorted(
        ["checkpoints", "config.json", "history.csv", "model.keras", "summary.json", "tensorboard"]
        + (["learning_curves.png"] if "plot" not in r.summary else [])
    )
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"] == "resnet20" and cfg["dataset"] == "custom"
    assert cfg["class_names"] == ["dark", "bright"]
    assert cfg["build"] == {
        "name": "resnet20",
        "num_classes": 2,
        "input_shape": [32, 32, 3],
        "overrides": TINY,
    }
    for key in (
        "epochs",
        "batch_size",
        "lr",
        "optimizer",
        "momentum",
        "weight_decay",
        "schedule",
        "precision",
        "total_steps",
    ):
        assert key in cfg
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == 8
    for key in (
        "versions",
        "device",
        "precision",
        "strategy",
        "final_metrics",
        "images_per_sec",
        "wall_time_sec",
        "config",
    ):
        assert key in summary
    assert set(summary["final_metrics"]) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,loss,accuracy,val_loss,val_accuracy,lr") and len(rows) == 3
    assert any(f.startswith("events") for f in os.listdir(out / "tensorboard" / "train"))
    # the saved model and the rebuilt architecture agree
    loaded = keras.saving.load_model(str(out / "model.keras"))
    x = np.random.RandomState(3).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(
        loaded.predict(x, verbose=0), r.model.predict(x, verbose=0), atol=1e-5
    )
    b = cfg["build"]
    rebuilt = reszoo.build(
        b["name"],
        num_classes=b["num_classes"],
        input_shape=tuple(b["input_shape"]),
        **b["overrides"],
    )
    # the checkpoint object's attributes: model, optimizer, step, epoch
    step, epoch = tf.Variable(0, dtype=tf.int64), tf.Variable(0, dtype=tf.int64)
    ckpt = make_checkpoint(rebuilt, step=step, epoch=epoch)
    ckpt.restore(tf.train.latest_checkpoint(str(out / "checkpoints"))).expect_partial()
    assert int(step) == 8 and int(epoch) == 2
    names = {n.split("/")[0] for n, _ in tf.train.list_variables(str(out / "checkpoints"))}
    assert {"model", "optimizer", "step", "epoch"} <= names
    np.testing.assert_allclose(
        rebuilt.predict(x, verbose=0), r.model.predict(x, verbose=0), atol=1e-5
    )
    # mid-epoch resume: the files on disk decide (not the state file), so move the step-8
    # checkpoint away and rerun the same call
    for name in os.listdir(out / "checkpoints"):
        if name.startswith("ckpt-8."):
            os.replace(out / "checkpoints" / name, tmp_path / name)
    r2 = _fit(
        "resnet20",
        _dataset(),
        _dataset(64, seed=1),
        epochs=3,
        output_dir=str(out),
        num_classes=2,
        class_names=["dark", "bright"],
        checkpoint_every=3,
    )
    assert r2.summary["resumed_from_step"] == 6 and r2.summary["global_step"] == 12
    assert r2.history["epoch"] == [1, 2, 3]  # epoch 1 from history.csv, 2 and 3 re-run/new


def test_output_dir_of_another_config_is_refused(tmp_path):
    out = tmp_path / "run"
    _fit("resnet20", _dataset(64), epochs=1, output_dir=str(out), num_classes=2)
    listing = sorted(os.listdir(out))
    stamp = (out / "config.json").stat().st_mtime_ns
    with pytest.raises(TrainingError, match="another config.*overrides"):
        _fit(
            "resnet20",
            _dataset(64),
            epochs=1,
            output_dir=str(out),
            num_classes=2,
            overrides={"depths": [2, 1, 1]},
        )
    with pytest.raises(TrainingError, match="another config.*momentum"):
        _fit("resnet20", _dataset(64), epochs=1, output_dir=str(out), num_classes=2, momentum=0.5)
    assert sorted(os.listdir(out)) == listing
    assert (out / "config.json").stat().st_mtime_ns == stamp
    other = tmp_path / "notarun"
    other.mkdir()
    (other / "photo.jpg").write_bytes(b"x")
    with pytest.raises(TrainingError, match="not empty"):
        _fit("resnet20", _dataset(64), epochs=1, output_dir=str(other), num_classes=2)
    assert os.listdir(other) == ["photo.jpg"]


def test_nan_loss_stops_naming_the_step_and_last_checkpoint_loads(tmp_path):
    import tensorflow as tf

    import reszoo
    from reszoo.errors import DivergedError
    from reszoo.training import load_checkpoint_weights

    out = tmp_path / "run"
    # 4 batches per epoch; the 4th is NaN: global step 4 diverges, checkpoints exist at 2
    with pytest.raises(DivergedError, match=r"global step 4 .*ckpt-2") as info:
        _fit(
            "resnet20",
            _dataset(128, poison_batch=3),
            epochs=3,
            output_dir=str(out),
            num_classes=2,
            checkpoint_every=2,
        )
    assert isinstance(info.value, TrainingError)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged"
    assert not (out / "model.keras").exists()
    model = reszoo.build("resnet20", num_classes=2, **TINY)
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("ckpt-2")
    assert load_checkpoint_weights(model, str(out)) == 2
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_callbacks_early_stopping_csvlogger_and_logs(tmp_path):
    import keras

    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append(("begin", self.model is not None))

        def on_epoch_end(self, epoch, logs=None):
            seen.append((epoch, sorted(logs)))

        def on_train_end(self, logs=None):
            seen.append(("end",))

    csv_path = tmp_path / "log.csv"
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=0, min_delta=100.0)
    r = _fit(
        "resnet20",
        _dataset(64),
        _dataset(64, seed=1),
        epochs=10,
        num_classes=2,
        callbacks=[Spy(), stop, keras.callbacks.CSVLogger(str(csv_path))],
    )
    assert len(r.history["epoch"]) == 2  # epoch 2 shows no improvement of 100 -> stop
    assert r.summary["status"] == "stopped_early"
    assert seen[0] == ("begin", True) and seen[-1] == ("end",)
    assert seen[1] == (0, ["accuracy", "loss", "lr", "val_accuracy", "val_loss"])
    lines = csv_path.read_text().splitlines()
    assert len(lines) == 3 and "val_accuracy" in lines[0]


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_steps_are_finite(precision):
    import keras

    r = _fit("resnet20", _dataset(64), epochs=1, num_classes=2, precision=precision)
    assert keras.config.dtype_policy().name == "float32"
    assert r.model.dtype_policy.name == precision
    assert r.model.outputs[0].dtype == "float32"
    assert np.isfinite(r.history["loss"]).all()
    assert r.summary["precision"] == precision


def test_fit_options_clipping_ema_adamw_and_steps_per_execution():
    r = _fit(
        "resnet20",
        _dataset(64),
        epochs=2,
        num_classes=2,
        grad_clip_norm=1.0,
        ema_decay=0.9,
        optimizer="adamw",
        lr=1e-3,
        weight_decay=1e-4,
        steps_per_execution=2,
    )
    assert np.isfinite(r.history["loss"]).all() and r.summary["global_step"] == 4


def test_bad_inputs_raise_before_anything_is_written(tmp_path):

    from reszoo.errors import UnknownModelError

    out = tmp_path / "run"
    with pytest.raises(UnknownModelError):
        _fit("resnet21", _dataset(64), output_dir=str(out))
    with pytest.raises(ConfigError, match="batch_size=16"):
        _fit("resnet20", _dataset(64), batch_size=16, output_dir=str(out))
    unknown_len = _dataset(64).filter(lambda x, y: True)
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        _fit("resnet20", unknown_len, output_dir=str(out), num_classes=2)
    assert not out.exists()


# --------------------------------------------------------------------------- digits


def test_short_fit_on_digits_learns(tmp_path):
    pytest.importorskip("sklearn")
    start = time.time()
    r = _fit("resnet20", "digits", epochs=8, precision="auto")
    acc = r.history["val_accuracy"][-1]
    assert acc > 0.6, r.history
    assert (
        r.config["class_names"] == [str(i) for i in range(10)] or len(r.config["class_names"]) == 10
    )
    assert time.time() - start < 120


# --------------------------------------------------------------------------- subprocesses

MIRRORED = """
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from reszoo.errors import ConfigError
from reszoo.training import fit
rng = np.random.RandomState(0)
x = rng.uniform(0, 255, (128, 32, 32, 3)).astype("float32")
y = (x[..., 0].mean(axis=(1, 2)) > 127.5).astype("int32")
def ds(b):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(b, drop_remainder=True)
r = fit("resnet20", ds(32), ds(32), epochs=2, strategy="mirrored", precision="float32",
        num_classes=2, overrides={"depths": [1, 1, 1]}, verbose=0)
try:
    fit("resnet20", ds(33), epochs=1, strategy="mirrored", num_classes=2, verbose=0)
    bad = None
except ConfigError as e:
    bad = str(e)
print("RESULT", json.dumps({"replicas": r.summary["num_replicas"], "loss": r.history["loss"],
                            "val": r.history["val_accuracy"], "bad": bad}))
"""


def test_mirrored_strategy_on_two_logical_cpus():
    p = _run_script(MIRRORED)
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.split("RESULT", 1)[1])
    assert res["replicas"] == 2
    assert np.isfinite(res["loss"]).all() and res["val"][-1] is not None
    assert "not divisible by the 2 replicas" in res["bad"]


WORKER = """
import json, os, sys
import numpy as np
from reszoo.training import fit
out, weights_file = sys.argv[1], sys.argv[2]
r = fit("resnet20", "synthetic", epochs=2, steps_per_epoch=3, batch_size=16, precision="float32",
        overrides={"depths": [1, 1, 1]}, output_dir=out, checkpoint_every=2, verbose=0)
np.save(weights_file, np.concatenate([w.ravel() for w in r.model.get_weights()]))
print("RESULT", json.dumps({"strategy": r.summary["strategy"], "chief": r.is_chief,
                            "replicas": r.summary["num_replicas"],
                            "step": r.summary["global_step"]}))
"""


def test_multi_worker_mirrored_two_processes(tmp_path):
    pytest.importorskip("reszoo.data")
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    out = tmp_path / "run"
    procs = []
    for i in range(2):
        env = _env(
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    textwrap.dedent(WORKER),
                    str(out),
                    str(tmp_path / f"w{i}.npy"),
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    try:
        for p in procs:
            stdout, stderr = p.communicate(timeout=240)
            assert p.returncode == 0, stderr[-3000:]
            results.append(json.loads(stdout.split("RESULT", 1)[1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [r["chief"] for r in results] == [True, False]
    assert all(
        r["strategy"] == "multi_worker" and r["replicas"] == 2 and r["step"] == 6 for r in results
    )
    w0, w1 = np.load(tmp_path / "w0.npy"), np.load(tmp_path / "w1.npy")
    np.testing.assert_array_equal(w0, w1)
    assert sorted(os.listdir(out / "checkpoints"))[0] == "checkpoint"
    assert (out / "model.keras").exists() and (out / "summary.json").exists()


KILLABLE = """
import sys, time, keras
from reszoo.training import fit
class Slow(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(float(sys.argv[2]))
r = fit("resnet20", "synthetic", epochs=2, steps_per_epoch=10, batch_size=8,
        precision="float32", overrides={"depths": [1, 1, 1]}, output_dir=sys.argv[1],
        checkpoint_every=3, verbose=0, callbacks=[Slow()])
print("RESULT", r.summary["global_step"], r.summary["resumed_from_step"])
"""


def test_kill_minus_9_then_rerun_completes_planned_steps(tmp_path):
    pytest.importorskip("reszoo.data")
    out = tmp_path / "run"
    code = textwrap.dedent(KILLABLE)
    p = subprocess.Popen(
        [sys.executable, "-c", code, str(out), "0.3"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    state = out / "checkpoints" / "checkpoint"
    deadline = time.time() + 180
    try:
        while time.time() < deadline and p.poll() is None:
            if state.exists() and "ckpt-" in state.read_text():
                break
            time.sleep(0.05)
        assert p.poll() is None, p.stderr.read().decode()[-3000:]
        p.kill()  # SIGKILL
        p.wait()
    finally:
        if p.poll() is None:
            p.kill()
    assert not (out / "summary.json").exists()
    p2 = _run_script(KILLABLE, str(out), "0")
    assert p2.returncode == 0, p2.stderr[-3000:]
    step, resumed = p2.stdout.split("RESULT", 1)[1].split()
    assert int(step) == 20 and int(resumed) >= 3
    assert json.loads((out / "summary.json").read_text())["status"] == "completed"
