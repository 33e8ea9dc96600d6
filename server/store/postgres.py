"""The shared backend: the catalog, ledger and audit log on a PostgreSQL server.

Several ``serve`` replicas on several hosts use one database. Each component's write
transaction first takes a transaction-scoped advisory lock named after it, so read-modify-writes
(a budget judged and recorded, an audit record chained to the head) are serialised across every
replica exactly as SQLite's single writer serialises them on one host. Keyword search is
PostgreSQL's own text search (``english`` configuration, GIN index); Debian packages no BM25
extension, so a chunk scores BM25's ingredients computed in SQL: each query term's ``ts_rank``
(the same field weights as the SQLite path) weighted by the term's inverse document frequency.

The password comes from ``store.catalog_password`` (an environment variable) or a file, never
from a log line: :meth:`PostgresDatabase.describe` and every error name the server without it.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from strongroom.server.errors import (
    InvalidArgument,
    StoreBusy,
    StoreError,
    StoreFull,
    StoreUnavailable,
)
from strongroom.server.store.database import Connection, Dialect, KeywordIndex, Schema
from strongroom.server.store.sqlite import DEFAULT_BUSY_TIMEOUT_S, too_new

_BUSY = "the index is busy (another replica is writing to it); try again in a moment"
_FULL = "the catalog database's disk is full; free some space on its server, then try again"
_UNREACHABLE = (
    "the catalog database cannot be used ({name}); check store.catalog_url, the password and that the "
    "server is up and reachable"
)
_UNAVAILABLE = "the catalog database refused the request ({name}); check its server's log"
_RANGE = "a number is out of range: integers must fit in 64 bits"
_WORDS = re.compile(r"\w+", re.UNICODE)
_VERSIONS = "strongroom_schema"


@lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a lock name."""
    return int.from_bytes(hashlib.sha256(f"strongroom:{name}".encode()).digest()[:8], "big", signed=True)


