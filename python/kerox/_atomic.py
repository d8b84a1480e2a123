"""Atomic file writes: a temporary file beside the target, fsync'd, then renamed into place.

A crash or kill during a save leaves the previous complete file (or none), never a torn one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any


def fspath(filepath: Any, what: str = "filepath") -> str:
    """``str`` of a path-like, or a TypeError naming the argument."""
    try:
        return os.fspath(filepath)
    except TypeError:
        raise TypeError(
            f"`{what}` must be a string or path-like object. Received: {what}={filepath!r}"
        ) from None


@contextlib.contextmanager
def atomic_path(filepath: Any, what: str = "filepath") -> Iterator[str]:
    """Yields a temporary path in the target's directory; on success it replaces ``filepath``.

    On any exception the temporary file is removed and the target is left untouched.
    """
    target = os.path.abspath(fspath(filepath, what))
    directory = os.path.dirname(target)
    if directory and not os.path.isdir(directory):
        os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(target) + ".", suffix=".tmp", dir=directory or None
    )
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):
        with contextlib.suppress(OSError):
            dfd = os.open(directory or ".", os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
