"""The choices of the training options that are names, defined once: the recipes validate
against them and the command line offers them (without importing TensorFlow)."""

SCHEDULES = ("cosine", "steps", "constant")
OPTIMIZERS = ("sgd", "adam", "adamw")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "one_device", "mirrored", "multi_worker", "tpu")
