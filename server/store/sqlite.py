"""The embedded backend: one SQLite file, one connection per thread, short transactions.

Every fault of the database (locked, full, damaged, unreadable) leaves this module as a
:class:`~strongroom.server.errors.StoreError` subclass, so every front end reports it the same
way: a tool error for an MCP client (naming no server path), one line for the CLI.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Any, cast

from strongroom.server.errors import (
    InvalidArgument,
    StoreBusy,
    StoreCorrupt,
    StoreError,
    StoreFull,
    StoreTooNew,
    StoreUnavailable,
)
from strongroom.server.store.database import Connection, Dialect, KeywordIndex, Schema
from strongroom.server.store.locks import exclusive_lock
from strongroom.server.store.records import INT64_MAX, INT64_MIN

DEFAULT_BUSY_TIMEOUT_S = 5.0

_BUSY = "the index is busy (another process is writing to it); try again in a moment"
_FULL = "the disk holding the index is full; free some space on it, then try again"
_CORRUPT = (
    "the index catalog is damaged or is not a Strongroom catalog; restore it from a backup, "
    "or move it aside and run `strongroom sync` to rebuild the index"
)
_UNAVAILABLE = "the index catalog cannot be used ({name}); check the data directory's disk and permissions"
_CODES: dict[int, tuple[type[StoreError], str]] = {
    sqlite3.SQLITE_BUSY: (StoreBusy, _BUSY),
    sqlite3.SQLITE_LOCKED: (StoreBusy, _BUSY),
    sqlite3.SQLITE_FULL: (StoreFull, _FULL),
    sqlite3.SQLITE_CORRUPT: (StoreCorrupt, _CORRUPT),
    sqlite3.SQLITE_NOTADB: (StoreCorrupt, _CORRUPT),
}


def store_error(exc: sqlite3.Error, path: Path) -> StoreError:
    """The StoreError for a sqlite3 error; the path and SQLite's own words are for the operator."""
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", None) or type(exc).__name__
    kind, message = _CODES.get(-1 if code is None else code & 0xFF, (StoreUnavailable, _UNAVAILABLE))
    return kind(message.format(name=name), f"{path}: {exc}")


@contextmanager
def translated(path: Path) -> Iterator[None]:
    """Raise database faults as StoreErrors; programming errors stay what they are."""
    try:
        yield
    except (sqlite3.ProgrammingError, sqlite3.InterfaceError):
        raise
    except sqlite3.Error as exc:
        raise store_error(exc, path) from exc
    except OverflowError as exc:  # an integer SQLite cannot store: a caller's value, not a fault
        raise InvalidArgument(
            f"a number is out of range: integers must be between {INT64_MIN} and {INT64_MAX}"
        ) from exc


class _Cursor(sqlite3.Cursor):
    """A cursor whose every step raises database faults as StoreErrors."""

    def _path(self) -> Path:
        return cast(_Connection, self.connection).file_path

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        with translated(self._path()):
            super().execute(sql, parameters)
        return self

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> _Cursor:
        with translated(self._path()):
            super().executemany(sql, seq_of_parameters)
        return self

    def executescript(self, sql_script: str, /) -> _Cursor:
        with translated(self._path()):
            super().executescript(sql_script)
        return self

    def fetchone(self) -> Any:
        with translated(self._path()):
            return super().fetchone()

    def fetchmany(self, size: int | None = 1) -> list[Any]:
        with translated(self._path()):
            return super().fetchmany(size)

    def fetchall(self) -> list[Any]:
        with translated(self._path()):
            return super().fetchall()

    def __next__(self) -> Any:
        with translated(self._path()):
            return super().__next__()


class _Connection(sqlite3.Connection):
    """A connection whose statements run on :class:`_Cursor`s, so faults are translated in one place."""

    file_path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> _Cursor:
        return self.cursor(_Cursor).execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any, /) -> _Cursor:
        return self.cursor(_Cursor).executemany(sql, parameters)

    def executescript(self, sql_script: str, /) -> _Cursor:
        return self.cursor(_Cursor).executescript(sql_script)


_VERSIONS = "strongroom_schema"