class Row(tuple[Any, ...]):
    """A row that reads by position and by column name, like :class:`sqlite3.Row`."""

    _names: dict[str, int]

    def __new__(cls, values: Sequence[Any], names: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        return super().__getitem__(self._names[key] if isinstance(key, str) else key)

    def keys(self) -> list[str]:
        return list(self._names)


def _rows(cursor: Any) -> Any:
    names = {d.name: i for i, d in enumerate(cursor.description or ())}
    return lambda values: Row(values, names)


class _Connection:
    """A psycopg connection that takes ``?`` placeholders and raises StoreErrors."""

    def __init__(self, conn: psycopg.Connection[Any], where: str) -> None:
        self._conn = conn
        self._where = where

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        with translated(self._where):
            cursor = self._conn.cursor(row_factory=_rows)
            if parameters:
                cursor.execute(_placeholders(sql), list(parameters))
            else:  # no placeholders to convert; several statements may run at once
                cursor.execute(sql)
            return _Rows(cursor, self._where)

    def executemany(self, sql: str, parameters: Sequence[Sequence[Any]], /) -> None:
        if not parameters:
            return
        with translated(self._where), self._conn.cursor() as cursor:
            cursor.executemany(_placeholders(sql), [list(p) for p in parameters])


class _Rows:
    def __init__(self, cursor: psycopg.Cursor[Any], where: str) -> None:
        self._cursor = cursor
        self._where = where

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        with translated(self._where):
            return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        with translated(self._where):
            return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


@contextmanager
def translated(where: str) -> Iterator[None]:
    """Raise database faults as StoreErrors; programming errors stay what they are."""
    try:
        yield
    except StoreError:
        raise
    except (pg_errors.DiskFull, pg_errors.OutOfMemory) as exc:
        raise StoreFull(_FULL, f"{where}: {type(exc).__name__}") from exc
    except (pg_errors.LockNotAvailable, pg_errors.QueryCanceled, pg_errors.DeadlockDetected) as exc:
        raise StoreBusy(_BUSY, f"{where}: {type(exc).__name__}") from exc
    except (pg_errors.NumericValueOutOfRange, OverflowError) as exc:
        raise InvalidArgument(_RANGE) from exc
    except PoolTimeout as exc:
        raise StoreUnavailable(_UNREACHABLE.format(name="no connection within the timeout"), where) from exc
    except psycopg.OperationalError as exc:
        raise StoreUnavailable(_UNREACHABLE.format(name=type(exc).__name__), f"{where}: {exc}") from exc
    except (psycopg.ProgrammingError, psycopg.InterfaceError):
        raise
    except psycopg.Error as exc:
        raise StoreUnavailable(_UNAVAILABLE.format(name=type(exc).__name__), f"{where}: {exc}") from exc


class TextSearchIndex:
    """Chunks in a ``tsvector`` column (title A, headings B, body C), ranked like BM25.

    Text is split into words the way the query is (``os.path.join`` is three words, as in the
    SQLite path) before PostgreSQL's parser sees it, so both backends match the same chunks.

    ``ts_rank`` alone knows nothing of how rare a term is: a chunk with one common word of the
    query ranked with one that has its rarest. So a chunk's score is, as in BM25, a sum over the
    query's terms (words, or phrases) it contains of ``idf(term) * ts_rank(chunk, term)``, with
    ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` over all ``N`` indexed chunks and the ``df``
    that contain the term, counted in the same statement (GIN index lookups). ``ts_rank`` without
    length normalisation (flag 0) and with IDF was chosen on the tune half of
    ``benchmarks/pg_keyword.py``; ``benchmarks/RESULTS.md`` has the figures.
    """

    config = "english"
    weights = "{0.1, 0.5, 0.75, 1.0}"  # D, C (body), B (headings), A (title): 2 : 1.5 : 1 as BM25's
    normalization = 0  # ts_rank's length normalisation flags: none (chunks are of bounded length)

    def add(self, db: Connection, rows: Sequence[tuple[str, str, str, str]]) -> None:
        vector = " || ".join(f"setweight(to_tsvector('{self.config}', ?), '{w}')" for w in ("A", "B", "C"))
        db.executemany(
            f"INSERT INTO chunks_fts(chunk_id, tsv) VALUES (?, {vector})",
            [(cid, _words(title), _words(headings), _words(body)) for cid, title, headings, body in rows],
        )

    def remove(self, db: Connection, chunk_ids: Sequence[str]) -> None:
        db.executemany("DELETE FROM chunks_fts WHERE chunk_id=?", [(i,) for i in chunk_ids])

    def count(self, db: Connection, word: str) -> int:
        words = _words(word)
        if not words:
            return 0
        row = db.execute(
            f"SELECT count(*) AS n FROM chunks_fts WHERE tsv @@ websearch_to_tsquery('{self.config}', ?)",
            [words],
        ).fetchone()
        return int(row["n"])

    def search(
        self,
        db: Connection,
        words: Sequence[str],
        phrases: Sequence[str],
        n: int,
        where: tuple[str, list[Any]],
    ) -> list[tuple[str, float]]:
        terms = [f'"{t}"' if " " in t else t for t in (_words(t) for t in (phrases or words)) if t]
        if not terms:
            return []
        clause, params = where
        # The join to the documents is for the filter only: a search without one does without it.
        joined = (
            " JOIN chunks c ON c.id = f.chunk_id JOIN documents d ON d.id = c.document_id" if clause else ""
        )
        each = ", ".join(f"(websearch_to_tsquery('{self.config}', ?))" for _ in terms)
        rank = f"ts_rank('{self.weights}', m.tsv, t.q, {self.normalization})"
        rows = db.execute(
            f"WITH terms(q) AS (VALUES {each}),"
            # Materialised, so each is computed once (not once per term, or per chunk).
            " total AS MATERIALIZED (SELECT count(*) AS n FROM chunks_fts),"
            " t AS MATERIALIZED (SELECT terms.q, ln(1 + (total.n - df.n + 0.5) / (df.n + 0.5))::float8 AS idf"
            " FROM terms, total, LATERAL (SELECT count(*) AS n FROM chunks_fts x WHERE x.tsv @@ terms.q) df"
            " WHERE numnode(terms.q) > 0),"
            " m AS (SELECT f.chunk_id, f.tsv"
            f" FROM websearch_to_tsquery('{self.config}', ?) q, chunks_fts f{joined}"
            f" WHERE f.tsv @@ q {'AND ' + clause if clause else ''})"
            f" SELECT m.chunk_id AS id, (SELECT sum(t.idf * {rank}) FILTER (WHERE m.tsv @@ t.q) FROM t) AS score"
            " FROM m ORDER BY score DESC, m.chunk_id LIMIT ?",
            [*terms, " OR ".join(terms), *params, n],
        )
        return [(r["id"], float(r["score"])) for r in rows]


def _words(text: str) -> str:
    return " ".join(_WORDS.findall(text))


class PostgresDatabase:
    """A PostgreSQL database reached through a small connection pool."""

    dialect: Dialect = "postgresql"

    def __init__(
        self,
        url: str,
        password: str | None = None,
        busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S,
        pool_size: int = 8,
        connect_timeout_s: float = 10.0,
    ) -> None:
        params = conninfo_to_dict(url)
        secret = params.pop("password", None)
        if password is not None:
            secret = password
        self._where = "postgresql://{user}@{host}:{port}/{dbname}".format(
            user=params.get("user", ""),
            host=params.get("host", "localhost"),
            port=params.get("port", 5432),
            dbname=params.get("dbname", ""),
        )
        self.busy_timeout_s = busy_timeout_s
        self.keywords: KeywordIndex = TextSearchIndex()
        kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": max(1, round(connect_timeout_s))}
        if secret is not None:
            kwargs["password"] = secret
        conninfo = make_conninfo("", **{k: v for k, v in params.items() if v is not None})
        self._first_connection(conninfo, kwargs)
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            conninfo,
            kwargs=kwargs,
            min_size=1,
            max_size=pool_size,
            open=False,
            configure=self._configure,
            timeout=connect_timeout_s,
            name="strongroom-catalog",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreUnavailable(
                _UNREACHABLE.format(name=f"no connection within {connect_timeout_s:g} s"), self._where
            ) from exc

    def _first_connection(self, conninfo: str, kwargs: dict[str, Any]) -> None:
        """Connect once before the pool does, so a wrong address or password fails at once with
        libpq's own reason (which never holds the password), not after the pool's retries."""
        try:
            psycopg.connect(conninfo, **kwargs).close()
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise StoreUnavailable(_UNREACHABLE.format(name=reason), self._where) from exc

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        # A write waits this long for another replica's lock, then fails as "busy".
        conn.execute(f"SET lock_timeout = '{int(self.busy_timeout_s * 1000)}ms'")

    def describe(self) -> str:
        return self._where

    def migrate(self, schema: Schema) -> None:
        with self.tx("migrate") as db:
            db.execute(
                f"CREATE TABLE IF NOT EXISTS {_VERSIONS} (component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            row = db.execute(
                f"SELECT version FROM {_VERSIONS} WHERE component=?", (schema.component,)
            ).fetchone()
            found, target = (0 if row is None else int(row[0])), schema.version(self.dialect)
            if found > target:
                raise too_new(schema, found, self.dialect, self._where)
            for migration in schema.migrations[self.dialect][found:]:
                if callable(migration):
                    migration(db)
                else:
                    db.execute(migration)
            if found != target:
                db.execute(
                    f"INSERT INTO {_VERSIONS}(component, version) VALUES (?, ?)"
                    " ON CONFLICT(component) DO UPDATE SET version=excluded.version",
                    (schema.component, target),
                )

    @contextmanager
    def read(self) -> Iterator[_Connection]:
        with translated(self._where), self._pool.connection() as conn:
            yield _Connection(conn, self._where)

    @contextmanager
    def tx(self, lock: str) -> Iterator[_Connection]:
        with translated(self._where), self._pool.connection() as conn, conn.transaction():
            db = _Connection(conn, self._where)
            db.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(lock),))
            yield db

    @contextmanager
    def snapshot(self) -> Iterator[_Connection]:
        with translated(self._where), self._pool.connection() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield _Connection(conn, self._where)

    @contextmanager
    def exclusive(self, name: str, wait_s: float = 0.0) -> Iterator[bool]:
        """A session advisory lock on a connection kept for the block (released if it drops)."""
        key = _lock_key(name)
        deadline = time.monotonic() + wait_s
        with translated(self._where), self._pool.connection() as conn:
            while not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:  # type: ignore[index]
                if time.monotonic() >= deadline:
                    yield False
                    return
                time.sleep(0.2)
            try:
                yield True
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (key,))

    @staticmethod
    def json_in(column: str, key: str, count: int) -> str:
        return f"({column})::jsonb -> '{key}' IN ({','.join(['?::jsonb'] * count)})"

    @staticmethod
    def json_value(value: Any) -> Any:
        return json.dumps(value)

    @staticmethod
    def json_array_has(column: str, field: str) -> str:
        return f"EXISTS (SELECT 1 FROM jsonb_array_elements(({column})::jsonb) e WHERE e ->> '{field}' = ?)"

    def close(self) -> None:
        self._pool.close()
