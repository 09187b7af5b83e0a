"""The `reszoo` command: one parser per subcommand, shared plumbing, one table of commands.

Each subcommand is a module under reszoo/commands/ with `HELP` (one line for `reszoo --help`),
`DESCRIPTION`, `EPILOG` (ending with examples), `add_arguments(parser)` and `run(args) -> int`.
Adding a command is one entry in `COMMANDS` plus its module.

Exit codes, for every command: 0 success; 2 bad arguments or input (one line on stderr,
nothing written); 1 the run failed (a diverged or interrupted run, or an unexpected error);
143 / 130 a training run stopped by SIGTERM / SIGINT after saving a checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from reszoo.errors import PreemptedError, ReszooError, RunFailedError, first_line
from reszoo.startup import import_quietly as import_modules_quietly

# subcommand -> module under reszoo.commands
COMMANDS = {
    "list": "reszoo.commands.listing",
    "summary": "reszoo.commands.summary",
    "train": "reszoo.commands.train",
    "export": "reszoo.commands.export",
    "evaluate": "reszoo.commands.evaluate",
    "predict": "reszoo.commands.predict",
    "experiment": "reszoo.commands.experiment",
}


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line and exit 2 (argparse prints the usage too by default),
    prefixed with the command's name as the user typed it ("reszoo.train", "reszoo export")."""

    def __init__(self, *args, error_prefix: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.error_prefix = error_prefix or self.prog

    def error(self, message):
        sys.stderr.write(f"{self.error_prefix}: error: {' '.join(message.split())}\n")
        sys.exit(2)


def number(kind, minimum, inclusive, description):
    """An argparse type: `kind` parsed from text, at least (or above) `minimum`, finite."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if (
            value is None
            or not (value >= minimum if inclusive else value > minimum)
            or value == float("inf")
        ):
            raise argparse.ArgumentTypeError(f"expected {description}, got {text!r}")
        return value

    return parse


positive_int = number(int, 1, True, "a positive integer")
non_negative_int = number(int, 0, True, "an integer >= 0")
positive_float = number(float, 0.0, False, "a positive number")


def import_quietly():
    """Import TensorFlow and Keras before a command uses them, without their start-up lines on
    stderr (reszoo/startup.py), so that errors stay one line."""
    import_modules_quietly("keras", "tensorflow")


def command_parser(name: str, prog: str, error_prefix: str) -> tuple[Parser, object]:
    """The parser of one subcommand, and its module."""
    module = importlib.import_module(COMMANDS[name])
    parser = Parser(
        prog=prog,
        description=module.DESCRIPTION,
        epilog=module.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        error_prefix=error_prefix,
    )
    module.add_arguments(parser)
    parser.set_defaults(prog_name=error_prefix)
    return parser, module


def run_command(module, args, error_prefix: str) -> int:
    """Run a parsed subcommand: bad input is exit 2 and a run that failed exit 1, each one line."""
    try:
        return module.run(args)
    except PreemptedError as error:  # saved, then stopped: 128 + the signal, as a shell reports
        sys.stderr.write(f"{error_prefix}: {first_line(error)}\n")
        return error.exit_status
    except RunFailedError as error:  # diverged, checkpoint not writable, a worker lost
        sys.stderr.write(f"{error_prefix}: run failed: {first_line(error)}\n")
        return 1
    except ReszooError as error:
        sys.stderr.write(f"{error_prefix}: error: {first_line(error)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{error_prefix}: interrupted\n")
        return 130


def main_for(name: str, argv=None, *, prog: str | None = None, error_prefix: str | None = None):
    """One subcommand on its own: `python -m reszoo.train` is `main_for("train")`."""
    prog = prog or f"python -m reszoo.{name}"
    error_prefix = error_prefix or f"reszoo.{name}"
    parser, module = command_parser(name, prog, error_prefix)
    args = parser.parse_args(argv)
    return run_command(module, args, error_prefix)


def main(argv=None) -> int:
    """`reszoo COMMAND ...` and `python -m reszoo COMMAND ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    top = Parser(
        prog="reszoo",
        description="A ResNet model zoo for Keras 3: list, train, evaluate and export models.",
        epilog="Run `reszoo COMMAND --help` for a command's options and examples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    choices = top.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module_name in COMMANDS.items():
        help_line = importlib.import_module(module_name).HELP
        choices.add_parser(name, help=help_line, add_help=False)
    if not argv or argv[0] not in COMMANDS:
        top.parse_args(argv)  # prints help, or a one-line error naming the unknown command
        return 2
    return main_for(argv[0], argv[1:], prog=f"reszoo {argv[0]}", error_prefix=f"reszoo {argv[0]}")
