"""Blocking database sessions for the sql connector: SQLite (standard library) and PostgreSQL (psycopg 3).

A :class:`Session` reads one consistent snapshot (a read-only transaction) of the rows of a
query. Every failure comes out as a :class:`ConnectorError` whose message names the cause and
never contains the password. All methods block: the connector calls them in a worker thread,
one at a time.
"""

from __future__ import annotations

import abc
import math
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ..api import ConnectorError
from ..values import ValueType, lenient
from .secrets import Redactor, redact_url

Row = tuple[Any, ...]
Converter = Callable[[Any], Any]


def quote_ident(name: str) -> str:
    """A column name as a quoted SQL identifier (the same syntax in SQLite and PostgreSQL)."""
    return '"' + name.replace('"', '""') + '"'


class Session(abc.ABC):
    """One read-only snapshot of a database, used to read the rows of ``query``."""

    placeholder = "?"

    def __init__(self, query: str, timeout_s: float, redact: Redactor) -> None:
        self.query = query
        self.timeout_s = timeout_s
        self.redact = redact
        self.columns: list[str] = []
        self._converters: list[Converter | None] = []
        self._rows: Any = None

    # -- what the connector calls ---------------------------------------------------------------

    def open(self) -> list[str]:
        """Connect, start the snapshot and return the query's column names (checks the SQL)."""
        self._connect()
        with self._failures("query failed"):
            cursor = self._execute(f"SELECT * FROM ({self.query}) AS q LIMIT 0")
            self.columns = [_column_name(d) for d in cursor.description or ()]
            cursor.close()
        self._converters = self._column_converters()
        return self.columns

    def values(self, column: str) -> list[Any]:
        """Every row's value of ``column``, typed like the rows."""
        index = self.columns.index(column)
        convert = self._converters[index] if index < len(self._converters) else None
        with self._failures("query failed"):
            cursor = self._execute(f"SELECT q.{quote_ident(column)} FROM ({self.query}) AS q")
            values = [row[0] for row in cursor.fetchall()]
            cursor.close()
        return [convert(v) for v in values] if convert else values

    def max_raw(self, column: str) -> Any:
        """The largest value of ``column`` as the database returns it (for a high-water mark)."""
        with self._failures("query failed"):
            cursor = self._execute(f"SELECT MAX(q.{quote_ident(column)}) FROM ({self.query}) AS q")
            row = cursor.fetchone()
            cursor.close()
        return None if row is None else row[0]

    def start_rows(self, since: tuple[str, Any] | None = None) -> None:
        """Start reading the rows, all of them or those whose ``column >= mark`` (or NULL)."""
        sql = f"SELECT * FROM ({self.query}) AS q"
        params: tuple[Any, ...] = ()
        if since is not None:
            sql = f"SELECT * FROM ({self._with_parameters(self.query)}) AS q"
            column = f"q.{quote_ident(since[0])}"
            sql += f" WHERE {column} >= {self.placeholder} OR {column} IS NULL"
            params = (since[1],)
        with self._failures("query failed"):
            self._rows = self._stream(sql, params)

    def fetch(self, n: int) -> list[Row]:
        """The next ``n`` rows at most, typed; an empty list at the end."""
        with self._failures("query failed"):
            rows = self._rows.fetchmany(n)
        if not any(self._converters):
            return [tuple(r) for r in rows]
        return [
            tuple(c(v) if c is not None else v for c, v in zip(self._converters, r, strict=False))
            for r in rows
        ]

    @abc.abstractmethod
    def close(self) -> None:
        """End the snapshot and disconnect; never raises."""

    # -- dialects ----------------------------------------------------------------------------------

    @abc.abstractmethod
    def _connect(self) -> None: ...

    @abc.abstractmethod
    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def _stream(self, sql: str, params: Sequence[Any]) -> Any:
        return self._execute(sql, params)

    def _with_parameters(self, query: str) -> str:
        """``query`` as part of a statement that has parameters (escapes what the driver would
        take for a placeholder)."""
        return query

    def _column_converters(self) -> list[Converter | None]:
        return [None] * len(self.columns)

    @abc.abstractmethod
    def _explain(self, exc: Exception) -> str | None:
        """The message for a driver error, or None if ``exc`` is not one."""

    @contextmanager
    def _failures(self, what: str) -> Iterator[None]:
        try:
            yield
        except ConnectorError:
            raise
        except Exception as exc:
            message = self._explain(exc)
            if message is None:
                raise
            # ``from None``: the driver's own message may quote the connection string.
            raise ConnectorError(self.redact(f"{what}: {message}")) from None


def _column_name(description: Any) -> str:
    name = getattr(description, "name", None)
    return str(name if name is not None else description[0])


def _sentences(text: str) -> str:
    """A multi-line driver message on one line, its lines read as sentences."""
    out = ""
    for line in (line.strip() for line in text.splitlines()):
        if line:
            out += (" " if not out or out.endswith((".", ":", ";", "?", "!")) else ". ") + line
    return out.strip()


