"""`python -m reszoo.export SOURCE EXPORT_DIR`: the same as `reszoo export`.

A command-line entry point only. For the Python API call `reszoo.export(...)` or import
reszoo.serving: importing this module as `reszoo.export` would replace the function of that
name on the package.
"""

import sys

from reszoo.cli import main_for


def main(argv=None) -> int:
    return main_for("export", argv)


if __name__ == "__main__":
    sys.exit(main())
