"""Glob patterns over relative POSIX paths, with ``**`` spanning any number of folders."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterable
from fnmatch import fnmatchcase


class GlobSet:
    """A set of glob patterns, matched case-insensitively against relative POSIX paths.

    ``*``, ``?`` and ``[...]`` match within one path segment; a ``**`` segment matches zero or
    more segments, so ``**/*.md`` also matches ``a.md``. A pattern without a slash matches the
    file or folder name at any depth (``*.tmp`` is ``**/*.tmp``), as in ``.gitignore``.

    A pattern matches the path itself, never through one of its folders: callers decide what an
    excluded folder means (the walk does not enter it; the watcher tests each ancestor).
    """

    # Not pathspec (measured with pathspec 1.1.1, its "gitignore" and GitIgnoreSpec alike): an
    # ignore-file matcher lets a pattern that matches a folder match everything under it, so
    # `include = ["*.md"]` would take `notes.md/photo.jpg` and `docs/a.md` would take
    # `docs/a.md/x.png`; and its `drafts/**` does not match the folder `drafts`, which "a `**`
    # segment matches zero or more segments" above promises (test_glob_matching asserts both).
    # Undoing the first needs rewriting the regexes pathspec generates, whose shape is not its
    # API: more code than the segment matcher below, which leaves the glob syntax within a
    # segment to the standard library's fnmatch.

    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(patterns)
        self._compiled = [_compile(pattern) for pattern in self.patterns]

    def matches(self, path: str) -> bool:
        """Whether any pattern matches ``path`` (relative, ``/``-separated)."""
        parts = path.lower().split("/")
        return any(_match(segments, parts) for segments in self._compiled)

    def __repr__(self) -> str:
        return f"GlobSet({list(self.patterns)!r})"


def _compile(pattern: str) -> list[str]:
    normalised = pattern.strip().lower().replace("\\", "/")
    segments = [s for s in normalised.split("/") if s not in ("", ".")]
    if segments and "/" not in normalised:
        segments.insert(0, "**")
    # A run of ** segments means the same as one, and one keeps the matcher linear.
    return [s for i, s in enumerate(segments) if not (s == "**" and i > 0 and segments[i - 1] == "**")]


def _match(segments: list[str], parts: list[str]) -> bool:
    """Dynamic programming over segments: ``reach[j]`` says the segments so far match ``parts[:j]``."""
    reach = [True] + [False] * len(parts)
    for segment in segments:
        if segment == "**":
            reach = list(itertools.accumulate(reach, operator.or_))
        else:
            reach = [False] + [reach[j] and fnmatchcase(part, segment) for j, part in enumerate(parts)]
    return reach[-1]
