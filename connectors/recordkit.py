"""Shared pieces of the record connectors (``sql``, ``records``): one row becomes one Document.

A record is an ordered mapping ``column -> typed value``. This module turns it into a document
the same way for every source of rows:

- the **id** is the key column's value as text (:func:`key_id`);
- the **title** comes from a :class:`TitleTemplate` (``"Order {order_id}"``, a bare column name,
  or a default ``"<label> <key>"``);
- the **text** is a readable rendering, a ``#`` heading with the title followed by one
  ``column: value`` line per non-empty column (:func:`render_text`; :func:`record_fields`
  reads it back);
- the **fields** keep the typed values (int, float, Decimal, str, bool, date, datetime, time,
  bytes, None, and lists/dicts of JSON values), see :func:`normalise_value`.

The values themselves are typed by :mod:`.values` (re-exported here).
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from pydantic import Field, field_validator

from .api import Config, Document, JsonScalar
from .document_text import atx_heading
from .values import VALUE_TYPES, ValueType, infer_type, lenient, normalise_value, parse_value

__all__ = [
    "VALUE_TYPES",
    "RecordConfig",
    "RecordError",
    "RecordShape",
    "TitleTemplate",
    "ValueType",
    "display_value",
    "infer_type",
    "key_id",
    "lenient",
    "normalise_value",
    "parse_template",
    "parse_value",
    "record_fields",
    "render_text",
]


class RecordError(ValueError):
    """One record cannot become a document (no key, a value that does not parse)."""


# --- display ----------------------------------------------------------------------------------


def display_value(value: Any) -> str:
    """How a value reads in a record's text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f") if value.is_finite() else str(value)
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=display_value)
    return str(value)


def key_id(value: Any) -> str | None:
    """The document id for a key value, or None when there is none (NULL, empty, binary)."""
    if value is None or isinstance(value, bytes | list | dict):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = display_value(value).strip()
    return text or None


# --- titles -----------------------------------------------------------------------------------


class TitleTemplate:
    """How a record's title is made.

    - ``None``: ``"<label> <key>"`` (the label is chosen by the connector);
    - text with ``{column}`` placeholders: ``"Order {order_id} ({customer})"``; a format spec
      works too (``{amount:.2f}``); ``{{`` and ``}}`` are literal braces;
    - text without braces: the name of the column that holds the title.

    A placeholder whose column is missing or empty renders as nothing; a title that comes out
    blank falls back to the default.
    """

    def __init__(self, template: str | None, label: str) -> None:
        self.template = template
        self.label = label
        self._parts: list[tuple[str, str | None, str, str | None]] = []
        if template is not None:
            self._parts = parse_template(template)

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the template refers to."""
        return tuple(dict.fromkeys(name for _, name, _, _ in self._parts if name is not None))

    def render(self, fields: Mapping[str, Any], key: str) -> str:
        default = f"{self.label} {key}".strip()
        if self.template is None:
            return default
        out: list[str] = []
        for literal, name, spec, conversion in self._parts:
            out.append(literal)
            if name is None:
                continue
            value = fields.get(name)
            if value is None:
                continue
            if conversion == "r":
                value = repr(value)
            elif conversion in ("s", "a"):
                value = str(value) if conversion == "s" else ascii(value)
            try:
                out.append(format(value, spec) if spec else display_value(value))
            except (ValueError, TypeError):  # a spec that does not fit this value's type
                out.append(display_value(value))
        title = " ".join("".join(out).split())
        return title or default


def parse_template(template: str) -> list[tuple[str, str | None, str, str | None]]:
    """``(literal, column, format_spec, conversion)`` pieces; ValueError for a bad template.

    A template without braces is a column name: one piece that renders that column.
    """
    if "{" not in template and "}" not in template:
        name = template.strip()
        if not name:
            raise ValueError("title must not be empty")
        return [("", name, "", None)]
    try:
        pieces = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"bad title template {template!r}: {exc}") from None
    parts: list[tuple[str, str | None, str, str | None]] = []
    for literal, field, spec, conversion in pieces:
        column = field.strip() if field is not None else None
        if column is not None and (not column or column.isdigit()):
            raise ValueError(f"bad title template {template!r}: name a column inside {{}}, e.g. {{order_id}}")
        if spec and "{" in spec:
            raise ValueError(f"bad title template {template!r}: nested placeholders are not supported")
        parts.append((literal, column, spec or "", conversion))
    return parts


# --- documents --------------------------------------------------------------------------------


def render_text(title: str, fields: Mapping[str, Any], columns: Sequence[str] | None = None) -> str:
    """``# title`` then one ``column: value`` line per non-empty column (all, or ``columns``)."""
    lines = [f"# {title}", ""]
    for name in columns if columns is not None else list(fields):
        value = fields.get(name)
        shown = display_value(value)
        if not shown.strip():
            continue
        shown = "\n  ".join(line for line in shown.strip().splitlines() if line.strip())
        lines.append(f"{name}: {shown}")
    return "\n".join(lines) + "\n"


