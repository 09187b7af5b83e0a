"""Exceptions reszoo raises on bad input.

Every error a user can cause is one of these, so callers (and the CLIs, which turn them into
exit code 2 and a one-line message) can tell a mistake in the input from a bug.
"""


class ReszooError(Exception):
    """Base class: something the user asked for cannot be done as asked."""


class ConfigError(ReszooError, ValueError):
    """A model config, registry file or override is invalid."""


class UnknownModelError(ReszooError, LookupError):
    """A model or block name is not registered."""


class DuplicateRegistrationError(ReszooError, ValueError):
    """A model or block name is already registered by another source."""


class DataError(ReszooError, ValueError):
    """A dataset is missing, unreadable or not what the model needs."""


class TrainingError(ReszooError, RuntimeError):
    """A run cannot start or had to stop (diverged, unusable output directory, ...)."""


class ExportError(ReszooError, ValueError):
    """A model cannot be exported as asked (existing version, bad directory, ...)."""


class RunFailedError(TrainingError):
    """The run started and then had to stop (exit code 1 in the CLI, not bad input)."""


class DivergedError(RunFailedError):
    """The loss or the gradients became NaN or infinite in training (a run failure, not bad input)."""


class CheckpointWriteError(RunFailedError):
    """A checkpoint could not be written (disk full, directory gone or read-only)."""


class WorkerLostError(RunFailedError):
    """Another worker of a multi-worker run died or stopped answering."""


class PreemptedError(RunFailedError):
    """The run stopped on SIGTERM or SIGINT after saving a checkpoint (summary.json status
    "preempted"); rerunning the same command resumes. ``signum`` is the signal, and
    ``exit_status`` (128 + signum: 143 for SIGTERM, 130 for SIGINT) what the CLI exits with."""

    def __init__(self, message, signum):
        super().__init__(message)
        self.signum = int(signum)
        self.exit_status = 128 + self.signum


# Lines TensorFlow puts before the message that matters in a graph-mode error.
_NOISE_PREFIXES = ("Graph execution error", "Detected at node", "File ")
_MAX_MESSAGE = 2000


def first_line(error: BaseException) -> str:
    """The one line of an error worth showing a user: the first line that is not TensorFlow's
    graph-execution preamble, whitespace collapsed, bounded in length. Every CLI and every
    wrapped error reports through this, so messages are one line everywhere."""
    text = getattr(error, "message", None) or str(error)
    lines = [" ".join(line.split()) for line in str(text).splitlines()]
    lines = [line for line in lines if line]
    useful = [line for line in lines if not line.startswith(_NOISE_PREFIXES)]
    return (useful or lines or [type(error).__name__])[0][:_MAX_MESSAGE]