def _first_line(exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


# --- SQLite -------------------------------------------------------------------------------------------


def sqlite_converter(declared: str) -> Converter | None:
    """How to type a value of a column declared ``declared``, which SQLite stores untyped.

    DATE → date, DATETIME/TIMESTAMP → datetime, DECIMAL/NUMERIC/MONEY → Decimal, BOOL… → bool.
    Values that do not parse are kept as stored.
    """
    upper = declared.upper()
    kind: ValueType | None = None
    if "BOOL" in upper:
        kind = "bool"
    elif "DATETIME" in upper or "TIMESTAMP" in upper:
        kind = "datetime"
    elif upper.startswith("DATE"):
        kind = "date"
    elif any(word in upper for word in ("DECIMAL", "NUMERIC", "MONEY")):
        kind = "decimal"
    if kind is None:
        return None
    if kind == "date":
        return _date_or_datetime
    chosen: ValueType = kind
    return lambda v: lenient(chosen, v)


def _date_or_datetime(value: Any) -> Any:
    """A DATE column sometimes holds a time as well: a datetime then."""
    typed = lenient("date", value)
    return lenient("datetime", value) if typed is value else typed


class SqliteSession(Session):
    """A read-only SQLite connection (``mode=ro``) in one read transaction."""

    def __init__(self, path: Path, query: str, timeout_s: float, redact: Redactor) -> None:
        super().__init__(query, timeout_s, redact)
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._deadline = math.inf

    def _connect(self) -> None:
        if not self.path.is_file():
            raise ConnectorError(f"{self.path}: database file not found")
        with self._failures(f"{self.path}: cannot open the database"):
            db = sqlite3.connect(
                self.path.as_uri() + "?mode=ro",
                uri=True,
                timeout=self.timeout_s,
                isolation_level=None,
                check_same_thread=False,  # the connector calls it from worker threads, one at a time
            )
            self._db = db
            db.set_progress_handler(self._interrupt_after_deadline, 10_000)
            db.execute("BEGIN")

    def _interrupt_after_deadline(self) -> int:
        return 1 if time.monotonic() > self._deadline else 0

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        assert self._db is not None
        self._deadline = time.monotonic() + self.timeout_s
        return self._db.execute(sql, tuple(params))

    def fetch(self, n: int) -> list[Row]:
        self._deadline = time.monotonic() + self.timeout_s
        return super().fetch(n)

    def _column_converters(self) -> list[Converter | None]:
        """Converters from the declared types, read through a temporary view of the query."""
        assert self._db is not None
        try:
            self._db.execute(f"CREATE TEMP VIEW strongroom_sql_q AS {self.query}")
            try:
                info = self._db.execute("PRAGMA temp.table_info(strongroom_sql_q)").fetchall()
            finally:
                self._db.execute("DROP VIEW temp.strongroom_sql_q")
        except sqlite3.Error:
            return [None] * len(self.columns)
        declared = {int(row[0]): str(row[2] or "") for row in info}
        return [sqlite_converter(declared.get(i, "")) for i in range(len(self.columns))]

    def _explain(self, exc: Exception) -> str | None:
        if isinstance(exc, sqlite3.OperationalError) and str(exc) == "interrupted":
            return f"timed out after {self.timeout_s:g} s (timeout_s)"
        if isinstance(exc, sqlite3.Error):
            return _first_line(exc)
        return None

    def close(self) -> None:
        if self._db is not None:
            with suppress(sqlite3.Error):
                self._db.close()
            self._db = None


# --- PostgreSQL ------------------------------------------------------------------------------------------


class PostgresSession(Session):
    """A psycopg 3 connection in a read-only, repeatable-read transaction; rows stream from a
    server-side cursor."""

    placeholder = "%s"

    def __init__(
        self, url: str, password: str | None, query: str, timeout_s: float, redact: Redactor
    ) -> None:
        super().__init__(query, timeout_s, redact)
        self.url = url
        self.password = password
        self._conn: Any = None

    def _connect(self) -> None:
        import psycopg

        options: dict[str, Any] = {
            "connect_timeout": max(2, math.ceil(self.timeout_s)),
            "application_name": "strongroom",
        }
        if self.password is not None:
            options["password"] = self.password
        with self._failures(f"cannot connect to {redact_url(self.url)}"):
            conn = psycopg.connect(self.url, autocommit=False, **options)
            self._conn = conn
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            milliseconds = str(max(1, round(self.timeout_s * 1000)))
            conn.execute("SELECT set_config('statement_timeout', %s, true)", (milliseconds,))

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._conn.execute(sql, tuple(params) or None)

    def _with_parameters(self, query: str) -> str:
        return query.replace("%", "%%")  # psycopg reads every % of a query with parameters

    def _stream(self, sql: str, params: Sequence[Any]) -> Any:
        cursor = self._conn.cursor(name="strongroom_rows")
        cursor.execute(sql, tuple(params) or None)
        return cursor

    def _explain(self, exc: Exception) -> str | None:
        import psycopg

        if isinstance(exc, psycopg.errors.QueryCanceled):
            return f"timed out after {self.timeout_s:g} s (timeout_s)"
        if isinstance(exc, psycopg.Error):
            diag = getattr(exc, "diag", None)
            primary = getattr(diag, "message_primary", None) if diag is not None else None
            if primary:
                return str(primary)
            return _sentences(str(exc)).removeprefix("connection failed: ") or type(exc).__name__
        return None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.rollback()
                self._conn.close()
            except Exception:
                pass
            self._conn = None
