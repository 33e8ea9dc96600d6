"""The sql connector: each row of a SELECT becomes a record document (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from ..api import Connector, ConnectorError, Document
from ..recordkit import RecordConfig, RecordShape, TitleTemplate, key_id
from ..values import tag_value, untag_value
from .databases import PostgresSession, Row, Session, SqliteSession
from .secrets import Redactor, redact_url, url_password

BATCH_ROWS = 500
#: Bump when the rendering of rows changes, so an incremental source re-reads every row once.
FORMAT_VERSION = 1
_SQLITE = "sqlite://"
_POSTGRES = ("postgresql://", "postgres://")
_LEADING_COMMENTS = re.compile(r"^(\s+|--[^\n]*(\n|$)|/\*.*?\*/)*", re.DOTALL)


class SqlConfig(RecordConfig):
    """Settings of a ``connector = "sql"`` source."""

    # Validation errors must never echo the URL (it may hold a password).
    model_config = ConfigDict(hide_input_in_errors=True)

    url: str = Field(
        description="Database URL: `sqlite:///orders.db` (a path relative to the configuration file; "
        "`sqlite:////abs/path.db` for an absolute one) or `postgresql://user:password@host:5432/db`. "
        "The password is never logged or shown; prefer `password_env`."
    )
    password_env: str | None = Field(
        default=None,
        description="Name of an environment variable that holds the PostgreSQL password (read at "
        "sync time; overrides a password in `url`).",
    )
    query: str = Field(
        description="The SELECT (or WITH … SELECT) whose rows become records; it runs in a read-only "
        "transaction."
    )
    updated_column: str | None = Field(
        default=None,
        description="A column that grows when a row changes (a timestamp or version): later syncs "
        "read only rows at or above the last high-water mark and list the other keys cheaply.",
    )
    timeout_s: float = Field(
        default=30.0, gt=0, description="Seconds allowed to connect and to run each query."
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, url: str, info: ValidationInfo) -> str:
        url = url.strip()
        if url.startswith(_POSTGRES):
            return url
        if not url.startswith(_SQLITE):
            raise ValueError("must start with sqlite:/// or postgresql://")
        path = sqlite_path(url)
        base = (info.context or {}).get("base_dir")
        if not path.is_absolute() and base is not None:
            return _SQLITE + "/" + (Path(base) / path).resolve().as_posix()
        return url

    @field_validator("query")
    @classmethod
    def _check_query(cls, query: str) -> str:
        query = query.strip().rstrip(";").strip()
        body = _LEADING_COMMENTS.sub("", query, count=1)
        if not re.match(r"(select|with)\b", body, re.IGNORECASE):
            raise ValueError("must be a SELECT (or WITH … SELECT) statement")
        return query

    @model_validator(mode="after")
    def _check_password_env(self) -> SqlConfig:
        if self.password_env is not None and not self.url.startswith(_POSTGRES):
            raise ValueError("password_env applies to postgresql:// URLs only")
        return self

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name == "url" else value


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///relative.db`` or ``sqlite:////absolute.db`` URL."""
    rest = url[len(_SQLITE) :]
    if not rest.startswith("/") or not rest[1:] or rest[1:].startswith(":memory:"):
        raise ValueError("a SQLite URL is sqlite:///path/to/file.db")
    return Path(rest[1:].split("?", 1)[0])


