"""List an image folder's files without being led astray by symbolic links.

``os.walk(followlinks=True)`` follows a link back up the tree (``train/a/up -> ..``) into every
class again: ten images become hundreds of entries with wrong labels. Here:

- by default links (to directories and to files) are not followed, and one warning counts them;
- with ``follow_links=True`` a link is followed when it resolves inside the folder's root. Every
  real directory is entered once (no loops) and every real file listed once: the folder's own
  files come first, so an image reached through a link into another class keeps the label of
  the class folder it really is in. Links that resolve outside the root are refused and counted.

Only regular files are listed (a FIFO or a device would block or never end when read). The
order of a folder without links is os.walk's: a directory's files (sorted), then its
sub-directories (sorted), depth first; hidden names (a leading dot) are left out.
"""

from __future__ import annotations

import os
import warnings

from reszoo.errors import DataError

_NAMED = 5  # links named in the warning; the rest are counted


class Links:
    """What the walks of one data set did with symbolic links (shared by its train and
    validation folders), reported in one warning."""

    def __init__(self, follow: bool):
        if not isinstance(follow, bool):
            raise DataError(
                f"follow_links must be True or False. Received: follow_links={follow!r}"
            )
        self.follow = follow
        self.not_followed: list[str] = []
        self.outside: list[str] = []
        self.repeated: list[str] = []

    def warn(self, root):
        """One warning counting the links not followed, refused or repeating an entry."""
        parts = []
        if self.not_followed:
            parts.append(
                f"{_counted(self.not_followed, root)} not followed (pass follow_links=True, "
                "--set follow_links=true, to follow links that stay inside the folder)"
            )
        if self.outside:
            parts.append(f"{_counted(self.outside, root)} refused: they lead outside {root}")
        if self.repeated:
            parts.append(
                f"{_counted(self.repeated, root)} skipped: they lead to a folder or file "
                "already listed (a loop or a duplicate)"
            )
        if parts:
            warnings.warn(
                f"reszoo.data: symbolic links under {root}: " + "; ".join(parts),
                UserWarning,
                stacklevel=4,
            )


def _counted(paths, root) -> str:
    shown = ", ".join(os.path.relpath(p, root) for p in paths[:_NAMED])
    more = f", and {len(paths) - _NAMED} more" if len(paths) > _NAMED else ""
    return f"{len(paths)} link(s) ({shown}{more})"


class _Walk:
    """One folder's walk: the real directories and files seen, the links left for later."""

    def __init__(self, root, links: Links):
        self.real_root = os.path.realpath(root)
        self.links = links
        self.seen_dirs: set[str] = set()
        self.seen_files: set[str] = set()
        self.pending: list[tuple[str, int]] = []  # (link path, label), followed after real files

    def directory(self, path, label, found):
        real = os.path.realpath(path)
        if real in self.seen_dirs:
            self.links.repeated.append(path)
            return
        self.seen_dirs.add(real)
        try:
            entries = sorted(
                (e for e in os.scandir(path) if not e.name.startswith(".")), key=lambda e: e.name
            )
        except OSError:
            return  # an unreadable directory lists nothing, as with os.walk
        subdirs = []
        for entry in entries:
            if entry.is_symlink():
                self.pending.append((entry.path, label))
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                self.file(entry.path, label, found)
        for sub in subdirs:
            self.directory(sub, label, found)

    def file(self, path, label, found):
        real = os.path.realpath(path)
        if real in self.seen_files:
            self.links.repeated.append(path)
            return
        self.seen_files.add(real)
        found.append((path, label))

    def follow(self, path, label, found):
        """A link: refused, skipped, or walked as the directory or file it leads to."""
        if not self.links.follow:
            self.links.not_followed.append(path)
            return
        real = os.path.realpath(path)
        if os.path.commonpath([real, self.real_root]) != self.real_root:
            self.links.outside.append(path)
        elif os.path.isdir(real):
            self.directory(path, label, found)
        elif os.path.isfile(real):
            self.file(path, label, found)


def list_files(root, class_names, links: Links) -> list[tuple[str, int]]:
    """(path, label) of the regular files under ``root/<class>/``, label = the class's index."""
    walk = _Walk(root, links)
    walk.seen_dirs.add(walk.real_root)  # a link back to the root is a loop
    found = []
    for label, name in enumerate(class_names):
        class_dir = os.path.join(root, name)
        if os.path.islink(class_dir):
            walk.pending.append((class_dir, label))
        elif os.path.isdir(class_dir):
            walk.directory(class_dir, label, found)
    while walk.pending:  # links found while following links join the queue
        path, label = walk.pending.pop(0)
        walk.follow(path, label, found)
    return found
