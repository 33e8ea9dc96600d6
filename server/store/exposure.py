"""What each principal has been shown: calls, distinct passages and characters, novelty.

Persisted in the deployment's database so limits survive restarts and hold across server
replicas that share it: a call's judgement and what it records happen in one transaction
(:meth:`ExposureLedger.settling`) that holds the ledger's lock, so two replicas can never both
admit calls that together exceed a budget.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from strongroom.server.models import Served
from strongroom.server.store.database import Connection, Database, Schema
from strongroom.server.store.sqlite import DEFAULT_BUSY_TIMEOUT_S, SqliteDatabase, add_missing_columns

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS guard_calls (principal TEXT NOT NULL, ts REAL NOT NULL);
CREATE INDEX IF NOT EXISTS guard_calls_by_principal ON guard_calls(principal, ts);
CREATE TABLE IF NOT EXISTS guard_exposures (
    principal TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    source TEXT NOT NULL,
    chars INTEGER NOT NULL,
    first_ts REAL NOT NULL,
    last_ts REAL NOT NULL,
    PRIMARY KEY (principal, chunk_id)
);
CREATE INDEX IF NOT EXISTS guard_exposures_by_time ON guard_exposures(last_ts);
CREATE TABLE IF NOT EXISTS guard_novelty (
    principal TEXT NOT NULL, ts REAL NOT NULL, returned INTEGER NOT NULL, new INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS guard_novelty_by_principal ON guard_novelty(principal, ts);
CREATE TABLE IF NOT EXISTS guard_documents (
    principal TEXT NOT NULL, document_id TEXT NOT NULL, first_ts REAL NOT NULL,
    PRIMARY KEY (principal, document_id)
);
CREATE TABLE IF NOT EXISTS guard_grants (
    principal TEXT NOT NULL, chunks INTEGER NOT NULL, chars INTEGER NOT NULL, until_ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS guard_principals (
    principal TEXT PRIMARY KEY, first_ts REAL NOT NULL, tat REAL NOT NULL, flagged_ts REAL
);
CREATE TABLE IF NOT EXISTS guard_collective (
    chunk_id TEXT PRIMARY KEY, ts REAL NOT NULL, pooled INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS guard_collective_by_age ON guard_collective(pooled, ts);
CREATE TABLE IF NOT EXISTS guard_counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def _breadth_in_documents(db: Any) -> None:
    # Ledgers made before spread was measured in documents.
    add_missing_columns(
        db,
        "guard_novelty",
        {"documents": "INTEGER NOT NULL DEFAULT 0", "new_documents": "INTEGER NOT NULL DEFAULT 0"},
    )


# Timestamps are seconds since the epoch: DOUBLE PRECISION (PostgreSQL's REAL is 4 bytes).
_POSTGRES_SCHEMA = (
    _SCHEMA.replace("CREATE TABLE IF NOT EXISTS", "CREATE TABLE")
    .replace("CREATE INDEX IF NOT EXISTS", "CREATE INDEX")
    .replace(" REAL", " DOUBLE PRECISION")
    .replace(
        "returned INTEGER NOT NULL, new INTEGER NOT NULL",
        "returned INTEGER NOT NULL, new INTEGER NOT NULL,"
        " documents INTEGER NOT NULL DEFAULT 0, new_documents INTEGER NOT NULL DEFAULT 0",
    )
    .replace("chars INTEGER", "chars BIGINT")
    .replace("value INTEGER", "value BIGINT")
)

LEDGER_SCHEMA = Schema(
    "exposure", {"sqlite": [_SCHEMA, _breadth_in_documents], "postgresql": [_POSTGRES_SCHEMA]}
)


@dataclass(frozen=True)
class Exposure:
    """A principal's totals over the window."""

    chunks: int
    chars: int
    per_source: dict[str, int]
    recent_novelty: list[float]
    extra_chunks: int
    extra_chars: int
    recent_new: list[int] = field(default_factory=list)  # new passages of the same recent calls
    recent_documents: list[int] = field(default_factory=list)  # documents they returned
    recent_new_documents: list[int] = field(default_factory=list)  # of those, new to the principal
    oldest_ts: float | None = None  # the earliest passage still in the window
    first_ts: float | None = None  # when the principal was first seen (None: never)
    flagged_ts: float | None = None  # its last crawler or budget refusal

    @property
    def recent_document_novelty(self) -> list[float]:
        """Per recent call, the share of the documents it returned that were new to the principal."""
        pairs = zip(self.recent_new_documents, self.recent_documents, strict=True)
        return [new / documents if documents else 0.0 for new, documents in pairs]


