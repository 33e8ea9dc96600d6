"""The filesystem connector: the documents in a local folder tree."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from pydantic import Field

from ..api import Config, Connector, ConnectorError, Document, in_scope
from .extract import ExtractionWorker, Limits
from .formats import ParseError, first_heading, format_for
from .formats.base import error_reason
from .globs import GlobSet
from .reader import ReadError, read_file
from .walk import FileEntry, SkipCallback, walk_files

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
DEFAULT_INCLUDE = ("**/*.md", "**/*.markdown", "**/*.txt", "**/*.html", "**/*.htm", "**/*.pdf", "**/*.docx")


class FilesystemConfig(Config):
    """Settings of a ``connector = "filesystem"`` source."""

    path: Path = Field(description="Folder to index; a relative path is relative to the configuration file.")
    include: list[str] = Field(
        default_factory=lambda: list(DEFAULT_INCLUDE),
        description="Glob patterns of the files to index, relative to `path` (`**` spans folders; "
        "case-insensitive). Markdown, text, HTML, PDF and DOCX are parsed; other files are read as text.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns of files or folders to leave out; a pattern without `/` matches a "
        "name at any depth. Hidden files and folders (`.git`) are always left out.",
    )
    max_file_bytes: int = Field(
        default=20 * MiB, gt=0, description="Files larger than this many bytes are skipped (default 20 MiB)."
    )
    max_text_chars: int = Field(
        default=2_000_000,
        gt=0,
        description="Files whose extracted text is longer than this many characters are skipped "
        "(default 2,000,000, about a thousand pages).",
    )
    max_unpacked_bytes: int = Field(
        default=64 * MiB,
        gt=0,
        description="DOCX files whose zip members unpack to more than this many bytes are skipped "
        "before parsing (default 64 MiB): a small file can hold a huge amount of compressed XML.",
    )
    parse_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds one file may take to parse (default 60); parsing runs in a worker process "
        "that is stopped, and the file skipped, when it takes longer.",
    )
    allow_hard_links: bool = Field(
        default=False,
        description="Index files that have more than one name (hard links). Off by default: a hard link "
        "can make a file from outside `path` appear inside it, so such files are skipped with a reason. "
        "Turn on only for a folder whose hard links you trust (e.g. a deduplicated backup).",
    )


class FilesystemConnector(Connector):
    """Markdown, text, HTML, PDF and Word files under a folder; links (symbolic or hard) are not followed."""

    name = "filesystem"
    description = "Files in a local folder: Markdown, text, HTML, PDF and Word (DOCX)."
    Config = FilesystemConfig
    config: FilesystemConfig

    partial = True

    def __init__(self, config: FilesystemConfig) -> None:
        super().__init__(config)

    def documents(self) -> AsyncIterator[Document]:
        """Yield one document per readable file; unusable files are recorded with :meth:`skip`."""
        return self._documents(None)

    def documents_in(self, scopes: Sequence[str]) -> AsyncIterator[Document]:
        """The same for the files and folders ``scopes`` name (relative paths), without listing
        the rest of the tree; the other files' stamps are kept."""
        return self._documents(scopes)

    async def _documents(self, scopes: Sequence[str] | None) -> AsyncIterator[Document]:
        root = await asyncio.to_thread(self._root)
        scanned_at = time.time()
        entries = await asyncio.to_thread(self._list, root, self.skip, scopes)
        before = _Stamps.load(self.state)
        stamps = {} if scopes is None else before.outside(set(scopes))
        worker = ExtractionWorker(self.config.parse_timeout)
        try:
            for entry in entries:
                stamp = [entry.size, entry.mtime]
                if before.trusts(entry.rel, stamp):  # same size and time as last run: not read again
                    stamps[entry.rel] = stamp
                    self.unchanged(entry.rel)
                    continue
                try:
                    document = await asyncio.to_thread(load_document, entry, root, self.config, worker)
                except (ReadError, ParseError) as exc:
                    self.skip(entry.rel, str(exc))
                except Exception as exc:  # one bad file never stops the source
                    logger.warning("%s: unexpected error while loading", entry.rel, exc_info=True)
                    self.skip(entry.rel, f"unexpected error: {error_reason(exc)}")
                else:
                    stamps[entry.rel] = stamp
                    yield document
        finally:
            await asyncio.to_thread(worker.close)
        # After part of the tree, trust the other files' stamps as far as the last full scan did.
        self.state = {"files": stamps, "scanned_at": scanned_at if scopes is None else before.scanned_at}

    async def estimated_count(self) -> int | None:
        """How many files a run will parse: a walk of the tree without reading any file."""
        try:
            root = await asyncio.to_thread(self._root)
            return len(await asyncio.to_thread(self._list, root, _ignore_skip))
        except ConnectorError:
            return None

    def _root(self) -> Path:
        path = self.config.path.expanduser()
        try:
            root = path.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise ConnectorError(f"{path}: folder not found") from exc
        if not root.is_dir():
            raise ConnectorError(f"{path}: not a folder")
        return root

    def _list(self, root: Path, on_skip: SkipCallback, only: Sequence[str] | None = None) -> list[FileEntry]:
        include, exclude = GlobSet(self.config.include), GlobSet(self.config.exclude)
        try:
            return list(
                walk_files(
                    root,
                    include=include,
                    exclude=exclude,
                    on_skip=on_skip,
                    allow_hard_links=self.config.allow_hard_links,
                    only=only,
                )
            )
        except OSError as exc:
            raise ConnectorError(f"{root}: cannot read folder: {exc.strerror or exc}") from exc


