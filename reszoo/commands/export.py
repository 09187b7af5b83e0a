"""`reszoo export SOURCE EXPORT_DIR` (also `python -m reszoo.export`): a versioned export."""

from __future__ import annotations

from reszoo import cli
from reszoo.serving import limits
from reszoo.serving.formats import FORMATS
from reszoo.serving.signatures import SIGNATURES

HELP = "export a run directory or a zoo model (default: a SavedModel for TF Serving)"
DESCRIPTION = (
    "Export a reszoo model (a reszoo.fit run directory, or a zoo name built untrained) as "
    "EXPORT_DIR/<version>/, by default a SavedModel for TF Serving."
)
EPILOG = f"""\
formats:
{chr(10).join(f"  {name:<22}{entry.description}" for name, entry in FORMATS.items())}

signatures (saved_model; default: all):
{chr(10).join(f"  {name:<22}{entry.input_name}: {entry.description}" for name, entry in SIGNATURES.items())}

examples:
  reszoo export runs/resnet20-digits exported/resnet20          # -> exported/resnet20/1
  reszoo export runs/resnet20-digits exported/resnet20 --version 1 --overwrite
  reszoo export resnet50 exported/resnet50 --class-names imagenet.txt   # untrained
  reszoo export runs/resnet20-digits exported/r20 --max-batch-size 64 --signature serving_uint8
  reszoo export runs/resnet20-digits exported/r20-int8 --format litert --quantize int8
  reszoo export runs/resnet20-digits exported/r20-onnx --format onnx

exit codes: 0 success, 2 bad arguments or input, 1 unexpected failure"""


def add_arguments(parser):
    parser.add_argument(
        "source",
        metavar="MODEL_OR_RUN_DIR",
        help="a run directory written by reszoo.fit / reszoo train, or a zoo name",
    )
    parser.add_argument("export_dir", metavar="EXPORT_DIR", help="TF Serving's model_base_path")
    parser.add_argument(
        "--format", choices=list(FORMATS), default="saved_model", help="default: saved_model"
    )
    parser.add_argument(
        "--version", type=cli.positive_int, help="version number (default: highest + 1)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    parser.add_argument(
        "--class-names",
        metavar="FILE",
        help="class names: one per line, or a .json list (default: the run's)",
    )
    parser.add_argument(
        "--signature",
        dest="signatures",
        action="append",
        choices=list(SIGNATURES),
        help="a signature to export; repeat for several (default: all)",
    )
    for option, default, what in (
        ("--max-batch-size", limits.DEFAULT_MAX_BATCH_SIZE, "images per request"),
        ("--max-image-pixels", limits.DEFAULT_MAX_IMAGE_PIXELS, "height x width of one image"),
        ("--max-request-pixels", limits.DEFAULT_MAX_REQUEST_PIXELS, "pixels per request"),
    ):
        parser.add_argument(
            option, type=cli.positive_int, default=default, help=f"most {what} (default {default})"
        )
    add_format_options(parser)


def add_format_options(parser):
    """The options of the LiteRT/ONNX/OpenVINO formats (reszoo/serving/keras_export.py)."""
    from reszoo.serving.format_litert import QUANTIZATIONS

    parser.add_argument(
        "--quantize",
        choices=list(QUANTIZATIONS),
        help="litert: weights (and with int8 activations) in lower precision (default float32)",
    )
    parser.add_argument(
        "--representative-data",
        metavar="PATH_OR_DATASET",
        help="int8 calibration images: a run directory, an image folder or a dataset name "
        "(default: the run's own training data)",
    )
    parser.add_argument(
        "--representative-count", type=cli.positive_int, help="calibration images (default 200)"
    )
    parser.add_argument("--opset", type=cli.positive_int, help="onnx: the opset to write")


def _format_options(args) -> dict:
    return {
        "quantize": args.quantize,
        "representative_data": args.representative_data,
        "representative_count": args.representative_count,
        "opset": args.opset,
    }


def run(args) -> int:
    cli.import_quietly()
    from reszoo.serving import export, read_class_names

    names = read_class_names(args.class_names) if args.class_names else None
    path = export(
        args.source,
        args.export_dir,
        format=args.format,
        version=args.version,
        class_names=names,
        overwrite=args.overwrite,
        signatures=args.signatures,
        max_batch_size=args.max_batch_size,
        max_image_pixels=args.max_image_pixels,
        max_request_pixels=args.max_request_pixels,
        options=_format_options(args),
    )
    print(f"{args.prog_name}: wrote {path}")
    return 0
