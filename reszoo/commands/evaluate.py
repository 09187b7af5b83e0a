"""`reszoo evaluate SOURCE DATASET`: accuracy, loss and confusion of a trained classifier."""

from __future__ import annotations

import os
import sys

from reszoo import cli
from reszoo.errors import DataError

HELP = "evaluate a run, an export or a zoo model with weights on a dataset (top-1/5, loss)"
DESCRIPTION = (
    "Evaluate a trained classifier (a run directory, an export directory, or a zoo name with "
    "--weights) on one split of a dataset (digits, synthetic, an image folder with one "
    "sub-folder per class, or a TFDS name). Prints top-1 and top-5 accuracy, the loss, images/s "
    "and per-class accuracy, and writes evaluation.json and confusion_matrix.png into the run "
    "directory (other sources: evaluations/NAME-DATASET, or --output). Images are prepared as "
    "the model was measured: a run's own evaluation transform, an export's resizing, a weight "
    "tag's resize and centre crop. A run directory evaluated on its own dataset gets, by "
    "default, the data the run held out."
)
EPILOG = """\
exit codes: 0 success, 2 bad arguments or input, 1 unexpected failure

examples:
  reszoo evaluate runs/resnet20-digits digits              # the 359 digits the run held out
  reszoo evaluate runs/resnet20-digits digits --split train --tta flip
  reszoo evaluate exported/resnet20 ~/data/cifar10/test    # an export, a folder of classes
  reszoo evaluate resnet50 imagenet2012 --weights a1_in1k --data-dir ~/tensorflow_datasets
  reszoo evaluate resnet20 ~/data/val --weights r20.weights.h5 --output evaluations/r20"""


def add_arguments(parser):
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="a run directory, an export directory, or a zoo name with --weights",
    )
    parser.add_argument(
        "dataset", metavar="DATASET", help="digits, synthetic, an image folder or a TFDS name"
    )
    parser.add_argument(
        "--weights", metavar="TAG|PATH", help="weights of a zoo name: a tag or a file"
    )
    parser.add_argument(
        "--split",
        choices=["train", "validation", "test"],
        help="default: the run's held-out data, else validation, else test",
    )
    parser.add_argument(
        "--tta",
        choices=["flip"],
        help="flip: average the softmax of each image and its mirror image",
    )
    parser.add_argument("--output", metavar="DIR", help="where evaluation.json and the PNG go")
    parser.add_argument("--batch-size", type=cli.positive_int, default=64, help="default 64")
    parser.add_argument("--data-dir", help="TFDS data directory (default TFDS_DATA_DIR)")


def _output_dir(args, classifier) -> str:
    if args.output:
        return args.output
    if classifier.source.run_dir is not None:
        return str(classifier.source.run_dir)
    from reszoo.commands.train import default_output

    return os.path.join(
        "evaluations", os.path.basename(default_output(classifier.source.name, args.dataset))
    )


def _check_output(directory: str) -> None:
    from reszoo.paths import uncreatable_reason

    reason = uncreatable_reason(directory)
    if reason is None and os.path.exists(directory) and not os.path.isdir(directory):
        reason = f"{directory} is a file"
    if reason:
        raise DataError(f"cannot write the evaluation to {directory}: {reason}; pass --output DIR")


def run(args) -> int:
    cli.import_quietly()
    from reszoo import evaluation
    from reszoo.evaluation import report

    classifier = evaluation.load(args.source, args.weights)
    output = _output_dir(args, classifier)
    _check_output(output)
    result = evaluation.evaluate(
        classifier,
        args.dataset,
        args.split,
        batch_size=args.batch_size,
        tta=args.tta == "flip",
        data_dir=args.data_dir,
    )
    print("\n".join(report.summary_lines(result)))
    os.makedirs(output, exist_ok=True)
    written = [report.write_json(result, output)]
    png, skipped = report.write_confusion_png(result, output)
    written += [png] if png else []
    for path, reason in [(f["path"], f["reason"]) for f in result["skipped_files"]]:
        print(f"{args.prog_name}: skipped {path}: {reason}", file=sys.stderr)
    if skipped:
        print(f"{args.prog_name}: {skipped}")
    print(f"{args.prog_name}: wrote {', '.join(written)}")
    return 0
