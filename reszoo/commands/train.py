"""`reszoo train MODEL DATASET` (also `python -m reszoo.train`): the command line for reszoo.fit.

Parsing only: the recipe is resolved and the run is done by reszoo.fit (reszoo/training/recipes.py
holds the resolution rules).
"""

from __future__ import annotations

import os
import re
import sys

from reszoo import cli
from reszoo.choices import AUGMENT_BASES, AUGMENT_EXTRAS
from reszoo.training.choices import PRECISIONS, STRATEGIES

HELP = "train a zoo model on a dataset with its recipe (resumable)"
DESCRIPTION = (
    "Train a reszoo model (a zoo name) on a dataset (digits, synthetic, a TFDS name such as "
    "cifar10, or a folder with one sub-folder per class), with the recipe for that model and "
    "dataset."
)
EPILOG = """\
examples:
  python -m reszoo.train resnet20 digits                  # ~1 minute on a laptop CPU
  python -m reszoo.train resnet20 cifar10                 # the paper's 182-epoch recipe
  python -m reszoo.train resnet20 cifar10 --epochs 15 --set schedule=cosine --set warmup_epochs=1
  python -m reszoo.train resnet56 ~/data/cifar10-jpeg --batch-size 256 --output runs/r56
  python -m reszoo.train resnet50 imagenet2012 --data-dir ~/tensorflow_datasets --precision mixed_float16
  python -m reszoo.train resnet20 digits --set overrides.depths=[1,1,1] --export exported/r20
  reszoo train resnet50 ~/photos --weights imagenet        # fine-tune: new head, recipe finetune
  reszoo train resnet50 ~/photos --weights tv2_in1k --set image_size=160 --epochs 5
  reszoo train resnet20 ~/data/cifar10-jpeg --weights runs/r20.weights.h5 --recipe default

The recipe (optimizer, schedule, weight decay, epochs...) depends on the model kind and dataset;
every value can be changed with --config FILE (JSON/YAML) and --set key=value (JSON values,
dotted keys for nested ones; later wins). The resolved config is written to OUTPUT/config.json.
Rerunning the same command resumes from OUTPUT/checkpoints; an OUTPUT holding a run of another
config is refused (exit 2).

--weights starts from pretrained weights with the named recipe "finetune" unless --recipe says
otherwise (recipes.json "named"); a tag's image size and preprocessing are used, and a resumed
run keeps its trained weights.

exit codes: 0 success, 2 bad arguments or input, 1 run failure"""


def add_arguments(p):
    p.add_argument("model", help="zoo model name, e.g. resnet20 (see reszoo.list_models())")
    p.add_argument(
        "dataset",
        help="digits, synthetic, a TFDS name (cifar10, imagenet2012, ...) or an image folder path",
    )
    p.add_argument("--epochs", type=cli.positive_int, help="number of epochs (recipe default)")
    p.add_argument(
        "--batch-size",
        type=cli.positive_int,
        help="GLOBAL batch size, divisible by the number of replicas",
    )
    p.add_argument(
        "--lr",
        type=cli.positive_float,
        help="learning rate (default: the recipe's base_lr scaled linearly from its "
        "base_batch_size)",
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="default auto: mixed_float16 on NVIDIA GPUs >= 7.0, mixed_bfloat16 on "
        "TPUs and bf16 CPUs, else float32",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        help="default auto: TPU, multi-worker (TF_CONFIG), mirrored (>1 GPU), default",
    )
    p.add_argument(
        "--augment",
        help=f"augmentation: {', '.join(AUGMENT_BASES)}, optionally followed by +extras "
        f"({', '.join(AUGMENT_EXTRAS)}), e.g. cifar+randaugment",
    )
    _add_start_arguments(p)
    _add_run_arguments(p)


def _add_start_arguments(p):
    """Where the weights start from and which named recipe trains them."""
    from reszoo.training.recipes import named_recipe_names

    p.add_argument(
        "--weights",
        metavar="TAG|PATH",
        help="start from pretrained weights: a weight tag (reszoo list --weights; imagenet = "
        "the model's default) or a weights file; a new head is sized to the dataset's classes",
    )
    p.add_argument(
        "--recipe",
        choices=named_recipe_names(),
        help="a named recipe over the model's own (default: finetune with --weights)",
    )


def _add_run_arguments(p):
    """Where the run goes and how it is checkpointed, configured and reported."""
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
        type=cli.positive_int,
        help="steps per epoch (default: one pass over the data)",
    )
    p.add_argument(
        "--checkpoint-every",
        type=cli.non_negative_int,
        help="checkpoint every N steps as well as at each epoch end (0: epoch ends)",
    )
    p.add_argument("--seed", type=cli.non_negative_int, help="random seed")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def default_output(model, dataset):
    name = (
        os.path.basename(os.path.normpath(dataset))
        if (os.sep in dataset or os.path.isdir(dataset))
        else dataset
    )
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "data"
    return os.path.join("runs", f"{model}-{name}")


def _options(args) -> dict:
    """The training options the flags and --set give (None: not given)."""
    from reszoo.training.recipes import parse_set

    options = parse_set(args.set)
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
        "weights": args.weights,
        "recipe": args.recipe,
    }
    options.update({k: v for k, v in flags.items() if v is not None})
    return options


def _check_before_training(args, options, output):
    """Everything that can be refused before any work: the recipe, the run directory, the export
    directory (an unusable one is refused before training, not after)."""
    import reszoo
    from reszoo.training.recipes import prepare

    prepare(
        args.model,
        reszoo.get_config(args.model),
        args.dataset,
        config=args.config,
        options=options,
        output_dir=output,
    )
    if args.export:
        from pathlib import Path

        from reszoo.serving import check_export_dir

        check_export_dir(Path(args.export), None, False)


def run(args) -> int:
    cli.import_quietly()
    from reszoo.training import fit

    options = _options(args)
    output = args.output or default_output(args.model, args.dataset)
    _check_before_training(args, options, output)
    try:
        result = fit(
            args.model,
            args.dataset,
            config=args.config,
            output_dir=output,
            verbose=0 if args.quiet else 1,
            **options,
        )
    except KeyboardInterrupt:
        sys.stderr.write(f"{args.prog_name}: interrupted; rerun the same command to resume\n")
        return 1
    if args.export and result.is_chief:
        from reszoo.serving import export

        path = export(
            result.model,
            args.export,
            class_names=result.config["class_names"],
            model_name=args.model,
            summary=result.summary,
        )
        if not args.quiet:
            print(f"{args.prog_name}: exported to {path}")
    if not args.quiet:
        print(f"{args.prog_name}: run directory {output}")
    return 0
