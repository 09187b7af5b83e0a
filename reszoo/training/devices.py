"""Which tf.distribute strategy and which precision policy suit this machine.

strategy="auto": a TPU when one is found; MultiWorkerMirrored when TF_CONFIG names more than one
worker; Mirrored on more than one GPU; otherwise the default strategy.
precision="auto": mixed_float16 on NVIDIA GPUs of compute capability 7.0 and up; mixed_bfloat16
on TPUs and on CPUs with AVX512_BF16 or AMX (measured faster than float32 on such a CPU: 538 vs
375 img/s for a plain ResNet-20); float32 otherwise. Each choice comes with its reason.
"""

from __future__ import annotations

import json
import os
import platform

import tensorflow as tf

from reszoo.errors import ConfigError, TrainingError
from reszoo.training.choices import PRECISIONS, STRATEGIES


def _parse_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG does not parse as JSON ({e})") from None
    if not isinstance(value, dict) or not isinstance(value.get("cluster", {}), dict):
        raise ConfigError("TF_CONFIG must be a JSON object with a 'cluster' mapping and a 'task'")
    task = value.get("task", {})
    if value.get("cluster") and (not isinstance(task, dict) or "type" not in task):
        raise ConfigError("TF_CONFIG names a cluster but no task {'type': ..., 'index': ...}")
    return value


def _num_workers(tf_config) -> int:
    if not tf_config:
        return 0
    cluster = tf_config.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def _find_tpu():
    """A TPUClusterResolver when this looks like a TPU host, else None (never touches the
    network on a machine without TPU hints)."""
    hints = (
        os.environ.get("TPU_NAME")
        or os.environ.get("COLAB_TPU_ADDR")
        or os.path.exists("/dev/accel0")
        or os.path.exists("/dev/vfio/0")
    )
    if not hints:
        return None
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        resolver.master()
        return resolver
    except Exception:  # noqa: BLE001 - no TPU is a normal outcome
        return None


def _multi_worker(tf_config, collective_timeout):
    """MultiWorkerMirroredStrategy whose collectives fail after collective_timeout seconds
    (None: wait forever). Without a bound, a peer that stays alive but stops stepping blocks
    every other worker for good; with one, the wait ends in an error the loop reports as a lost
    worker."""
    if _num_workers(tf_config) < 1:
        raise ConfigError(
            "strategy 'multi_worker' needs TF_CONFIG naming the cluster "
            "(see tf.distribute.MultiWorkerMirroredStrategy)"
        )
    options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=collective_timeout)
    return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def select_strategy(spec="auto", collective_timeout=None):
    """(strategy, description). spec: "auto", "default", "one_device", "mirrored",
    "multi_worker", "tpu" or a tf.distribute.Strategy, which is returned as the caller built
    it. collective_timeout: seconds a multi-worker collective may wait (None: no bound); only
    a MultiWorkerMirroredStrategy this function creates uses it."""
    if isinstance(spec, tf.distribute.Strategy):
        return spec, type(spec).__name__
    if spec not in STRATEGIES:
        raise ConfigError(
            f"strategy must be one of {', '.join(STRATEGIES)} or a "
            f"tf.distribute.Strategy, got {spec!r}"
        )
    tf_config = _parse_tf_config()
    if spec == "auto":
        if _find_tpu() is not None:
            spec = "tpu"
        elif _num_workers(tf_config) > 1:
            spec = "multi_worker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            spec = "mirrored"
        else:
            spec = "default"
    if spec == "default":
        return tf.distribute.get_strategy(), "default"
    if spec == "one_device":
        gpus = tf.config.list_physical_devices("GPU")
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0"), "one_device"
    if spec == "mirrored":
        if tf.config.list_physical_devices("GPU"):
            return tf.distribute.MirroredStrategy(), "mirrored"
        cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(cpus), "mirrored"
    if spec == "multi_worker":
        return _multi_worker(tf_config, collective_timeout), "multi_worker"
    # tpu
    resolver = _find_tpu()
    if resolver is None:
        raise TrainingError(
            "strategy 'tpu' requested but no TPU was found (set TPU_NAME or run on a TPU VM)"
        )
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver), "tpu"


def cpu_flags() -> set:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def select_precision(spec="auto", strategy=None):
    """(policy name, reason). See the module docstring for the rule."""
    if spec != "auto":
        if spec not in PRECISIONS:
            raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {spec!r}")
        return spec, "requested"
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "mixed_bfloat16", "TPU"
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        ccs = []
        for gpu in gpus:
            try:
                ccs.append(tf.config.experimental.get_device_details(gpu).get("compute_capability"))
            except Exception:  # noqa: BLE001
                ccs.append(None)
        if all(cc is not None and tuple(cc) >= (7, 0) for cc in ccs):
            return (
                "mixed_float16",
                f"NVIDIA GPU with compute capability {ccs[0][0]}.{ccs[0][1]} >= 7.0",
            )
        return "float32", f"GPU compute capability {ccs[0]} is below 7.0 (no fast float16)"
    flags = cpu_flags()
    found = [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    if found:
        return "mixed_bfloat16", (
            f"CPU has {found[0].upper()} (bfloat16 measured faster than float32 here)"
        )
    return "float32", "no GPU/TPU and no bfloat16 instructions on this CPU"


def is_chief(strategy) -> bool:
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    resolver = strategy.cluster_resolver
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type is None or task_type == "chief":
        return True
    return (
        task_type == "worker" and task_id == 0 and "chief" not in resolver.cluster_spec().as_dict()
    )


def describe_device() -> dict:
    """CPU, GPUs and host, for summary.json and benchmark reports."""
    gpus = tf.config.list_physical_devices("GPU")
    names = []
    for g in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        except Exception:  # noqa: BLE001
            names.append(g.name)
    return {"cpu": cpu_name(), "cpu_count": os.cpu_count(), "gpus": names, "host": platform.node()}
