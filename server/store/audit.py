"""The audit log: append-only, hash-chained records of every call, kept in the catalog database.

Each record's hash covers its content and the previous record's hash, so an edited, removed
or reordered record breaks the chain from that point on (``verify``). The head (last seq and
hash) is kept in the same transaction as the records and only ever moves forward, so records cut
from the end are detected too, and a crash never leaves the two out of step. An :class:`Anchor`
(a head copied elsewhere) proves later that the log was extended, not rewritten. Records hold
hashes and ids, never arguments or passage text.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strongroom.server.store.database import Connection, Database, Schema
from strongroom.server.store.sqlite import DEFAULT_BUSY_TIMEOUT_S, SqliteDatabase

GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    principal TEXT NOT NULL,
    action TEXT NOT NULL,
    args_hash TEXT NOT NULL,
    outcome TEXT NOT NULL,
    chunk_ids TEXT NOT NULL,
    document_ids TEXT NOT NULL,
    events TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_by_principal ON audit(principal, seq);
CREATE TABLE IF NOT EXISTS audit_documents (
    document_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (document_id, seq)
);
CREATE TABLE IF NOT EXISTS audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL
);
"""
_POSTGRES_SCHEMA = _SCHEMA.replace("IF NOT EXISTS ", "").replace("seq INTEGER", "seq BIGINT")
# A new log starts with its head at the genesis, so a log emptied later (records and head
# deleted) is told apart from one never written. A log with records but no head keeps no head.
_GENESIS_HEAD = (
    f"INSERT INTO audit_head(id, seq, hash) SELECT 1, 0, '{GENESIS}'"
    " WHERE NOT EXISTS (SELECT 1 FROM audit_head) AND NOT EXISTS (SELECT 1 FROM audit)"
)
AUDIT_SCHEMA = Schema(
    "audit", {"sqlite": [_SCHEMA, _GENESIS_HEAD], "postgresql": [_POSTGRES_SCHEMA, _GENESIS_HEAD]}
)
_ANCHOR = re.compile(r"(\d+):([0-9a-f]{64})")
MISSING_HEAD = (
    "the audit head is missing, so records may have been cut from the end: check the log against "
    "the last head you stored elsewhere (`strongroom audit verify --head SEQ:HASH`), then accept "
    "it with `strongroom audit reanchor`"
)


@dataclass(frozen=True)
class Anchor:
    """A point of the chain, written ``SEQ:HASH``; kept outside the catalog, it proves later that
    the log up to it is unchanged."""

    seq: int
    hash: str

    def __str__(self) -> str:
        return f"{self.seq}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Anchor:
        match = _ANCHOR.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"{text!r} is not an audit head: write SEQ:HASH as `strongroom audit head` prints it"
            )
        return cls(int(match[1]), match[2])


GENESIS_ANCHOR = Anchor(0, GENESIS)


@dataclass(frozen=True)
class GuardEvent:
    """Something the guard noticed: a refusal, a threshold crossed, a canary served."""

    kind: str
    severity: str  # "info" | "warning" | "high"
    detail: str


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    ts: str
    principal: str
    action: str
    args_hash: str
    outcome: str
    chunk_ids: list[str] = field(default_factory=list)
    document_ids: list[str] = field(default_factory=list)
    events: list[dict[str, str]] = field(default_factory=list)
    prev_hash: str = GENESIS
    hash: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    head: str
    problem: str | None = None

    @property
    def anchor(self) -> Anchor:
        """The head of a verified log, to be kept elsewhere."""
        return Anchor(self.records, self.head)


