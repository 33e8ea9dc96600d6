"""Reading one file's bytes safely: inside the root, no links, no special files, size-capped."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .formats.base import format_size
from .walk import FileEntry, hard_link_reason

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)  # a file swapped for a link after listing is refused
    | getattr(os, "O_NONBLOCK", 0)  # a file swapped for a FIFO does not block the open
    | getattr(os, "O_BINARY", 0)
)


class ReadError(Exception):
    """The file cannot be read; the message is a short reason for users."""


def read_file(entry: FileEntry, *, root: Path, max_bytes: int, allow_hard_links: bool = False) -> bytes:
    """The bytes of ``entry``, which must resolve inside ``root`` (itself resolved) and, unless
    ``allow_hard_links``, have one name only (checked on the open file, after any swap)."""
    too_large = ReadError(f"larger than {format_size(max_bytes)} limit")
    if entry.size > max_bytes:
        raise too_large
    if not Path(os.path.realpath(entry.path)).is_relative_to(root):
        raise ReadError("outside the source folder")
    try:
        with os.fdopen(os.open(entry.path, _OPEN_FLAGS), "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ReadError("not a regular file")
            if info.st_nlink > 1 and not allow_hard_links:
                raise ReadError(hard_link_reason(info.st_nlink))
            data = file.read(max_bytes + 1)  # the file may have grown since it was listed
    except OSError as exc:
        raise ReadError(f"unreadable: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise too_large
    return data


__all__ = ["ReadError", "format_size", "read_file"]
