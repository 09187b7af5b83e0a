"""Resume from the newest checkpoint that restores, whatever happened to the others.

TensorFlow's CheckpointManager finds checkpoints through the ``checkpoint`` state file. With that
file lost or garbled, or the newest checkpoint damaged, a plain resume starts again from step 0
(and its keep-N sweep then deletes the good older checkpoints) or stops with a misleading
"does not match" error. Here the files on disk are the truth:

- every ``ckpt-N`` with its index and all its data shards is a candidate;
- candidates are read tensor by tensor (TensorFlow checks each tensor's checksum) from the newest
  to the oldest, and the first that reads is restored; a readable checkpoint that does not fit
  the model is a genuine mismatch (TrainingError), not a reason to go back further;
- the ones skipped are reported ("corrupt", "incomplete") and, by the process that writes the
  directory, moved to ``checkpoints/unusable/`` (kept, never deleted), so no later save of the
  same step writes over them;
- the state file is rebuilt from what is on disk before the manager is created, so the keep-N
  sweep deletes an older checkpoint only after this process has written a newer one;
- checkpoint files with none that restores are refused (TrainingError), never a fresh start.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys

import tensorflow as tf

from reszoo.errors import TrainingError, first_line

UNUSABLE_DIR = "unusable"
_FILE = re.compile(r"^ckpt-(\d+)\.(index|data-(\d+)-of-(\d+))$")
_MISMATCH = (AssertionError, ValueError, tf.errors.OpError)
# What TensorFlow's checkpoint reader raises for damaged files (a short read is an IndexError).
_UNREADABLE = (tf.errors.OpError, ValueError, IndexError, RuntimeError)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One ckpt-N of a directory: its prefix, and why it cannot be used (None: complete)."""

    step: int
    prefix: str
    problem: str | None


class ResumingManager(tf.train.CheckpointManager):
    """A CheckpointManager that knows what the run resumed from: ``resumed_from`` (a checkpoint
    prefix or None) and ``skipped`` (the newer candidates passed over, with their reasons)."""

    def __init__(self, checkpoint, directory, max_to_keep, resumed_from, skipped):
        super().__init__(checkpoint, directory, max_to_keep=max_to_keep, checkpoint_name="ckpt")
        self.resumed_from = resumed_from
        self.skipped = skipped


def list_checkpoints(directory) -> list[Candidate]:
    """Every ckpt-N with at least one file in ``directory``, oldest first, with the reason it is
    incomplete (no index, a missing data shard) or None."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = {}  # step -> {"index": bool, "shards": set, "count": int|None}
    for name in names:
        match = _FILE.match(name)
        if not match:
            continue
        entry = found.setdefault(int(match[1]), {"index": False, "shards": set(), "count": None})
        if match[2] == "index":
            entry["index"] = True
        else:
            entry["shards"].add(int(match[3]))
            entry["count"] = int(match[4])
    return [
        Candidate(step, os.path.join(directory, f"ckpt-{step}"), _incomplete(entry))
        for step, entry in sorted(found.items())
    ]


def _incomplete(entry) -> str | None:
    if not entry["index"]:
        return "incomplete: no index file"
    if entry["count"] is None:
        return "incomplete: no data file"
    missing = sorted(set(range(entry["count"])) - entry["shards"])
    if missing:
        return f"incomplete: data shard {missing[0]:05d}-of-{entry['count']:05d} is missing"
    return None


def unreadable_reason(prefix) -> str | None:
    """Why the checkpoint at ``prefix`` cannot be read back ("corrupt: ..."), or None when every
    tensor reads (TensorFlow verifies each tensor's checksum as it reads it)."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except _UNREADABLE as e:
        return f"corrupt: {type(e).__name__}: {first_line(e)}"
    return None


def newest_readable(directory) -> tuple[str | None, list[Candidate]]:
    """The newest complete checkpoint of ``directory`` that reads, and the newer ones skipped
    (each with its reason)."""
    skipped = []
    for candidate in reversed(list_checkpoints(directory)):
        problem = candidate.problem or unreadable_reason(candidate.prefix)
        if problem is None:
            return candidate.prefix, skipped
        skipped.append(dataclasses.replace(candidate, problem=problem))
    return None, skipped


def restore_newest(checkpoint, directory) -> tuple[str | None, list[Candidate]]:
    """Restore ``checkpoint`` (model, built optimizer, step, epoch) from the newest checkpoint of
    ``directory`` that reads. Returns (its prefix or None, the skipped ones). Raises TrainingError
    when the readable one does not fit the model (another config), or when there are checkpoint
    files and none of them reads."""
    path, skipped = newest_readable(directory)
    if path is None:
        if skipped:
            raise TrainingError(
                f"{directory} holds checkpoints but none of them can be restored ("
                + "; ".join(f"ckpt-{c.step} {c.problem}" for c in skipped[:3])
                + "); restore a good copy, or move checkpoints/ away to start again"
            )
        return None, skipped
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except _MISMATCH as e:
        raise TrainingError(
            f"cannot resume from {path}: it does not match this run's model and optimizer: "
            f"{first_line(e)}"
        ) from e
    return path, skipped


def _set_aside(candidates, directory):
    """Move the files of skipped checkpoints to directory/unusable/ (never deleted), so that a
    save of the same step later does not write over them."""
    if not candidates:
        return
    target = os.path.join(directory, UNUSABLE_DIR)
    os.makedirs(target, exist_ok=True)
    for candidate in candidates:
        stem = os.path.basename(candidate.prefix) + "."
        for name in sorted(os.listdir(directory)):
            if name.startswith(stem):
                destination = os.path.join(target, name)
                while os.path.exists(destination):
                    destination += ".old"
                os.replace(os.path.join(directory, name), destination)


def rebuild_state_file(directory, latest):
    """Write the ``checkpoint`` state file from the complete checkpoints on disk up to ``latest``
    (oldest first, each stamped with its index file's time), so that the manager's keep-N sweep
    sees them all and deletes the oldest only after a newer save."""
    newest = _step_of(latest)
    kept = [c for c in list_checkpoints(directory) if c.problem is None and c.step <= newest]
    if not kept:
        return
    stamps = [os.path.getmtime(c.prefix + ".index") for c in kept]
    tf.compat.v1.train.update_checkpoint_state(
        directory,
        os.path.basename(latest),
        all_model_checkpoint_paths=[os.path.basename(c.prefix) for c in kept],
        all_model_checkpoint_timestamps=stamps,
        last_preserved_timestamp=min(stamps) - 1.0,
    )


def _step_of(prefix) -> int:
    return int(os.path.basename(prefix).rsplit("-", 1)[1])


def _report(path, skipped):
    for candidate in skipped:
        print(
            f"reszoo.fit: skipped checkpoint ckpt-{candidate.step} ({candidate.problem})"
            + (f"; resuming from {os.path.basename(path)}" if path else ""),
            file=sys.stderr,
            flush=True,
        )


def open_manager(checkpoint, directory, keep, *, resume_from) -> ResumingManager:
    """Restore ``checkpoint`` from the newest good checkpoint under ``resume_from``, then the
    manager that writes ``directory``. When the two are the same directory (the chief of a run),
    the skipped checkpoints are set aside and the state file is rebuilt first; otherwise (other
    workers write to a scratch directory) ``resume_from`` is only read."""
    path, skipped = restore_newest(checkpoint, resume_from)
    _report(path, skipped)
    if os.path.abspath(directory) == os.path.abspath(resume_from):
        _set_aside(skipped, directory)
        if path is not None:
            rebuild_state_file(directory, path)
    return ResumingManager(checkpoint, directory, keep, path, skipped)
