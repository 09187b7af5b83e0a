"""`reszoo export SOURCE EXPORT_DIR` (also `python -m reszoo.export`): a SavedModel for TF Serving."""

from __future__ import annotations

from reszoo import cli

HELP = "export a run directory or a zoo model as a SavedModel for TF Serving"
DESCRIPTION = (
    "Export a reszoo model (a reszoo.fit run directory, or a zoo name built untrained) as "
    "EXPORT_DIR/<version>/, a SavedModel for TF Serving."
)
EPILOG = """\
examples:
  reszoo export runs/resnet20-digits exported/resnet20          # -> exported/resnet20/1
  reszoo export runs/resnet20-digits exported/resnet20 --version 1 --overwrite
  reszoo export resnet50 exported/resnet50 --class-names imagenet.txt   # untrained

exit codes: 0 success, 2 bad arguments or input, 1 unexpected failure"""


def add_arguments(parser):
    parser.add_argument(
        "source",
        metavar="MODEL_OR_RUN_DIR",
        help="a run directory written by reszoo.fit / reszoo train, or a zoo name",
    )
    parser.add_argument("export_dir", metavar="EXPORT_DIR", help="TF Serving's model_base_path")
    parser.add_argument(
        "--version", type=cli.positive_int, help="version number (default: highest + 1)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument(
        "--class-names",
        metavar="FILE",
        help="class names: one per line, or a .json list (default: the run's)",
    )


def run(args) -> int:
    cli.import_quietly()
    from reszoo.serving import export, read_class_names

    names = read_class_names(args.class_names) if args.class_names else None
    path = export(
        args.source,
        args.export_dir,
        version=args.version,
        class_names=names,
        overwrite=args.overwrite,
    )
    print(f"{args.prog_name}: wrote {path}")
    return 0
