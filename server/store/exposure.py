"""What each principal has been shown: calls, distinct passages and characters, novelty.

Persisted in the catalog file so limits survive restarts and hold across server replicas
that share it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from strongroom.server.store.sqlite import DEFAULT_BUSY_TIMEOUT_S, SqliteFile

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
CREATE TABLE IF NOT EXISTS guard_grants (
    principal TEXT NOT NULL, chunks INTEGER NOT NULL, chars INTEGER NOT NULL, until_ts REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Served:
    """One passage about to be returned: ``chars`` of its text are shown, of ``total_chars``."""

    chunk_id: str
    document_id: str
    source: str
    chars: int
    total_chars: int = 0  # the passage's length; 0: as ``chars``

    @property
    def size(self) -> int:
        return max(self.total_chars, self.chars)


@dataclass(frozen=True)
class Exposure:
    """A principal's totals over the window."""

    chunks: int
    chars: int
    per_source: dict[str, int]
    recent_novelty: list[float]
    extra_chunks: int
    extra_chars: int


class ExposureLedger:
    def __init__(self, path: Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self._file = SqliteFile(path, _SCHEMA, busy_timeout_s)

    @staticmethod
    def now() -> float:
        return time.time()

    # -- rate --------------------------------------------------------------------------------

    def calls_since(self, principal: str, since: float) -> list[float]:
        rows = self._file.db().execute(
            "SELECT ts FROM guard_calls WHERE principal=? AND ts>? ORDER BY ts", (principal, since)
        )
        return [r[0] for r in rows]

    def record_call(self, principal: str, ts: float) -> None:
        with self._file.tx() as db:
            db.execute("INSERT INTO guard_calls(principal, ts) VALUES (?, ?)", (principal, ts))
            db.execute("DELETE FROM guard_calls WHERE principal=? AND ts<?", (principal, ts - 3600))

    # -- exposure ----------------------------------------------------------------------------

    def exposure(self, principal: str, since: float, novelty_calls: int) -> Exposure:
        db = self._file.db()
        chunks, chars = db.execute(
            "SELECT COUNT(*), COALESCE(SUM(chars), 0) FROM guard_exposures WHERE principal=? AND last_ts>?",
            (principal, since),
        ).fetchone()
        per_source = {
            r[0]: r[1]
            for r in db.execute(
                "SELECT source, COUNT(*) FROM guard_exposures WHERE principal=? AND last_ts>? GROUP BY source",
                (principal, since),
            )
        }
        novelty = [
            r[1] / r[0]
            for r in db.execute(
                "SELECT returned, new FROM guard_novelty WHERE principal=? AND ts>? ORDER BY ts DESC LIMIT ?",
                (principal, since, novelty_calls),
            )
        ]
        grant = db.execute(
            "SELECT COALESCE(SUM(chunks), 0), COALESCE(SUM(chars), 0) FROM guard_grants"
            " WHERE principal=? AND until_ts>?",
            (principal, self.now()),
        ).fetchone()
        return Exposure(int(chunks), int(chars), per_source, novelty, int(grant[0]), int(grant[1]))

    def unseen(self, principal: str, chunk_ids: Sequence[str], since: float) -> tuple[set[str], set[str]]:
        """Of ``chunk_ids``: those never shown to the principal, and those not shown in the window."""
        never, shown = self.seen(principal, chunk_ids, since)
        return never, {c for c in chunk_ids if c not in shown}

    def seen(self, principal: str, chunk_ids: Sequence[str], since: float) -> tuple[set[str], dict[str, int]]:
        """Of ``chunk_ids``: those never shown to the principal, and the characters of each shown
        to it in the window."""
        if not chunk_ids:
            return set(), {}
        marks = ",".join("?" * len(chunk_ids))
        rows = self._file.db().execute(
            "SELECT chunk_id, chars, last_ts FROM guard_exposures"
            f" WHERE principal=? AND chunk_id IN ({marks})",
            [principal, *chunk_ids],
        )
        seen = {r[0]: (int(r[1]), float(r[2])) for r in rows}
        never = {c for c in chunk_ids if c not in seen}
        return never, {c: chars for c, (chars, ts) in seen.items() if ts > since}

    def collective_unseen(self, chunk_ids: Sequence[str], since: float) -> set[str]:
        """Of ``chunk_ids``: those no principal has been shown in the window."""
        if not chunk_ids:
            return set()
        marks = ",".join("?" * len(chunk_ids))
        rows = self._file.db().execute(
            f"SELECT DISTINCT chunk_id FROM guard_exposures WHERE last_ts>? AND chunk_id IN ({marks})",
            [since, *chunk_ids],
        )
        return set(chunk_ids) - {r[0] for r in rows}

    def collective_chunks(self, since: float) -> int:
        row = (
            self._file.db()
            .execute("SELECT COUNT(DISTINCT chunk_id) FROM guard_exposures WHERE last_ts>?", (since,))
            .fetchone()
        )
        return int(row[0])

    def record_served(
        self, principal: str, served: Sequence[Served], ts: float, new: int, shown: Mapping[str, int]
    ) -> None:
        """Remember what was shown: ``shown`` is each passage's characters shown in the window now;
        ``new`` of the passages had never been shown to the principal."""
        sources = {s.chunk_id: s.source for s in served}
        with self._file.tx() as db:
            db.executemany(
                "INSERT INTO guard_exposures(principal, chunk_id, source, chars, first_ts, last_ts)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT(principal, chunk_id)"
                " DO UPDATE SET last_ts=excluded.last_ts, chars=excluded.chars",
                [(principal, c, sources[c], shown.get(c, 0), ts, ts) for c in sources],
            )
            if served:
                db.execute(
                    "INSERT INTO guard_novelty(principal, ts, returned, new) VALUES (?,?,?,?)",
                    (principal, ts, len({s.chunk_id for s in served}), new),
                )

    # -- operators ---------------------------------------------------------------------------

    def reset(self, principal: str) -> None:
        """Forget what the principal has been shown (its window and novelty history)."""
        with self._file.tx() as db:
            db.execute("DELETE FROM guard_exposures WHERE principal=?", (principal,))
            db.execute("DELETE FROM guard_novelty WHERE principal=?", (principal,))
            db.execute("DELETE FROM guard_calls WHERE principal=?", (principal,))

    def grant(self, principal: str, chunks: int, chars: int, hours: float) -> None:
        """Lift the principal's budget by an allowance for a while."""
        with self._file.tx() as db:
            db.execute(
                "INSERT INTO guard_grants(principal, chunks, chars, until_ts) VALUES (?,?,?,?)",
                (principal, chunks, chars, self.now() + hours * 3600),
            )

    def principals(self) -> list[str]:
        rows = self._file.db().execute("SELECT DISTINCT principal FROM guard_exposures ORDER BY principal")
        return [r[0] for r in rows]
