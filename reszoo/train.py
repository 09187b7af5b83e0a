"""`python -m reszoo.train MODEL DATASET`: the same as `reszoo train` (reszoo/commands/train.py).

A command-line entry point only: import reszoo.training for the Python API.
"""

import sys

from reszoo.cli import main_for


def main(argv=None) -> int:
    return main_for("train", argv)


if __name__ == "__main__":
    sys.exit(main())
