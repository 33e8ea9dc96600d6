"""The records connector: rows of CSV, JSON and JSON Lines files, one record document each."""

from __future__ import annotations

import asyncio
import codecs
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import Field, field_validator

from ..api import Connector, ConnectorError, Document
from ..filesystem.globs import GlobSet
from ..filesystem.walk import walk_files
from ..recordkit import RecordConfig, RecordError, RecordShape, TitleTemplate
from ..values import ValueType
from .parsing import FileError, ParsedFile, file_format, parse_file

DEFAULT_INCLUDE = ("**/*.csv", "**/*.tsv", "**/*.json", "**/*.jsonl", "**/*.ndjson")


class RecordsConfig(RecordConfig):
    """Settings of a ``connector = "records"`` source."""

    path: Path = Field(
        description="A .csv, .tsv, .json (array of objects), .jsonl/.ndjson file, or a folder of them; "
        "relative to the configuration file."
    )
    types: dict[str, ValueType] = Field(
        default_factory=dict,
        description="Type of a column: str, int, float, decimal, bool, date or datetime. Other CSV "
        "columns are inferred (int, float, date, datetime, true/false, else text) when every "
        "non-empty cell parses; JSON values keep their JSON types unless listed here.",
    )
    include: list[str] = Field(
        default_factory=lambda: list(DEFAULT_INCLUDE),
        description="Glob patterns of the files to read when `path` is a folder.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Glob patterns of files or folders to leave out."
    )
    encoding: str = Field(default="utf-8", description="Text encoding of the files (a UTF-8 BOM is ignored).")
    delimiter: str | None = Field(
        default=None,
        min_length=1,
        max_length=1,
        description="CSV field separator (default: `,`, or a tab for .tsv files).",
    )

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, encoding: str) -> str:
        try:
            codecs.lookup(encoding)
        except LookupError:
            raise ValueError(f"unknown encoding {encoding!r}") from None
        return encoding


@dataclass
class _FileResult:
    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    """Every record id of the file, including those skipped as duplicates."""


class RecordsConnector(Connector):
    """Records from CSV, JSON and JSON Lines files.

    Record ids: for a single file, the key value (``42``); for a folder, the file's path
    relative to the folder, a colon and the key (``customers.csv:42``), so that two files may
    use the same keys and ids do not change when a file is added.
    """

    name = "records"
    description = "Rows of CSV, JSON and JSON Lines files, one record per row, typed fields."
    Config = RecordsConfig
    config: RecordsConfig

    async def documents(self) -> AsyncIterator[Document]:
        """Yield one record per good row; bad rows and unreadable files are skipped with a reason.

        A single configured file that cannot be read fails the source (ConnectorError). In a
        folder, an unreadable file is skipped and its records from the last run are kept.
        """
        path = self.config.path.expanduser()
        kind = await asyncio.to_thread(_kind_of, path)
        if kind == "file":
            try:
                result = await asyncio.to_thread(self._read, path, path.name, "")
            except FileError as exc:
                raise ConnectorError(f"{path}: {exc}") from None
            for document in self._emit(result):
                yield document
            return
        previous: dict[str, list[str]] = dict(self.state.get("files") or {})
        files: dict[str, list[str]] = {}
        skips: list[tuple[str, str]] = []
        for rel in await asyncio.to_thread(self._list, path, skips):
            try:
                result = await asyncio.to_thread(self._read, path / rel, rel, f"{rel}:")
            except FileError as exc:
                self.skip(rel, f"{rel}: {exc}")
                for kept in previous.get(rel, []):
                    self.unchanged(kept)
                files[rel] = previous.get(rel, [])
                continue
            for document in self._emit(result):
                yield document
            files[rel] = result.ids
        for item_id, reason in skips:
            self.skip(item_id, reason)
        self.state = {"files": files}

    def _emit(self, result: _FileResult) -> list[Document]:
        for item_id, reason in result.skipped:
            self.skip(item_id, reason)
        return result.documents

    def _list(self, root: Path, skips: list[tuple[str, str]]) -> list[str]:
        include, exclude = GlobSet(self.config.include), GlobSet(self.config.exclude)

        def on_skip(rel: str, reason: str) -> None:
            skips.append((rel, f"{rel}: {reason}"))

        try:
            entries = walk_files(root, include=include, exclude=exclude, on_skip=on_skip)
            return [e.rel for e in entries if file_format(e.path) is not None]
        except OSError as exc:
            raise ConnectorError(f"{root}: cannot read folder: {exc.strerror or exc}") from None

    def _read(self, path: Path, rel: str, prefix: str) -> _FileResult:
        """Parse one file and build its documents (blocking). FileError if it cannot be read."""
        config = self.config
        parsed = parse_file(path, types=config.types, encoding=config.encoding, delimiter=config.delimiter)
        if parsed.format == "csv" and config.key not in parsed.columns:
            raise FileError(f"no column {config.key!r} (the key) in the header: {', '.join(parsed.columns)}")
        shape = RecordShape(config.key, TitleTemplate(config.title, label=path.stem), config.text_columns)
        return _documents(parsed, shape, rel, prefix, path.resolve().as_uri())


def _kind_of(path: Path) -> str:
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "file"
    raise ConnectorError(f"{path}: no such file or folder")


def _documents(parsed: ParsedFile, shape: RecordShape, rel: str, prefix: str, uri: str) -> _FileResult:
    result = _FileResult()
    for where, reason in parsed.bad:
        result.skipped.append((f"{rel}:{where}", f"{rel} {where}: {reason}"))
    keyed: list[tuple[str, str, dict[str, object]]] = []
    for row in parsed.rows:
        try:
            keyed.append((shape.id_of(row.fields), row.where, row.fields))
        except RecordError as exc:
            result.skipped.append((f"{rel}:{row.where}", f"{rel} {row.where}: {exc}"))
    places: dict[str, list[str]] = {}
    for key, where, _ in keyed:
        places.setdefault(key, []).append(where)
    counts = Counter(key for key, _, _ in keyed)
    for key, where, fields in keyed:
        doc_id = f"{prefix}{key}"
        if counts[key] > 1:
            if where == places[key][0]:
                result.ids.append(doc_id)
                result.skipped.append(
                    (
                        doc_id,
                        f"{rel}: key {shape.key!r} = {key!r} repeats ({', '.join(places[key])}); all skipped",
                    )
                )
            continue
        result.ids.append(doc_id)
        metadata: dict[str, str | int | float | bool | None] = {"file": rel, "format": parsed.format}
        result.documents.append(shape.document(fields, key=key, id_prefix=prefix, uri=uri, metadata=metadata))
    return result
