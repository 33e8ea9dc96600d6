"""The port every store is written against: a SQL database with short transactions.

The catalog, the exposure ledger and the audit log are plain SQL over this interface, so one
implementation of each serves both backends: :class:`~strongroom.server.store.sqlite.SqliteDatabase`
(one file, embedded; the default) and :class:`~strongroom.server.store.postgres.PostgresDatabase`
(a server shared by several replicas). What differs between them — schema DDL, the keyword index
and the few JSON expressions — is asked of the database, never branched on by a store.

Statements use ``?`` placeholders; every fault of the database leaves as a
:class:`~strongroom.server.errors.StoreError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]


class Cursor(Protocol):
    """The rows of one statement: each row reads by position and by column name."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """One connection, inside a transaction or not (see :class:`Database`)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> Any: ...


Migration = str | Callable[[Any], None]
"""SQL statements (a script), or a function of the connection, run inside the migrating transaction."""


@dataclass(frozen=True)
class Schema:
    """A component's tables as numbered migrations per dialect: ``migrations[d][i]`` takes a
    database from version ``i`` to ``i + 1``. Append to change a schema; never edit one that has
    shipped."""

    component: str
    migrations: Mapping[Dialect, Sequence[Migration]]

    def version(self, dialect: Dialect) -> int:
        return len(self.migrations[dialect])


class KeywordIndex(Protocol):
    """The backend's full-text index of chunks (SQLite FTS5 BM25; PostgreSQL text search)."""

    def add(self, db: Connection, rows: Sequence[tuple[str, str, str, str]]) -> None:
        """Index ``(chunk_id, title, headings, body)`` rows."""

    def remove(self, db: Connection, chunk_ids: Sequence[str]) -> None: ...

    def count(self, db: Connection, word: str) -> int:
        """How many chunks hold ``word``: what a search for it has to score."""

    def search(
        self,
        db: Connection,
        words: Sequence[str],
        phrases: Sequence[str],
        n: int,
        where: tuple[str, list[Any]],
    ) -> list[tuple[str, float]]:
        """``(chunk_id, score)`` of the best ``n`` chunks with any of ``words`` (or, when given,
        any of ``phrases``: word sequences), higher is better; ``where`` is a condition on the
        ``documents d`` row with its parameters."""


class Database(Protocol):
    """Where the stores keep their tables.

    ``read()`` runs statements outside a write transaction; ``tx(lock)`` is one write transaction
    that holds ``lock`` (a component's name) until it ends, so read-modify-writes of the same
    component never interleave, in this process or any other sharing the database;
    ``snapshot()`` is a read transaction that sees one moment.
    """

    dialect: Dialect
    keywords: KeywordIndex

    def migrate(self, schema: Schema) -> None:
        """Bring ``schema``'s tables to this version; refuse a database from a newer Strongroom."""

    def read(self) -> AbstractContextManager[Connection]: ...

    def tx(self, lock: str) -> AbstractContextManager[Connection]: ...

    def snapshot(self) -> AbstractContextManager[Connection]: ...

    def exclusive(self, name: str, wait_s: float = 0.0) -> AbstractContextManager[bool]:
        """A lock held for as long as the block runs (e.g. one sync at a time for everyone
        sharing the database): True when held, False when another holder kept it ``wait_s``."""

    def json_in(self, column: str, key: str, count: int) -> str:
        """A condition: the JSON object in ``column`` has ``key`` equal to one of ``count``
        parameters (pass them through :meth:`json_value`)."""

    def json_value(self, value: Any) -> Any:
        """A parameter for :meth:`json_in`."""

    def json_array_has(self, column: str, field: str) -> str:
        """A condition: the JSON array of objects in ``column`` has one whose ``field`` equals
        the (one) parameter."""

    def close(self) -> None: ...

    def describe(self) -> str:
        """Where the database is, for an operator (never a password)."""
