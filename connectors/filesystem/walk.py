"""Listing the files of a folder tree without ever following a link out of it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .globs import GlobSet

SkipCallback = Callable[[str, str], None]
_HIDDEN_PREFIXES = (".", "~$")  # dot files, and Office's lock files beside an open document


@dataclass(frozen=True)
class FileEntry:
    """A regular file found under the root."""

    rel: str
    """Path relative to the root, ``/``-separated: the document id."""
    path: Path
    size: int
    mtime: float


def walk_files(
    root: Path, *, include: GlobSet, exclude: GlobSet, on_skip: SkipCallback, allow_hard_links: bool = False
) -> Iterator[FileEntry]:
    """Yield the regular files under ``root`` that ``include`` matches and ``exclude`` does not.

    Depth first, names sorted, so the order is deterministic. Hidden entries (``.git``,
    ``.env``, Office lock files ``~$name.docx``) are ignored; excluded folders are not entered.
    Symbolic links and junctions are never followed: those that would have been indexed are
    reported to ``on_skip(rel, reason)``, as are unreadable folders and, unless
    ``allow_hard_links``, files with more than one name (a hard link may be a file from
    outside the root). An unreadable ``root`` raises :class:`OSError`.
    """
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        entries = _listing(root, rel_dir, on_skip)
        subdirs: list[str] = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.name.startswith(_HIDDEN_PREFIXES) or exclude.matches(rel):
                continue
            try:
                found = _visit(entry, rel, include, on_skip, allow_hard_links)
            except OSError as exc:  # vanished or unreadable between listing and stat
                on_skip(rel, f"unreadable: {exc.strerror or exc}")
                continue
            if isinstance(found, FileEntry):
                yield found
            elif found is not None:
                subdirs.append(found)
        pending.extend(reversed(subdirs))


def _listing(root: Path, rel_dir: str, on_skip: SkipCallback) -> list[os.DirEntry[str]]:
    """The entries of a folder, sorted by name; an unreadable one is skipped (the root raises)."""
    try:
        with os.scandir(root / rel_dir) as scan:
            return sorted(scan, key=lambda entry: entry.name)
    except OSError as exc:
        if not rel_dir:
            raise
        on_skip(rel_dir, f"unreadable folder: {exc.strerror or exc}")
        return []


def _visit(
    entry: os.DirEntry[str], rel: str, include: GlobSet, on_skip: SkipCallback, allow_hard_links: bool
) -> FileEntry | str | None:
    """A file to index, the ``rel`` path of a folder to enter, or None (skipped or not included)."""
    if _is_link(entry):
        if include.matches(rel) or entry.is_dir():
            on_skip(rel, "symbolic link, not followed")
        return None
    if entry.is_dir(follow_symlinks=False):
        return rel
    if not include.matches(rel):
        return None
    if not entry.is_file(follow_symlinks=False):
        on_skip(rel, "not a regular file")
        return None
    info = entry.stat(follow_symlinks=False)
    if info.st_nlink > 1 and not allow_hard_links:
        on_skip(rel, hard_link_reason(info.st_nlink))
        return None
    return FileEntry(rel=rel, path=Path(entry.path), size=info.st_size, mtime=info.st_mtime)


def hard_link_reason(links: int) -> str:
    """The skip reason for a file with ``links`` names."""
    return f"hard link ({links} names for one file), not read; set allow_hard_links = true to index it"


def _is_link(entry: os.DirEntry[str]) -> bool:
    """A symbolic link, or on Windows any reparse point (junctions are not symlinks there)."""
    if entry.is_symlink():
        return True
    attributes: int = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
    return bool(attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT)
