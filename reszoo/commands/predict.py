"""`reszoo predict SOURCE IMAGE_OR_FOLDER...`: the top classes of each image."""

from __future__ import annotations

import json
import sys

from reszoo import cli
from reszoo.errors import DataError

HELP = "the top-k classes of image files, from a run, an export or a zoo model with weights"
DESCRIPTION = (
    "Classify image files (JPEG, PNG, GIF, BMP; a folder means every file under it) with a "
    "trained classifier: a run directory, an export directory, or a zoo name with --weights. "
    "Images are prepared as the model was measured (as `reszoo evaluate` prepares them). Files "
    "inside a folder that cannot be read are listed on stderr and skipped."
)
EPILOG = """\
exit codes: 0 success, 2 bad arguments or input, 1 unexpected failure

examples:
  reszoo predict runs/resnet20-digits digit.png
  reszoo predict runs/resnet20-digits photos/ --top 3
  reszoo predict exported/resnet20 a.jpg b.jpg --json          # one JSON object per line
  reszoo predict resnet50 --weights a1_in1k cat.jpg"""


def add_arguments(parser):
    parser.add_argument(
        "source",
        metavar="SOURCE",
        help="a run directory, an export directory, or a zoo name with --weights",
    )
    parser.add_argument(
        "images", metavar="IMAGE_OR_FOLDER", nargs="+", help="image files or folders"
    )
    parser.add_argument(
        "--weights", metavar="TAG|PATH", help="weights of a zoo name: a tag or a file"
    )
    parser.add_argument(
        "--top", type=cli.positive_int, default=5, help="classes per image (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--batch-size", type=cli.positive_int, default=32, help="default 32")


def _table(path: str, ranked: list) -> str:
    width = max(len(name) for _, name, _ in ranked)
    rows = [f"  {rank}. {name:<{width}}  {p:.4f}" for rank, (_, name, p) in enumerate(ranked, 1)]
    return "\n".join([path, *rows])


def _json(path: str, ranked: list) -> str:
    top = [{"class": name, "index": i, "probability": p} for i, name, p in ranked]
    return json.dumps({"image": path, "top": top})


def run(args) -> int:
    cli.import_quietly()
    from reszoo import evaluation

    classifier = evaluation.load(args.source, args.weights)
    skipped = []
    shown = 0
    for path, ranked in evaluation.predict(
        classifier, args.images, top=args.top, batch_size=args.batch_size, skipped=skipped
    ):
        print(_json(path, ranked) if args.json else _table(path, ranked))
        shown += 1
    if not shown:
        unread = " (no files found)"
        if skipped:
            path, reason = skipped[0]
            unread = f"; {len(skipped)} file(s) could not be read, e.g. {path}: {reason}"
        raise DataError(
            f"no readable image in {' '.join(args.images)}{unread}; pass JPEG, PNG, GIF or BMP "
            "files or folders of them"
        )
    for path, reason in skipped:
        print(f"{args.prog_name}: skipped {path}: {reason}", file=sys.stderr)
    return 0
