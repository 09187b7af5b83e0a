"""python -m reszoo.train MODEL DATASET: the command line for reszoo.fit.

Parsing only: the recipe is resolved and the run is done by reszoo.fit (reszoo/recipes.py holds
the resolution rules). Exit codes: 0 success; 2 bad arguments or input (one line on stderr);
1 the run failed (diverged, or an unexpected error, with its traceback).
"""

from __future__ import annotations

import argparse
import os
import re
import sys

EPILOG = """\
examples:
  python -m reszoo.train resnet20 digits                  # ~1 minute on a laptop CPU
  python -m reszoo.train resnet20 cifar10                 # the paper's 182-epoch recipe
  python -m reszoo.train resnet20 cifar10 --epochs 15 --set schedule=cosine --set warmup_epochs=1
  python -m reszoo.train resnet56 ~/data/cifar10-jpeg --batch-size 256 --output runs/r56
  python -m reszoo.train resnet50 imagenet2012 --data-dir ~/tensorflow_datasets --precision mixed_float16
  python -m reszoo.train resnet20 digits --set overrides.depths=[1,1,1] --export exported/r20

The recipe (optimizer, schedule, weight decay, epochs...) depends on the model kind and dataset;
every value can be changed with --config FILE (JSON/YAML) and --set key=value (JSON values,
dotted keys for nested ones; later wins). The resolved config is written to OUTPUT/config.json.
Rerunning the same command resumes from OUTPUT/checkpoints; an OUTPUT holding a run of another
config is refused (exit 2).

exit codes: 0 success, 2 bad arguments or input, 1 run failure"""


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, exit 2 (it prints usage + message by default); shared
    by the train and export CLIs: "python -m reszoo.export" reports as "reszoo.export: error:"."""

    def error(self, message):
        sys.stderr.write(f"{self.prog.split()[-1]}: error: {' '.join(message.split())}\n")
        sys.exit(2)


def _number(kind, minimum, inclusive, description):
    """An argparse type: `kind` parsed from text, at least (or above) `minimum`, finite."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or not (value >= minimum if inclusive else value > minimum)
            or value == float("inf")
        ):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
        return value

    return parse


_positive_int = _number(int, 1, True, "a positive integer")
_non_negative_int = _number(int, 0, True, "an integer >= 0")
_positive_float = _number(float, 0.0, False, "a positive number")


