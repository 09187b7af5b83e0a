"""`reszoo experiment degradation DATASET`: plain vs residual networks, as in He et al. 2015."""

from __future__ import annotations

from reszoo import cli

HELP = "reproduce a published experiment (degradation: plain vs residual nets)"
DESCRIPTION = (
    "degradation: train plain networks (no shortcuts) and ResNets of two or more depths on the "
    "same data with the same recipe and seed, and write the paper's figure (training and "
    "held-out error per epoch) and a table to OUTPUT. The defaults fit a 2-core CPU in about "
    "half an hour on 10,000 CIFAR-10 images; --paper gives He et al.'s full setting (a GPU job)."
)
EPILOG = """\
examples:
  tar -xzf cifar10-train-jpeg.tar.gz -C /data        # 50,000 CIFAR-10 training JPEGs
  reszoo experiment degradation /data/train           # plain20/56 vs resnet20/56, ~30 min CPU
  reszoo experiment degradation /data/train --depths 20 32 44 56 --epochs 30 --examples 0
  reszoo experiment degradation cifar10 --paper       # 182 epochs, all 45,000 images, 4 depths

Each network trains in OUTPUT/<model> (rerunning resumes); the results are
OUTPUT/degradation.png, degradation.md and degradation.json.

exit codes: 0 success, 2 bad arguments or input, 1 run failure"""

DEFAULTS = {"depths": [20, 56], "epochs": 8, "examples": 10_000}
PAPER = {"depths": [20, 32, 44, 56], "epochs": 182, "examples": 0}


def add_arguments(parser):
    parser.add_argument("experiment", choices=["degradation"], help="the experiment to run")
    parser.add_argument("dataset", help="an image folder, a TFDS name (cifar10) or synthetic")
    parser.add_argument("--depths", type=cli.positive_int, nargs="+",
                        help=f"network depths (default {DEFAULTS['depths']})")  # fmt: skip
    parser.add_argument("--epochs", type=cli.positive_int,
                        help=f"epochs per network (default {DEFAULTS['epochs']})")  # fmt: skip
    parser.add_argument("--examples", type=cli.non_negative_int,
                        help=f"training images, 0 for all (default {DEFAULTS['examples']:,})")  # fmt: skip
    parser.add_argument("--validation-split", type=cli.non_negative_int, default=5000,
                        help="images held out of the training data (default 5000; 0: the dataset's own split)")  # fmt: skip
    parser.add_argument("--batch-size", type=cli.positive_int, help="global batch (default 128)")
    parser.add_argument("--seed", type=cli.non_negative_int, default=0, help="seed (default 0)")
    parser.add_argument("--paper", action="store_true",
                        help="He et al.'s setting: depths 20 32 44 56, 182 epochs, all images")  # fmt: skip
    parser.add_argument("--output", default="runs/degradation", help="output directory")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def settings(args) -> dict:
    """The experiment's settings: defaults (or --paper), then the flags given."""
    chosen = dict(PAPER if args.paper else DEFAULTS)
    for key in ("depths", "epochs", "examples"):
        if getattr(args, key) is not None:
            chosen[key] = getattr(args, key)
    return chosen


def run(args) -> int:
    cli.import_quietly()
    from reszoo.experiments import degradation

    chosen = settings(args)
    options = {"epochs": chosen["epochs"], "seed": args.seed,
               "validation_split": args.validation_split or None}  # fmt: skip
    if chosen["examples"]:
        options["examples"] = chosen["examples"]
    if args.batch_size:
        options["batch_size"] = args.batch_size
    degradation.run(args.dataset, depths=chosen["depths"], output_dir=args.output,
                    verbose=0 if args.quiet else 2, **options)  # fmt: skip
    if not args.quiet:
        print(f"{args.prog_name}: wrote {args.output}/degradation.png, .md and .json")
    return 0
