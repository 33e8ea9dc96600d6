"""Exclusive, non-blocking lock files (one sync per data directory; a live server's marker)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive_lock(path: Path, wait_s: float = 0.0) -> Iterator[bool]:
    """Yield True when the lock is held, False when another process still holds it after ``wait_s``."""
    from filelock import FileLock, Timeout  # not on a server's handshake path

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=wait_s, poll_interval=0.2)
    try:
        lock.acquire()
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