def schema_version(db: sqlite3.Connection, component: str) -> int:
    """The version of ``component``'s tables in this file (0: none recorded)."""
    if (
        db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (_VERSIONS,)).fetchone()
        is None
    ):
        return 0
    row = db.execute(f"SELECT version FROM {_VERSIONS} WHERE component=?", (component,)).fetchone()
    return 0 if row is None else int(row[0])


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script``, whole (a trigger's body stays with its CREATE)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if pending.strip():
        yield pending


def add_missing_columns(db: sqlite3.Connection, table: str, columns: Mapping[str, str]) -> None:
    """Add the ``columns`` (name: declaration) a file made by an older version lacks."""
    present = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
    for name, declaration in columns.items():
        if name not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")


def too_new(schema: Schema, found: int, dialect: Dialect, where: str) -> StoreTooNew:
    return StoreTooNew(
        f"the index was written by a newer Strongroom ({schema.component} schema version {found}; "
        f"this one reads up to {schema.version(dialect)}): upgrade Strongroom, or use another data folder",
        where,
    )


def fts5_match(terms: Sequence[str]) -> str | None:
    """An FTS5 OR-query of quoted words or word sequences (no operators from the user)."""
    return " OR ".join(f'"{t}"' for t in terms) or None


class Fts5Index:
    """Chunks in an FTS5 table ranked by BM25 (title, headings and body weighted 2 : 1.5 : 1)."""

    # An FTS5 table indexes only its text: deleting a row by its chunk_id reads every row (13 ms
    # at 13k passages, ~0.1 s at 100k, per passage). So each chunk keeps its FTS5 rowid
    # (``chunks.fts_rowid``, written with the row; FTS5 rowids never change) and is removed by it.

    def add(self, db: Connection, rows: Sequence[tuple[str, str, str, str]]) -> None:
        placed = []
        for row in rows:
            db.execute("INSERT INTO chunks_fts(chunk_id, title, headings, body) VALUES (?,?,?,?)", row)
            placed.append((db.execute("SELECT last_insert_rowid()").fetchone()[0], row[0]))
        db.executemany("UPDATE chunks SET fts_rowid=? WHERE id=?", placed)

    def remove(self, db: Connection, chunk_ids: Sequence[str]) -> None:
        # The chunk_id check keeps a rowid from ever removing another passage's row.
        db.executemany(
            "DELETE FROM chunks_fts WHERE rowid = (SELECT fts_rowid FROM chunks WHERE id = ?) AND chunk_id = ?",
            [(i, i) for i in chunk_ids],
        )

    def count(self, db: Connection, word: str) -> int:
        match = fts5_match([word])
        return (
            int(db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?", [match]).fetchone()[0])
            if match
            else 0
        )

    def search(
        self,
        db: Connection,
        words: Sequence[str],
        phrases: Sequence[str],
        n: int,
        where: tuple[str, list[Any]],
    ) -> list[tuple[str, float]]:
        match = fts5_match(phrases or words)
        if match is None:
            return []
        clause, params = where
        score = "bm25(chunks_fts, 0.0, 2.0, 1.5, 1.0)"
        if clause:
            sql = (
                f"SELECT f.chunk_id AS id, {score} AS score FROM chunks_fts f"
                " JOIN chunks c ON c.id = f.chunk_id JOIN documents d ON d.id = c.document_id"
                f" WHERE chunks_fts MATCH ? AND {clause} ORDER BY score LIMIT ?"
            )
        else:
            # Without a filter, no join to the documents (two lookups per match), and the chunk
            # ids (a read of each match's stored row) only for the best n, after the sort.
            sql = (
                f"SELECT f.chunk_id AS id, best.score AS score FROM (SELECT rowid AS r, {score} AS score"
                " FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY score LIMIT ?) best"
                " JOIN chunks_fts f ON f.rowid = best.r ORDER BY best.score"
            )
        rows = db.execute(sql, [match, *params, n])
        return [(r["id"], -float(r["score"])) for r in rows]


class SqliteDatabase:
    """A database file opened once per thread in WAL mode.

    ``busy_timeout_s`` bounds how long a write waits for another process's write lock before
    failing with :class:`StoreBusy` (reads never wait in WAL mode). Writers of this process take
    turns on a lock of their own first, so they never poll SQLite's lock against each other.
    """

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.path = path
        self.busy_timeout_s = busy_timeout_s
        self.keywords: KeywordIndex = Fts5Index()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailable(_UNAVAILABLE.format(name=exc.strerror), f"{path.parent}: {exc}") from exc
        self._local = threading.local()
        self._writer = threading.RLock()

    def describe(self) -> str:
        return str(self.path)

    def migrate(self, schema: Schema) -> None:
        """Bring the file to the schema's version, refusing one written by a newer Strongroom.

        Reads first and writes only when a migration is due: opening a file another process is
        writing to must not wait. Migrations run in one transaction, re-checked under its lock.
        """
        target = schema.version(self.dialect)
        if self._checked_version(self.db(), schema) == target:
            return
        with self.tx("migrate") as db:
            for migration in schema.migrations[self.dialect][self._checked_version(db, schema) :]:
                if callable(migration):
                    migration(db)
                else:
                    for statement in _statements(migration):
                        db.execute(statement)
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {_VERSIONS} (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            db.execute(
                f"INSERT INTO {_VERSIONS}(component, version) VALUES (?, ?)"
                " ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                (schema.component, target),
            )

    def _checked_version(self, db: sqlite3.Connection, schema: Schema) -> int:
        found = schema_version(db, schema.component)
        if found > schema.version(self.dialect):
            raise too_new(schema, found, self.dialect, str(self.path))
        return found

    def db(self) -> sqlite3.Connection:
        """This thread's connection."""
        db: _Connection | None = getattr(self._local, "db", None)
        if db is None:
            with translated(self.path):
                db = sqlite3.connect(
                    self.path, timeout=self.busy_timeout_s, isolation_level=None, factory=_Connection
                )
            db.file_path = self.path
            db.row_factory = sqlite3.Row
            try:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                db.execute("PRAGMA foreign_keys=ON")
            except BaseException:
                db.close()
                raise
            self._local.db = db
        return db

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        yield self.db()

    @contextmanager
    def tx(self, lock: str) -> Iterator[sqlite3.Connection]:
        """One write transaction (the file's write lock stands for every ``lock``); rolled back
        if anything, the commit included, fails."""
        with self._writer:
            db = self.db()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    with suppress(StoreError):  # the original error is the one to report
                        db.execute("ROLLBACK")
                raise

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        db = self.db()
        db.execute("BEGIN")
        try:
            yield db
        finally:
            db.execute("COMMIT")

    def exclusive(self, name: str, wait_s: float = 0.0) -> AbstractContextManager[bool]:
        """A lock file beside the database (``sync.lock`` in the data directory)."""
        return exclusive_lock(self.path.parent / f"{name}.lock", wait_s)

    @staticmethod
    def json_in(column: str, key: str, count: int) -> str:
        return f"json_extract({column}, '$.{key}') IN ({','.join('?' * count)})"

    @staticmethod
    def json_value(value: Any) -> Any:
        return int(value) if isinstance(value, bool) else value

    @staticmethod
    def json_array_has(column: str, field: str) -> str:
        return f"EXISTS (SELECT 1 FROM json_each({column}) e WHERE json_extract(e.value, '$.{field}') = ?)"

    def close(self) -> None:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
