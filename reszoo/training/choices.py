"""The choices of the training options that are names, defined once: the recipes validate
against them and the command line offers them (without importing TensorFlow). Schedules and
optimizers are the keys of their tables (reszoo/training/schedules.py, optimizers.py)."""

from reszoo.training.optimizers import OPTIMIZERS as _OPTIMIZER_TABLE
from reszoo.training.schedules import SCHEDULES as _SCHEDULE_TABLE

SCHEDULES = tuple(_SCHEDULE_TABLE)
OPTIMIZERS = tuple(_OPTIMIZER_TABLE)
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
