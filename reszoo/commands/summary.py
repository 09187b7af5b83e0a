"""`reszoo summary MODEL`: build a zoo model and print its Keras summary."""

from __future__ import annotations

HELP = "build a model and print its Keras summary"
DESCRIPTION = "Build a zoo model (untrained) and print its Keras summary."
EPILOG = """\
examples:
  reszoo summary resnet20
  reszoo summary resnet50"""


def add_arguments(parser):
    parser.add_argument("model", help="a name from `reszoo list`")


def run(args) -> int:
    from reszoo.zoo import build

    build(args.model).summary()
    return 0
