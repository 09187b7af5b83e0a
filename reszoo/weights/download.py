"""A tag's file from Keras's cache, or downloaded into it with keras.utils.get_file.

Offline, the first failure is final (get_file does not retry, and a socket timeout bounds a
network that swallows packets instead of refusing them); the message names the URL, the exact
cache path to put the file at, and the `weights=PATH` alternative. A file whose hash does not
match is deleted from the cache, and the message says so.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
from pathlib import Path

from reszoo.errors import ConfigError
from reszoo.weights.tags import WeightFile

CACHE_SUBDIR = "models"
CONNECT_TIMEOUT_S = 30.0


def cache_dir() -> Path:
    """Where keras.utils.get_file keeps downloads: Keras's home ($KERAS_HOME or ~/.keras, read
    when Keras is imported) + "models", or <tmp>/.keras/models when that home is not writable,
    the same rule get_file applies."""
    try:
        from keras.src.backend.config import keras_home  # the home get_file itself uses

        base = os.path.expanduser(keras_home())
    except ImportError:  # a Keras without the private accessor: its documented default
        base = os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))
    if not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    return Path(base) / CACHE_SUBDIR


def cache_path(weight_file: WeightFile) -> Path:
    return cache_dir() / weight_file.file_name


def _digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_matches(path: Path, weight_file: WeightFile) -> bool:
    """True when the file has the recorded hash, or when none is recorded."""
    if weight_file.sha256:
        return _digest(path, "sha256") == weight_file.sha256
    if weight_file.md5:
        return _digest(path, "md5") == weight_file.md5
    return True


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds if previous is None else previous)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def _offline_help(weight_file: WeightFile) -> str:
    return (
        f"Without network: download {weight_file.url} elsewhere and put it at "
        f"{cache_path(weight_file)} (it is used from there), or pass weights='/path/to/"
        f"{weight_file.file_name}'."
    )


def fetch(weight_file: WeightFile) -> Path:
    """The cached file, downloading it first if needed; hash-checked where a hash is known."""
    import keras

    target = cache_path(weight_file)
    note = ""
    if target.is_file() and not hash_matches(target, weight_file):
        target.unlink()
        note = f"The cached {target} did not match its recorded hash and was deleted. "
    try:
        with _socket_timeout(CONNECT_TIMEOUT_S):
            path = keras.utils.get_file(
                weight_file.file_name,
                weight_file.url,
                cache_subdir=CACHE_SUBDIR,
                file_hash=weight_file.file_hash,
            )
    except ValueError as error:  # get_file's hash check on a fresh download
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise ConfigError(
            f"{note}The download of {weight_file.url} failed its hash check ({error}); the file "
            f"was deleted from the cache ({target}). {_offline_help(weight_file)}"
        ) from None
    except Exception as error:  # noqa: BLE001 - get_file wraps every network error in Exception
        raise ConfigError(
            f"{note}Could not download {weight_file.url}: {error}. {_offline_help(weight_file)}"
        ) from None
    return Path(path)


def discard(path: Path, reason: str) -> str:
    """Delete a damaged cached file; returns the sentence that says so."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return f"{reason}; it was deleted from the cache ({path}), the next call downloads it again"
