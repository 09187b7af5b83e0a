"""Stop a run cleanly on SIGTERM or SIGINT: finish the step, save a checkpoint, say so.

Schedulers (Kubernetes, Slurm, spot VMs) send SIGTERM and wait a grace period before SIGKILL;
Ctrl-C sends SIGINT. While fit runs, both only set a flag. The loop looks at it at each step
boundary (before each executed chunk of ``steps_per_execution`` steps), saves a checkpoint,
writes summary.json with status "preempted" and raises PreemptedError, which the CLI turns into
exit status 128 + the signal number (143 for SIGTERM, 130 for SIGINT). Rerunning the same
command resumes from that checkpoint.

Limits: the handlers are installed only while fit runs, and only when fit runs in the main
thread (Python allows signal handlers nowhere else); the previous handlers are put back
afterwards. A second signal before the first is handled does what it would have done without
reszoo (the previous handler runs). A signal after the last step lets the run complete.

Multi-worker runs follow the protocol of tf.distribute's PreemptionCheckpointHandler (agree,
then save) without that class, which wants to run the training step itself and save through its
own manager: at each step boundary the workers all-reduce which signals they have seen (one
small collective), so every worker saves at the same step and stops with the same status, even
when only one of them was signalled.
"""

from __future__ import annotations

import contextlib
import signal
import threading

import tensorflow as tf

from reszoo.errors import PreemptedError

SIGNALS = (signal.SIGTERM, signal.SIGINT)  # in order of precedence when both arrive


class Watch:
    """The handlers of one fit: ``received`` is the first signal number caught (0: none)."""

    def __init__(self, outer):
        self.outer = outer
        self.received = 0
        self.previous = {}
        self.agree = None  # (strategy, tf.function) of a multi-worker run

    def handle(self, signum, frame):
        if self.received:  # a second signal: what it would have done without reszoo
            self.restore_handlers()
            signal.raise_signal(signum)
            return
        self.received = signum

    def restore_handlers(self):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        self.previous = {}


_active: Watch | None = None


def install() -> Watch:
    """Catch SIGTERM and SIGINT until ``uninstall`` (a no-op outside the main thread)."""
    global _active
    watch = Watch(_active)
    if threading.current_thread() is threading.main_thread():
        for signum in SIGNALS:
            watch.previous[signum] = signal.getsignal(signum)
            signal.signal(signum, watch.handle)
    _active = watch
    return watch


def uninstall(watch: Watch):
    """Put back the handlers that were there before ``install``."""
    global _active
    watch.restore_handlers()
    _active = watch.outer


def _agree_function(strategy):
    """A tf.function summing each worker's [SIGTERM seen, SIGINT seen] over all replicas."""

    @tf.function
    def agree(seen):
        per_replica = strategy.run(lambda: tf.identity(seen))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)

    return agree


@contextlib.contextmanager
def watching():
    """SIGTERM and SIGINT caught for the duration of the block (fit's run), then the previous
    handlers back."""
    watch = install()
    try:
        yield watch
    finally:
        uninstall(watch)


def agreed_signal(strategy) -> int:
    """The signal the run stops for at this step boundary, 0 to go on. Every worker of a
    multi-worker run must call this at the same boundaries (it is a collective there)."""
    watch = _active
    if watch is None:
        return 0
    seen = [float(watch.received == signum) for signum in SIGNALS]
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        if watch.agree is None or watch.agree[0] is not strategy:
            watch.agree = (strategy, _agree_function(strategy))
        seen = watch.agree[1](tf.constant(seen, tf.float32)).numpy().tolist()
    return next((signum for signum, count in zip(SIGNALS, seen) if count > 0), 0)


def stopped(signum, step, manager) -> PreemptedError:
    """The error fit raises after saving at ``step`` because of ``signum``."""
    name = signal.Signals(signum).name
    saved = (
        f"saved {manager.latest_checkpoint}; rerun the same command to resume"
        if manager is not None and manager.latest_checkpoint
        else "nothing saved (no output directory)"
    )
    return PreemptedError(f"preempted by {name} at global step {step}: {saved}", signum)