@dataclass(frozen=True)
class Collective:
    """The pool of passages new to everyone brought into the window by principals not yet trusted."""

    pooled: int  # passages in the pool
    seen: int  # distinct passages anyone was shown in the window
    unseen: set[str]  # of the ids asked about, those nobody was shown in the window
    oldest_ts: float | None  # the pool's earliest passage


class LedgerView:
    """The ledger as one connection sees it: outside a transaction (reads) or inside the
    settling transaction (reads, then the writes that follow from them)."""

    def __init__(self, db: Connection, now: Callable[[], float]) -> None:
        self._db = db
        self._now = now

    def exposure(self, principal: str, since: float, novelty_calls: int) -> Exposure:
        db = self._db
        rows = db.execute(
            "SELECT source, COUNT(*), COALESCE(SUM(chars), 0), MIN(last_ts) FROM guard_exposures"
            " WHERE principal=? AND last_ts>? GROUP BY source",
            (principal, since),
        ).fetchall()
        per_source = {r[0]: int(r[1]) for r in rows}
        chunks, chars = sum(per_source.values()), sum(int(r[2]) for r in rows)
        oldest = min((float(r[3]) for r in rows), default=None)
        recent = db.execute(
            "SELECT returned, new, documents, new_documents FROM guard_novelty"
            " WHERE principal=? AND ts>? ORDER BY ts DESC LIMIT ?",
            (principal, since, novelty_calls),
        ).fetchall()
        standing = db.execute(
            "SELECT first_ts, flagged_ts FROM guard_principals WHERE principal=?", (principal,)
        ).fetchone()
        grant = db.execute(
            "SELECT COALESCE(SUM(chunks), 0), COALESCE(SUM(chars), 0) FROM guard_grants"
            " WHERE principal=? AND until_ts>?",
            (principal, self._now()),
        ).fetchone()
        return Exposure(
            int(chunks),
            int(chars),
            per_source,
            [r[1] / r[0] for r in recent],
            int(grant[0]),
            int(grant[1]),
            recent_new=[int(r[1]) for r in recent],
            recent_documents=[int(r[2]) for r in recent],
            recent_new_documents=[int(r[3]) for r in recent],
            oldest_ts=oldest,
            first_ts=None if standing is None else standing[0],
            flagged_ts=None if standing is None else standing[1],
        )

    def seen(self, principal: str, chunk_ids: Sequence[str], since: float) -> tuple[set[str], dict[str, int]]:
        """Of ``chunk_ids``: those never shown to the principal, and the characters of each shown
        to it in the window."""
        if not chunk_ids:
            return set(), {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._db.execute(
            f"SELECT chunk_id, chars, last_ts FROM guard_exposures WHERE principal=? AND chunk_id IN ({marks})",
            [principal, *chunk_ids],
        )
        seen = {r[0]: (int(r[1]), float(r[2])) for r in rows}
        never = {c for c in chunk_ids if c not in seen}
        return never, {c: chars for c, (chars, ts) in seen.items() if ts > since}

    def unseen(self, principal: str, chunk_ids: Sequence[str], since: float) -> tuple[set[str], set[str]]:
        """Of ``chunk_ids``: those never shown to the principal, and those not shown in the window."""
        never, shown = self.seen(principal, chunk_ids, since)
        return never, {c for c in chunk_ids if c not in shown}

    def new_documents(self, principal: str, document_ids: Sequence[str]) -> set[str]:
        """Of ``document_ids``: those the principal was never shown a passage of."""
        if not document_ids:
            return set()
        marks = ",".join("?" * len(document_ids))
        rows = self._db.execute(
            f"SELECT document_id FROM guard_documents WHERE principal=? AND document_id IN ({marks})",
            [principal, *document_ids],
        )
        return set(document_ids) - {r[0] for r in rows}

    def collective(self, chunk_ids: Sequence[str], since: float) -> Collective:
        """The pool and the collective window as of the last write, and which of ``chunk_ids``
        nobody was shown in the window. Counters, not a scan: constant time at any ledger size."""
        db = self._db
        counts = {r[0]: r[1] for r in db.execute("SELECT name, value FROM guard_counters")}
        known: set[str] = set()
        if chunk_ids:
            marks = ",".join("?" * len(chunk_ids))
            known = {
                r[0]
                for r in db.execute(
                    f"SELECT chunk_id FROM guard_collective WHERE ts>? AND chunk_id IN ({marks})",
                    [since, *chunk_ids],
                )
            }
        oldest = db.execute("SELECT MIN(ts) FROM guard_collective WHERE pooled=1").fetchone()[0]
        return Collective(
            int(counts.get("pooled", 0)), int(counts.get("seen", 0)), set(chunk_ids) - known, oldest
        )

    def collective_chunks(self, since: float) -> int:
        """Distinct passages anyone was shown in the window (as of the last write)."""
        return self.collective([], since).seen

    def forget(self, principal: str) -> None:
        """Drop everything the ledger holds about the principal."""
        for table in (
            "guard_exposures",
            "guard_novelty",
            "guard_documents",
            "guard_calls",
            "guard_principals",
        ):
            self._db.execute(f"DELETE FROM {table} WHERE principal=?", (principal,))

    def flag(self, principal: str, ts: float) -> None:
        """Note a crawler or budget refusal: the principal's clean history starts again."""
        self._db.execute(
            "INSERT INTO guard_principals(principal, first_ts, tat, flagged_ts) VALUES (?,?,?,?)"
            " ON CONFLICT(principal) DO UPDATE SET flagged_ts=excluded.flagged_ts",
            (principal, ts, ts, ts),
        )

    def record_served(
        self,
        principal: str,
        served: Sequence[Served],
        ts: float,
        new: int,
        shown: Mapping[str, int],
        *,
        pooled: bool = True,
        collective_since: float | None = None,
        new_documents: int = 0,
    ) -> None:
        """Remember what was shown: ``shown`` is each passage's characters shown in the window now;
        ``new`` of the passages had never been shown to the principal. Passages nobody was shown
        since ``collective_since`` enter the collective window, into the pool when ``pooled`` (the
        principal is not trusted yet); passages that left the window are dropped from it first.
        ``new_documents`` of the passages' documents were new to the principal."""
        db = self._db
        sources = {s.chunk_id: s.source for s in served}
        since = ts - 86400 if collective_since is None else collective_since
        _expire_collective(db, since)
        known: set[str] = set()
        if sources:
            marks = ",".join("?" * len(sources))
            known = {
                r[0]
                for r in db.execute(
                    f"SELECT chunk_id FROM guard_collective WHERE chunk_id IN ({marks})", list(sources)
                )
            }
        fresh = [c for c in sources if c not in known]
        db.executemany(
            "INSERT INTO guard_collective(chunk_id, ts, pooled) VALUES (?,?,?)"
            " ON CONFLICT(chunk_id) DO UPDATE SET ts=excluded.ts",
            [(c, ts, int(pooled and c in fresh)) for c in sources],
        )
        _count(db, "seen", len(fresh))
        _count(db, "pooled", len(fresh) if pooled else 0)
        db.executemany(
            "INSERT INTO guard_exposures(principal, chunk_id, source, chars, first_ts, last_ts)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT(principal, chunk_id)"
            " DO UPDATE SET last_ts=excluded.last_ts, chars=excluded.chars",
            [(principal, c, sources[c], shown.get(c, 0), ts, ts) for c in sources],
        )
        documents = {s.document_id for s in served}
        db.executemany(
            "INSERT INTO guard_documents(principal, document_id, first_ts) VALUES (?,?,?)"
            " ON CONFLICT(principal, document_id) DO NOTHING",
            [(principal, d, ts) for d in documents],
        )
        if served:
            db.execute(
                "INSERT INTO guard_novelty(principal, ts, returned, new, documents, new_documents)"
                " VALUES (?,?,?,?,?,?)",
                (principal, ts, len({s.chunk_id for s in served}), new, len(documents), new_documents),
            )


class ExposureLedger:
    """The ledger's tables in a :class:`Database` (a path: an SQLite file)."""

    def __init__(self, database: Database | Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.database = SqliteDatabase(database, busy_timeout_s) if isinstance(database, Path) else database
        self.database.migrate(LEDGER_SCHEMA)

    @staticmethod
    def now() -> float:
        return time.time()

    @contextmanager
    def _view(self) -> Iterator[LedgerView]:
        with self.database.read() as db:
            yield LedgerView(db, self.now)

    @contextmanager
    def settling(self) -> Iterator[LedgerView]:
        """One transaction holding the ledger's lock: what is read in it stays true until what
        follows from it is written (a budget judged, then the call recorded)."""
        with self.database.tx("exposure") as db:
            yield LedgerView(db, self.now)

    # -- rate --------------------------------------------------------------------------------

    def pace(self, principal: str, now: float, decide: Callable[[float | None], tuple[float | None, T]]) -> T:
        """Read-modify-write of the principal's rate state (its next free slot) in one transaction,
        so processes sharing the ledger never lose a reservation: ``decide(tat)`` returns the new
        state (None: unchanged) and its answer. The first call also marks when it was first seen."""
        with self.database.tx(f"exposure.pace:{principal}") as db:
            row = db.execute("SELECT tat FROM guard_principals WHERE principal=?", (principal,)).fetchone()
            tat, answer = decide(None if row is None else float(row[0]))
            if tat is not None:
                db.execute(
                    "INSERT INTO guard_principals(principal, first_ts, tat) VALUES (?,?,?)"
                    " ON CONFLICT(principal) DO UPDATE SET tat=excluded.tat",
                    (principal, now, tat),
                )
        return answer

    def flag(self, principal: str, ts: float) -> None:
        """Note a crawler or budget refusal: the principal's clean history starts again."""
        with self.settling() as ledger:
            ledger.flag(principal, ts)

    # -- exposure (each read on its own; judge and record inside :meth:`settling`) ----------

    def exposure(self, principal: str, since: float, novelty_calls: int) -> Exposure:
        with self._view() as ledger:
            return ledger.exposure(principal, since, novelty_calls)

    def seen(self, principal: str, chunk_ids: Sequence[str], since: float) -> tuple[set[str], dict[str, int]]:
        with self._view() as ledger:
            return ledger.seen(principal, chunk_ids, since)

    def unseen(self, principal: str, chunk_ids: Sequence[str], since: float) -> tuple[set[str], set[str]]:
        with self._view() as ledger:
            return ledger.unseen(principal, chunk_ids, since)

    def new_documents(self, principal: str, document_ids: Sequence[str]) -> set[str]:
        with self._view() as ledger:
            return ledger.new_documents(principal, document_ids)

    def collective(self, chunk_ids: Sequence[str], since: float) -> Collective:
        with self._view() as ledger:
            return ledger.collective(chunk_ids, since)

    def collective_chunks(self, since: float) -> int:
        with self._view() as ledger:
            return ledger.collective_chunks(since)

    def record_served(
        self,
        principal: str,
        served: Sequence[Served],
        ts: float,
        new: int,
        shown: Mapping[str, int],
        **options: Any,
    ) -> None:
        """:meth:`LedgerView.record_served` in a transaction of its own."""
        with self.settling() as ledger:
            ledger.record_served(principal, served, ts, new, shown, **options)

    # -- operators ---------------------------------------------------------------------------

    def reset(self, principal: str) -> None:
        """Forget what the principal has been shown (its window and novelty history)."""
        with self.settling() as ledger:
            db = ledger._db
            for table in (
                "guard_exposures",
                "guard_novelty",
                "guard_documents",
                "guard_calls",
                "guard_principals",
            ):
                db.execute(f"DELETE FROM {table} WHERE principal=?", (principal,))

    def grant(self, principal: str, chunks: int, chars: int, hours: float) -> None:
        """Lift the principal's budget by an allowance for a while."""
        with self.database.tx("exposure") as db:
            db.execute(
                "INSERT INTO guard_grants(principal, chunks, chars, until_ts) VALUES (?,?,?,?)",
                (principal, chunks, chars, self.now() + hours * 3600),
            )

    def principals(self) -> list[str]:
        with self.database.read() as db:
            rows = db.execute("SELECT DISTINCT principal FROM guard_exposures ORDER BY principal").fetchall()
        return [r[0] for r in rows]


def _count(db: Connection, name: str, delta: int) -> None:
    if delta:
        db.execute(
            "INSERT INTO guard_counters(name, value) VALUES (?, ?)"
            " ON CONFLICT(name) DO UPDATE SET value = guard_counters.value + excluded.value",
            (name, delta),
        )


def _expire_collective(db: Connection, since: float) -> None:
    """Drop the passages nobody was shown since ``since`` from the collective window and the pool."""
    for pooled in (0, 1):
        gone = db.execute("DELETE FROM guard_collective WHERE pooled=? AND ts<=?", (pooled, since)).rowcount
        _count(db, "seen", -gone)
        _count(db, "pooled", -gone if pooled else 0)