def build_parser():
    p = _Parser(
        prog="python -m reszoo.train",
        description="Train a reszoo model (a zoo name) on a dataset (digits, synthetic, "
        "a TFDS name such as cifar10, or a folder with one sub-folder per "
        "class), with the recipe for that model and dataset.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", help="zoo model name, e.g. resnet20 (see reszoo.list_models())")
    p.add_argument(
        "dataset",
        help="digits, synthetic, a TFDS name (cifar10, imagenet2012, ...) or an image folder path",
    )
    p.add_argument("--epochs", type=_positive_int, help="number of epochs (recipe default)")
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        help="GLOBAL batch size, divisible by the number of replicas",
    )
    p.add_argument(
        "--lr",
        type=_positive_float,
        help="learning rate (default: the recipe's base_lr scaled linearly from its "
        "base_batch_size)",
    )
    p.add_argument(
        "--precision",
        choices=["auto", "float32", "mixed_float16", "mixed_bfloat16"],
        help="default auto: mixed_float16 on NVIDIA GPUs >= 7.0, mixed_bfloat16 on "
        "TPUs and bf16 CPUs, else float32",
    )
    p.add_argument(
        "--strategy",
        choices=["auto", "default", "one_device", "mirrored", "multi_worker", "tpu"],
        help="default auto: TPU, multi-worker (TF_CONFIG), mirrored (>1 GPU), default",
    )
    p.add_argument(
        "--augment", help="augmentation: auto, none, cifar, imagenet, ... (see reszoo.data)"
    )
    p.add_argument("--output", help="run directory (default runs/MODEL-DATASET)")
    p.add_argument(
        "--data-dir", help="TFDS data directory (default TFDS_DATA_DIR or ~/tensorflow_datasets)"
    )
    p.add_argument(
        "--export",
        metavar="DIR",
        help="after training, export a SavedModel for TF Serving into DIR (reszoo.export)",
    )
    p.add_argument("--config", metavar="FILE", help="JSON or YAML file of training options")
    p.add_argument(
        "--set",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="override one option (repeatable), e.g. --set schedule=cosine "
        "--set lr_steps=[30,60] --set overrides.depths=[1,1,1]",
    )
    p.add_argument(
        "--steps-per-epoch",
        type=_positive_int,
        help="steps per epoch (default: one pass over the data)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=_non_negative_int,
        help="checkpoint every N steps as well as at each epoch end (0: epoch ends)",
    )
    p.add_argument("--seed", type=_non_negative_int, help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def default_output(model, dataset):
    name = (
        os.path.basename(os.path.normpath(dataset))
        if (os.sep in dataset or os.path.isdir(dataset))
        else dataset
    )
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "data"
    return os.path.join("runs", f"{model}-{name}")


def _one_line(error) -> str:
    text = error.args[0] if len(error.args) == 1 and isinstance(error.args[0], str) else str(error)
    return " ".join(text.split()) or type(error).__name__


def _import_quietly():
    """Import TensorFlow and Keras with their C++ start-up log lines (written before absl
    logging is initialised, whatever TF_CPP_MIN_LOG_LEVEL says) sent to /dev/null, so that a bad
    argument is reported in one line. RESZOO_TF_LOGS=1 keeps them."""
    if os.environ.get("RESZOO_TF_LOGS") or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        import keras  # noqa: F401
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _import_quietly()
    from reszoo.errors import ReszooError
    from reszoo.recipes import parse_set

    try:
        options = parse_set(args.set)
        if args.export:
            try:
                from reszoo.export import export  # noqa: F401
            except ImportError as e:
                raise ReszooError(
                    f"--export needs reszoo.export, which cannot be imported ({e})"
                ) from e
        flags = {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "precision": args.precision,
            "strategy": args.strategy,
            "augment": args.augment,
            "data_dir": args.data_dir,
            "steps_per_epoch": args.steps_per_epoch,
            "checkpoint_every": args.checkpoint_every,
            "seed": args.seed,
        }
        options.update({k: v for k, v in flags.items() if v is not None})
        output = args.output or default_output(args.model, args.dataset)
        # Check what can be checked before TensorFlow is imported (its import logs to stderr).
        import reszoo
        from reszoo.recipes import prepare

        prepare(
            args.model,
            reszoo.get_config(args.model),
            args.dataset,
            config=args.config,
            options=options,
            output_dir=output,
        )
        if args.export:  # an unusable export directory is refused before training, not after
            from pathlib import Path

            from reszoo.export import _check_export_dir

            _check_export_dir(Path(args.export), None, False)
        from reszoo.fit import RunFailedError, fit

        try:
            result = fit(
                args.model,
                args.dataset,
                config=args.config,
                output_dir=output,
                verbose=0 if args.quiet else 1,
                **_fit_kwargs(options),
            )
        except RunFailedError as e:  # diverged, checkpoint not writable, a worker lost
            sys.stderr.write(f"reszoo.train: run failed: {_one_line(e)}\n")
            return 1
        if args.export and result.is_chief:
            from reszoo.export import export

            path = export(
                result.model,
                args.export,
                class_names=result.config["class_names"],
                model_name=args.model,
                summary=result.summary,
            )
            if not args.quiet:
                print(f"reszoo.train: exported to {path}")
    except ReszooError as e:
        sys.stderr.write(f"reszoo.train: error: {_one_line(e)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("reszoo.train: interrupted; rerun the same command to resume\n")
        return 1
    if not args.quiet:
        print(f"reszoo.train: run directory {output}")
    return 0


def _fit_kwargs(options):
    # fit's named parameters default to "auto"; pass them only when given.
    return {k: v for k, v in options.items() if v is not None}


if __name__ == "__main__":
    sys.exit(main())
