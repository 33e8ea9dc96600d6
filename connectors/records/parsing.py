"""Reading CSV, JSON and JSON Lines files into typed rows (blocking; the connector runs it in a thread).

A file either parses into :class:`ParsedFile` — good rows plus bad rows with a reason naming
the line — or raises :class:`FileError` when it cannot be read at all.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from ..values import ValueType, coerce_json, infer_type, parse_value

FORMATS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl"}
csv.field_size_limit(16 * 1024 * 1024)


class FileError(Exception):
    """The whole file cannot be read (missing, not text, not JSON, no header)."""


@dataclass
class Row:
    where: str
    """``line 12`` (CSV, JSON Lines) or ``item 3`` (JSON array): where the row is in its file."""
    fields: dict[str, Any]


@dataclass
class ParsedFile:
    format: str
    rows: list[Row] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    """``(where, reason)`` of each row that could not be read."""
    columns: list[str] = field(default_factory=list)
    """The CSV header (empty for JSON)."""


def file_format(path: Path) -> str | None:
    return FORMATS.get(path.suffix.lower())


def parse_file(
    path: Path,
    *,
    types: Mapping[str, ValueType],
    encoding: str = "utf-8",
    delimiter: str | None = None,
) -> ParsedFile:
    """Read ``path`` by its extension (.csv .tsv .json .jsonl .ndjson) into typed rows."""
    kind = file_format(path)
    if kind is None:
        raise FileError(f"unsupported file type {path.suffix or '(none)'!r} (use .csv, .tsv, .json, .jsonl)")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileError("file not found") from None
    except OSError as exc:
        raise FileError(f"cannot read: {exc.strerror or exc}") from None
    try:
        text = data.decode(
            "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        )
    except UnicodeDecodeError as exc:
        raise FileError(f"not {encoding} text (byte {exc.start})") from None
    if kind == "csv":
        return parse_csv(
            text, types=types, delimiter=delimiter or ("\t" if path.suffix.lower() == ".tsv" else ",")
        )
    if kind == "json":
        return parse_json(text, types=types)
    return parse_jsonl(text, types=types)


# --- CSV --------------------------------------------------------------------------------------------


def parse_csv(text: str, *, types: Mapping[str, ValueType], delimiter: str = ",") -> ParsedFile:
    """Typed rows of a CSV text with a header line; a column is typed by ``types`` or inferred."""
    parsed = ParsedFile("csv")
    header, raw = _csv_lines(text, delimiter, parsed)
    parsed.columns = header
    column_types = {
        name: types.get(name) or infer_type(cells[i] for _, cells in raw) for i, name in enumerate(header)
    }
    for where, cells in raw:
        fields: dict[str, Any] = {}
        try:
            for name, cell in zip(header, cells, strict=True):
                fields[name] = _typed_cell(name, cell, column_types[name])
        except ValueError as exc:
            parsed.bad.append((where, str(exc)))
            continue
        parsed.rows.append(Row(where, fields))
    return parsed


def _csv_lines(
    text: str, delimiter: str, parsed: ParsedFile
) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The header and the ``(where, cells)`` of each row, blank lines dropped; a row with the
    wrong number of cells goes to ``parsed.bad``."""
    raw: list[tuple[str, list[str]]] = []
    header: list[str] | None = None
    for line, cells in _csv_records(text, delimiter):
        if not any(c.strip() for c in cells):
            continue  # blank line
        if header is None:
            header = _header(cells, line)
        elif len(cells) != len(header):
            parsed.bad.append((f"line {line}", f"expected {len(header)} columns, found {len(cells)}"))
        else:
            raw.append((f"line {line}", cells))
    if header is None:
        raise FileError("empty file (no header line)")
    return header, raw


def _csv_records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """``(line, cells)`` of each CSV record, ``line`` being where it starts; FileError if malformed."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise FileError(f"line {start}: {exc}") from None
        yield start, cells


def _header(cells: list[str], line: int) -> list[str]:
    names = [c.strip() or f"column_{i + 1}" for i, c in enumerate(cells)]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise FileError(f"line {line}: the header names column {name!r} twice")
        seen.add(name)
    return names


def _typed_cell(name: str, cell: str, kind: ValueType) -> Any:
    if not cell.strip():
        return None
    try:
        return parse_value(cell, kind)
    except ValueError as exc:
        raise ValueError(f"column {name!r}: {exc}") from None


# --- JSON ------------------------------------------------------------------------------------------------


def parse_json(text: str, *, types: Mapping[str, ValueType]) -> ParsedFile:
    """A JSON array of objects; each object is a row."""
    parsed = ParsedFile("json")
    try:
        data = json.loads(text, parse_float=Decimal)
    except json.JSONDecodeError as exc:
        raise FileError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(data, list):
        raise FileError(f"expected an array of objects, found a JSON {_json_kind(data)}")
    for index, item in enumerate(data, start=1):
        _add_object(parsed, f"item {index}", item, types)
    return parsed


def parse_jsonl(text: str, *, types: Mapping[str, ValueType]) -> ParsedFile:
    """JSON Lines: one object per line; blank lines are ignored."""
    parsed = ParsedFile("jsonl")
    for number, line in _lines(text):
        try:
            item = json.loads(line, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            parsed.bad.append((f"line {number}", f"invalid JSON: {exc.msg} (column {exc.colno})"))
            continue
        _add_object(parsed, f"line {number}", item, types)
    return parsed


def _lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def _add_object(parsed: ParsedFile, where: str, item: Any, types: Mapping[str, ValueType]) -> None:
    if not isinstance(item, dict):
        parsed.bad.append((where, f"expected an object, found a JSON {_json_kind(item)}"))
        return
    try:
        fields = {name: _typed_json(name, value, types.get(name)) for name, value in item.items()}
    except ValueError as exc:
        parsed.bad.append((where, str(exc)))
        return
    parsed.rows.append(Row(where, fields))


def _plain(value: Any) -> Any:
    """JSON numbers were parsed as Decimal to keep their digits: integral ones stay int, the
    others become float unless a ``decimal`` type asks for the Decimal."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _typed_json(name: str, value: Any, kind: ValueType | None) -> Any:
    """A JSON value converted to the explicit type of its column, if any."""
    if kind is None or value is None:
        return _plain(value)
    if kind == "decimal" and isinstance(value, Decimal):
        return value  # the digits as written in the file
    try:
        return coerce_json(_plain(value), kind)
    except (ValueError, InvalidOperation) as exc:
        raise ValueError(f"column {name!r}: {exc}") from None


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number"
    )