class SqlConnector(Connector):
    """Rows of a SQL query, one record each, from SQLite or PostgreSQL."""

    name = "sql"
    description = "Rows of a SQL query (SQLite or PostgreSQL), one record per row, typed fields."
    Config = SqlConfig
    config: SqlConfig

    def __init__(self, config: SqlConfig) -> None:
        super().__init__(config)
        template = TitleTemplate(config.title, label=config.key)
        self.shape = RecordShape(config.key, template, config.text_columns)

    async def documents(self) -> AsyncIterator[Document]:
        """Yield one record per row; NULL and duplicate keys are skipped with a reason.

        With ``updated_column`` and a mark from the previous run, only rows at or above the mark
        are read; the keys of the others are reported with :meth:`unchanged`.
        """
        session = self._session()
        try:
            columns = await asyncio.to_thread(session.open)
            self._check_columns(columns)
            listed = [key_id(v) for v in await asyncio.to_thread(session.values, self.config.key)]
            keys = Counter(k for k in listed if k is not None)
            nulls = len(listed) - keys.total()
            if nulls:
                how_many = "1 row" if nulls == 1 else f"{nulls} rows"
                self.skip(f"<{how_many} without {self.config.key}>", f"NULL or empty key {self.config.key!r}")
            duplicates = {k for k, n in keys.items() if n > 1}
            for k in sorted(duplicates, key=str):
                self.skip(str(k), f"key {self.config.key!r} = {k!r} is shared by {keys[k]} rows; all skipped")
            updated, since, new_mark = self.config.updated_column, None, None
            if updated is not None:
                new_mark = await asyncio.to_thread(session.max_raw, updated)
                mark = self._previous_mark(duplicates)
                since = (updated, mark) if mark is not None else None
            await asyncio.to_thread(session.start_rows, since)
            read: set[str] = set()
            while rows := await asyncio.to_thread(session.fetch, BATCH_ROWS):
                for row in rows:
                    document = self._document(columns, row, duplicates)
                    if document is not None:
                        read.add(document.id)
                        yield document
            if since is not None:
                for k in keys:
                    if k not in read and k not in duplicates:
                        self.unchanged(k)
            self.state = self._next_state(new_mark, duplicates)
        finally:
            await asyncio.to_thread(session.close)

    # -- pieces ---------------------------------------------------------------------------------

    def _session(self) -> Session:
        config = self.config
        password = self._password()
        redact = Redactor([url_password(config.url), password])
        if config.url.startswith(_SQLITE):
            return SqliteSession(sqlite_path(config.url), config.query, config.timeout_s, redact)
        return PostgresSession(config.url, password, config.query, config.timeout_s, redact)

    def _password(self) -> str | None:
        """The password named by ``password_env``: that environment variable is the documented
        contract for keeping the secret out of the configuration file."""
        name = self.config.password_env
        if name is None:
            return None
        value = os.environ.get(name)
        if value is None:
            raise ConnectorError(f"environment variable {name} (password_env) is not set")
        return value

    def _check_columns(self, columns: list[str]) -> None:
        config = self.config
        doubled = sorted(c for c, n in Counter(columns).items() if n > 1)
        if doubled:
            raise ConnectorError(f"the query returns several columns named {', '.join(doubled)}; alias them")
        wanted = {"key": [config.key], "title": list(self.shape.title.columns)}
        wanted["text_columns"] = list(config.text_columns or [])
        wanted["updated_column"] = [config.updated_column] if config.updated_column else []
        for setting, names in wanted.items():
            missing = [n for n in names if n not in columns]
            if missing:
                raise ConnectorError(
                    f"{setting}: the query returns no column {missing[0]!r} (columns: {', '.join(columns)})"
                )

    def _document(self, columns: list[str], row: Row, duplicates: set[str]) -> Document | None:
        fields = dict(zip(columns, row, strict=True))
        key = key_id(fields[self.config.key])
        if key is None or key in duplicates:
            return None  # reported once, from the key listing
        updated = fields.get(self.config.updated_column) if self.config.updated_column else None
        return self.shape.document(
            fields,
            key=key,
            metadata={"key": self.config.key, "query": self._query_hash()},
            updated_at=updated if isinstance(updated, datetime) else None,
        )

    def _query_hash(self) -> str:
        return hashlib.sha256(" ".join(self.config.query.split()).encode()).hexdigest()[:12]

    def _fingerprint(self) -> str:
        """Everything that shapes the documents: a change means every row is read again."""
        config = self.config
        settings = [
            FORMAT_VERSION,
            redact_url(config.url),
            config.query,
            config.key,
            config.title,
            config.text_columns,
            config.updated_column,
        ]
        return hashlib.sha256(json.dumps(settings).encode()).hexdigest()

    def _previous_mark(self, duplicates: set[str]) -> Any:
        """The mark of the last run, or None when every row must be read again: first run,
        changed settings, or a key that was shared by several rows (so never indexed) and no
        longer is."""
        if self.config.updated_column is None or self.state.get("fingerprint") != self._fingerprint():
            return None
        if set(self.state.get("duplicates", [])) - duplicates:
            return None
        encoded = self.state.get("mark")
        try:
            return decode_mark(encoded) if encoded is not None else None
        except (ValueError, TypeError, KeyError):
            return None

    def _next_state(self, mark: Any, duplicates: set[str]) -> dict[str, Any]:
        if self.config.updated_column is None or mark is None:
            return {}
        try:
            encoded = encode_mark(mark)
        except TypeError:
            return {}  # a mark we cannot keep: the next run reads everything
        return {"fingerprint": self._fingerprint(), "mark": encoded, "duplicates": sorted(duplicates)}


def encode_mark(value: Any) -> dict[str, Any]:
    """A high-water mark as JSON, keeping the type the database compares it with."""
    if isinstance(value, bool | int | float | str):
        return {"type": type(value).__name__, "value": value}
    tagged = tag_value(value)
    if tagged is None:
        raise TypeError(f"cannot keep a mark of type {type(value).__name__}")
    return {"type": tagged[0], "value": tagged[1]}


_SCALARS: dict[str, Any] = {"bool": bool, "int": int, "float": float, "str": str}


def decode_mark(encoded: dict[str, Any]) -> Any:
    kind, value = encoded["type"], encoded["value"]
    return _SCALARS[kind](value) if kind in _SCALARS else untag_value(kind, value)