def _digest(prev_hash: str, body: dict[str, Any]) -> str:
    blob = json.dumps([prev_hash, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _body(r: AuditRecord) -> dict[str, Any]:
    body = r.to_json()
    del body["prev_hash"], body["hash"]
    return body


class AuditLog:
    """The log and its head, in a :class:`Database` (a path: an SQLite file). Appends hold the
    log's lock, so replicas sharing a database extend one chain and never fork it."""

    def __init__(self, database: Database | Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self.database = SqliteDatabase(database, busy_timeout_s) if isinstance(database, Path) else database
        self.database.migrate(AUDIT_SCHEMA)
        if isinstance(database, Path):
            self._adopt_legacy_head(database.with_name("audit.head"))
        elif isinstance(self.database, SqliteDatabase):
            self._adopt_legacy_head(self.database.path.with_name("audit.head"))

    def append(
        self,
        principal: str,
        action: str,
        args_hash: str,
        outcome: str,
        chunk_ids: Sequence[str] = (),
        document_ids: Sequence[str] = (),
        events: Sequence[GuardEvent] = (),
    ) -> AuditRecord:
        with self.database.tx("audit") as db:
            head, last = _head(db), _last(db)
            # The chain goes on from its head, so records cut from the end leave a gap. Without a
            # head (deleted) it goes on from the last record and the head stays missing for verify
            # (every log has one from its creation; only `reanchor` puts back a deleted one).
            base = max(
                (a for a in (head, last) if a is not None), key=lambda a: a.seq, default=GENESIS_ANCHOR
            )
            seq, prev = base.seq + 1, base.hash
            draft = AuditRecord(
                seq=seq,
                ts=datetime.now(UTC).isoformat(timespec="milliseconds"),
                principal=principal,
                action=action,
                args_hash=args_hash,
                outcome=outcome,
                chunk_ids=list(chunk_ids),
                document_ids=sorted(set(document_ids)),
                events=[asdict(e) for e in events],
                prev_hash=prev,
            )
            record = AuditRecord(**{**draft.to_json(), "hash": _digest(prev, _body(draft))})
            db.execute(
                "INSERT INTO audit(seq, ts, principal, action, args_hash, outcome, chunk_ids, document_ids,"
                " events, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    record.seq,
                    record.ts,
                    record.principal,
                    record.action,
                    record.args_hash,
                    record.outcome,
                    json.dumps(record.chunk_ids),
                    json.dumps(record.document_ids),
                    json.dumps(record.events),
                    record.prev_hash,
                    record.hash,
                ),
            )
            db.executemany(
                "INSERT INTO audit_documents(document_id, seq) VALUES (?, ?) ON CONFLICT DO NOTHING",
                [(d, seq) for d in record.document_ids],
            )
            if head is not None:
                _set_head(db, Anchor(record.seq, record.hash))
        return record

    def reanchor(self) -> AuditRecord:
        """Accept the log as it ends now (after a missing head was investigated); audited."""
        with self.database.tx("audit") as db:
            previous, last = _head(db), _last(db)
            _set_head(db, last or GENESIS_ANCHOR)
        return self.append("operator", "audit.reanchor", str(previous or "missing"), "ok")

    def _adopt_legacy_head(self, legacy: Path) -> None:
        """Move the head file of earlier versions into the catalog if it matches the log's end
        (else it is left where it is, for the operator, and `verify` reports the missing head)."""
        try:
            seq, digest = legacy.read_text().split()
            head = Anchor(int(seq), digest)
        except (OSError, ValueError):
            return
        with self.database.tx("audit") as db:
            adopt = _head(db) is None and _last(db) == head
            if adopt:
                _set_head(db, head)
        if adopt:
            legacy.unlink(missing_ok=True)

    def query(
        self,
        principal: str | None = None,
        document_id: str | None = None,
        severity: str | None = None,
        limit: int | None = 50,
    ) -> list[AuditRecord]:
        """Most recent first; ``document_id`` answers "who has seen document X?"."""
        sql = ["SELECT a.* FROM audit a"]
        params: list[Any] = []
        where: list[str] = []
        if document_id is not None:
            sql.append("JOIN audit_documents d ON d.seq = a.seq")
            where.append("d.document_id = ?")
            params.append(document_id)
        if principal is not None:
            where.append("a.principal = ?")
            params.append(principal)
        if severity is not None:
            where.append(self.database.json_array_has("a.events", "severity"))
            params.append(severity)
        if where:
            sql.append("WHERE " + " AND ".join(where))
        sql.append("ORDER BY a.seq DESC")
        if limit is not None:
            sql.append("LIMIT ?")
            params.append(limit)
        with self.database.read() as db:
            return [_record(r) for r in db.execute(" ".join(sql), params)]

    def all(self) -> list[AuditRecord]:
        with self.database.read() as db:
            return [_record(r) for r in db.execute("SELECT * FROM audit ORDER BY seq")]

    def verify(self, anchor: Anchor | None = None) -> VerifyResult:
        """Walk the chain: any edited, removed, reordered or cut record is reported, and so is a
        log that no longer holds ``anchor`` (a head kept elsewhere) at its place."""
        prev = GENESIS
        count = 0
        anchored = GENESIS if anchor is not None and anchor.seq == 0 else None
        with self.database.snapshot() as db:
            for row in db.execute("SELECT * FROM audit ORDER BY seq"):
                record = _record(row)
                count += 1
                broken = _broken_link(record, count, prev)
                if broken is not None:
                    return VerifyResult(False, count, prev, broken)
                prev = record.hash
                if anchor is not None and record.seq == anchor.seq:
                    anchored = record.hash
            head = _head(db)
        problem = _broken_end(head, count, prev, anchor, anchored)
        return VerifyResult(problem is None, count, prev, problem)


def _broken_link(record: AuditRecord, count: int, prev: str) -> str | None:
    """What is wrong with the ``count``-th record, which must follow the record hashed ``prev``."""
    if record.seq != count:
        return f"record {count} is missing (next is {record.seq})"
    if record.prev_hash != prev:
        return f"record {record.seq} does not follow record {record.seq - 1}"
    if _digest(prev, _body(record)) != record.hash:
        return f"record {record.seq} was altered"
    return None


def _broken_end(
    head: Anchor | None, count: int, last: str, anchor: Anchor | None, anchored: str | None
) -> str | None:
    """What is wrong with how the chain ends: against its head, and against ``anchor``."""
    if head is None:
        return MISSING_HEAD
    if head.seq != count:
        return f"the log ends at record {count} but its head says {head.seq}"
    if head.hash != last:
        return f"record {count} is not the one its head names"
    if anchor is not None and anchored is None:
        return f"the log ends at record {count}, before the anchored record {anchor.seq}"
    if anchor is not None and anchored != anchor.hash:
        return f"record {anchor.seq} is not the anchored one: the log was rewritten"
    return None


def _head(db: Connection) -> Anchor | None:
    row = db.execute("SELECT seq, hash FROM audit_head WHERE id = 1").fetchone()
    return None if row is None else Anchor(row["seq"], row["hash"])


def _last(db: Connection) -> Anchor | None:
    row = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else Anchor(row["seq"], row["hash"])


def _set_head(db: Connection, head: Anchor) -> None:
    db.execute(
        "INSERT INTO audit_head(id, seq, hash) VALUES (1, ?, ?)"
        " ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash",
        (head.seq, head.hash),
    )


def _record(row: Any) -> AuditRecord:
    return AuditRecord(
        seq=row["seq"],
        ts=row["ts"],
        principal=row["principal"],
        action=row["action"],
        args_hash=row["args_hash"],
        outcome=row["outcome"],
        chunk_ids=json.loads(row["chunk_ids"]),
        document_ids=json.loads(row["document_ids"]),
        events=json.loads(row["events"]),
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )
