"""`python -m reszoo COMMAND ...`: the same as the `reszoo` command (reszoo/cli.py)."""

import sys

from reszoo.cli import main

if __name__ == "__main__":
    sys.exit(main())