_FIELD = re.compile(r"[^\s:][^:\n]{0,63}: \S")
"""A ``column: value`` line as :func:`render_text` writes it (a column name up to 64 characters)."""


def record_fields(text: str) -> list[str] | None:
    """``column: value`` of each field when ``text`` (or a passage of it) is a record's, heading
    aside, else None; a multi-line value is joined into one line."""
    fields: list[str] = []
    for line in text.splitlines():
        if not line.strip() or atx_heading(line):
            continue
        if fields and line.startswith("  "):  # a multi-line value goes on
            fields[-1] += " " + line.strip()
        elif _FIELD.match(line):
            fields.append(" ".join(line.split()))
        else:
            return None
    return fields or None


class RecordShape:
    """The settings every record connector shares: key column, title, text columns."""

    def __init__(self, key: str, title: TitleTemplate, text_columns: Sequence[str] | None = None) -> None:
        self.key = key
        self.title = title
        self.text_columns = tuple(text_columns) if text_columns is not None else None

    def id_of(self, fields: Mapping[str, Any]) -> str:
        """The record's key as text; RecordError when it is missing or empty."""
        if self.key not in fields:
            raise RecordError(f"no {self.key!r} value (the key column)")
        ident = key_id(fields[self.key])
        if ident is None:
            raise RecordError(f"empty or NULL key {self.key!r}")
        return ident

    def document(
        self,
        fields: Mapping[str, Any],
        *,
        key: str | None = None,
        id_prefix: str = "",
        uri: str = "",
        metadata: Mapping[str, JsonScalar] | None = None,
        updated_at: datetime | None = None,
    ) -> Document:
        """The document of one record; ``key`` is :meth:`id_of` when the caller has it already."""
        ident = self.id_of(fields) if key is None else key
        typed = {str(name): normalise_value(value) for name, value in fields.items()}
        title = self.title.render(typed, ident)
        return Document(
            id=f"{id_prefix}{ident}",
            title=title,
            text=render_text(title, typed, self.text_columns),
            uri=uri,
            updated_at=updated_at,
            metadata=dict(metadata or {}),
            fields=typed,
        )


class RecordConfig(Config):
    """Settings shared by every connector whose documents are records."""

    key: str = Field(
        description="Column (or JSON property) whose value identifies a record: its id and lookup key."
    )
    title: str | None = Field(
        default=None,
        description="Title of a record: a template such as `Order {order_id} ({customer})`, or a column "
        "name. Default: the key column and value (for record files, the file name and the key).",
    )
    text_columns: list[str] | None = Field(
        default=None,
        description="Columns rendered into the searchable text as `column: value` lines "
        "(default: all). Every column is kept in the record's typed fields either way.",
    )

    @field_validator("title")
    @classmethod
    def _check_title(cls, title: str | None) -> str | None:
        if title is not None:
            parse_template(title)
        return title