class _Stamps:
    """Sizes and modification times of the files read by the last successful run."""

    def __init__(self, files: dict[str, list[float]], scanned_at: float) -> None:
        self.files = files
        self.scanned_at = scanned_at

    @classmethod
    def load(cls, state: dict[str, object]) -> _Stamps:
        files, scanned_at = state.get("files"), state.get("scanned_at")
        ok = isinstance(files, dict) and isinstance(scanned_at, float | int)
        return cls(files if ok else {}, float(scanned_at) if ok else 0.0)  # type: ignore[arg-type]

    def outside(self, scopes: set[str]) -> dict[str, list[float]]:
        """The stamps of the files out of ``scopes``."""
        return {rel: stamp for rel, stamp in self.files.items() if not in_scope(rel, scopes)}

    def trusts(self, rel: str, stamp: list[float]) -> bool:
        # A file modified just before or during the last scan may have changed again within the
        # clock's granularity (the "racy git" problem): read it once more.
        return self.files.get(rel) == stamp and stamp[1] < self.scanned_at - 2.0


def load_document(
    entry: FileEntry, root: Path, config: FilesystemConfig, worker: ExtractionWorker
) -> Document:
    """Read one file and parse it in ``worker`` (blocking). Raises ReadError or ParseError."""
    data = read_file(
        entry, root=root, max_bytes=config.max_file_bytes, allow_hard_links=config.allow_hard_links
    )
    file_format = format_for(entry.rel)
    parsed = worker.extract(entry.rel, data, Limits(config.max_text_chars, config.max_unpacked_bytes))
    if not parsed.text.strip():
        raise ParseError("no text")
    return Document(
        id=entry.rel,
        title=parsed.title or first_heading(parsed.text) or title_from_name(entry.rel),
        text=parsed.text,
        uri=entry.path.as_uri(),
        updated_at=datetime.fromtimestamp(entry.mtime, tz=UTC),
        metadata={**parsed.metadata, "path": entry.rel, "format": file_format.name, "size": len(data)},
    )


def _ignore_skip(item_id: str, reason: str) -> None:
    """Skips seen while only counting are reported by the run itself."""


def title_from_name(path: str) -> str:
    """A readable title from a file name: ``docs/refund_policy-2024.md`` → ``Refund policy 2024``."""
    stem = PurePosixPath(path).stem
    words = " ".join(stem.replace("_", " ").replace("-", " ").split())
    if not words:
        return stem or path
    return words[0].upper() + words[1:] if words.islower() else words
