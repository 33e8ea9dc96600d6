"""Listing the files of a folder tree without ever following a link out of it."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
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
    root: Path,
    *,
    include: GlobSet,
    exclude: GlobSet,
    on_skip: SkipCallback,
    allow_hard_links: bool = False,
    only: Iterable[str] | None = None,
) -> Iterator[FileEntry]:
    """Yield the regular files under ``root`` that ``include`` matches and ``exclude`` does not.

    Depth first, names sorted, so the order is deterministic. Hidden entries (``.git``,
    ``.env``, Office lock files ``~$name.docx``) are ignored; excluded folders are not entered.
    Symbolic links and junctions are never followed: those that would have been indexed are
    reported to ``on_skip(rel, reason)``, as are unreadable folders and, unless
    ``allow_hard_links``, files with more than one name (a hard link may be a file from
    outside the root). An unreadable ``root`` raises :class:`OSError`.

    With ``only`` (files or folders relative to the root), what the walk would yield at or
    under those paths, without listing the rest of the tree: a file is stat'ed, a folder
    walked; a path that is gone, hidden, excluded or inside a link yields nothing.
    """
    options = _Options(include, exclude, on_skip, allow_hard_links)
    if only is None:
        yield from _walk(root, "", options)
        return
    for rel in _outermost(only):
        try:
            if not _reachable(root, rel, exclude):
                continue
            path = root / rel
            info = os.lstat(path)
            if _is_folder(info):
                yield from _walk(root, rel, options)
            elif found := _file(rel, path, info, options):
                yield found
        except (FileNotFoundError, NotADirectoryError):
            continue  # deleted or moved away: its documents go
        except OSError as exc:
            on_skip(rel, f"unreadable: {exc.strerror or exc}")


@dataclass(frozen=True)
class _Options:
    include: GlobSet
    exclude: GlobSet
    on_skip: SkipCallback
    allow_hard_links: bool


def _walk(root: Path, start: str, options: _Options) -> Iterator[FileEntry]:
    pending = [start]
    while pending:
        rel_dir = pending.pop()
        try:
            with os.scandir(root / rel_dir) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as exc:
            if not rel_dir:
                raise
            options.on_skip(rel_dir, f"unreadable folder: {exc.strerror or exc}")
            continue
        subdirs: list[str] = []
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            if entry.name.startswith(_HIDDEN_PREFIXES) or options.exclude.matches(rel):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if _is_folder(info):
                    subdirs.append(rel)
                elif found := _file(rel, Path(entry.path), info, options):
                    yield found
            except OSError as exc:  # vanished or unreadable between listing and stat
                options.on_skip(rel, f"unreadable: {exc.strerror or exc}")
        pending.extend(reversed(subdirs))


def visible(rel: str, exclude: GlobSet) -> bool:
    """Whether the walk reaches ``rel`` by name: neither it nor a folder above it is hidden
    or excluded."""
    parts = rel.split("/")
    return not any(
        part.startswith(_HIDDEN_PREFIXES) or exclude.matches("/".join(parts[: i + 1]))
        for i, part in enumerate(parts)
    )


def hard_link_reason(links: int) -> str:
    """The skip reason for a file with ``links`` names."""
    return f"hard link ({links} names for one file), not read; set allow_hard_links = true to index it"


def _file(rel: str, path: Path, info: os.stat_result, options: _Options) -> FileEntry | None:
    """The entry at ``path`` (not a folder; ``info`` from lstat) if it is a file to index; a
    link, a special file or a hard link that would have been is reported to ``on_skip``."""
    wanted = options.include.matches(rel)
    if _is_link(info):
        if wanted or path.is_dir():
            options.on_skip(rel, "symbolic link, not followed")
    elif not wanted:
        pass
    elif not stat.S_ISREG(info.st_mode):
        options.on_skip(rel, "not a regular file")
    elif info.st_nlink > 1 and not options.allow_hard_links:
        options.on_skip(rel, hard_link_reason(info.st_nlink))
    else:
        return FileEntry(rel=rel, path=path, size=info.st_size, mtime=info.st_mtime)
    return None


def _reachable(root: Path, rel: str, exclude: GlobSet) -> bool:
    """Whether the walk would come to ``rel``: visible, and every folder above it a real one."""
    if not rel or rel.startswith("/") or ".." in rel.split("/") or not visible(rel, exclude):
        return False
    parts = rel.split("/")
    return all(_is_folder(os.lstat(root.joinpath(*parts[:i]))) for i in range(1, len(parts)))


def _outermost(rels: Iterable[str]) -> list[str]:
    """The paths sorted, without those inside another one (their folder is walked anyway)."""
    kept: list[str] = []
    for rel in sorted(set(rels)):
        if not any(rel.startswith(f"{outer}/") for outer in kept):
            kept.append(rel)
    return kept


def _is_folder(info: os.stat_result) -> bool:
    return stat.S_ISDIR(info.st_mode) and not _is_link(info)


def _is_link(info: os.stat_result) -> bool:
    """A symbolic link, or on Windows any reparse point (junctions are not symlinks there)."""
    attributes: int = getattr(info, "st_file_attributes", 0)
    return stat.S_ISLNK(info.st_mode) or bool(attributes & stat.FILE_ATTRIBUTE_REPARSE_POINT)
