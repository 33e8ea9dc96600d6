"""The audit log: append-only, hash-chained records of every call, kept in the catalog file.

Each record's hash covers its content and the previous record's hash, so an edited, removed
or reordered record breaks the chain from that point on (``verify``). Records hold hashes and
ids, never arguments or passage text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strongroom.server.store.sqlite import DEFAULT_BUSY_TIMEOUT_S, SqliteFile

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
"""


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


def _digest(prev_hash: str, body: dict[str, Any]) -> str:
    blob = json.dumps([prev_hash, body], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


def _body(r: AuditRecord) -> dict[str, Any]:
    body = r.to_json()
    del body["prev_hash"], body["hash"]
    return body


class AuditLog:
    """The log lives in the catalog file; its head (last seq and hash) is mirrored to a file
    beside it, so truncating the table is detected too."""

    def __init__(self, path: Path, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
        self._file = SqliteFile(path, _SCHEMA, busy_timeout_s)
        self._head = path.with_name("audit.head")

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
        with self._file.tx() as db:
            last = db.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (last["seq"] + 1, last["hash"]) if last else (1, GENESIS)
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
                "INSERT OR IGNORE INTO audit_documents(document_id, seq) VALUES (?, ?)",
                [(d, seq) for d in record.document_ids],
            )
            self._write_head(record)
        return record

    def _write_head(self, record: AuditRecord) -> None:
        tmp = self._head.with_suffix(".tmp")
        tmp.write_text(f"{record.seq} {record.hash}\n")
        tmp.replace(self._head)

    def _read_head(self) -> tuple[int, str] | None:
        try:
            seq, digest = self._head.read_text().split()
            return int(seq), digest
        except (OSError, ValueError):
            return None

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
            where.append(
                "EXISTS (SELECT 1 FROM json_each(a.events) e WHERE json_extract(e.value, '$.severity') = ?)"
            )
            params.append(severity)
        if where:
            sql.append("WHERE " + " AND ".join(where))
        sql.append("ORDER BY a.seq DESC")
        if limit is not None:
            sql.append("LIMIT ?")
            params.append(limit)
        return [_record(r) for r in self._file.db().execute(" ".join(sql), params)]

    def all(self) -> list[AuditRecord]:
        return [_record(r) for r in self._file.db().execute("SELECT * FROM audit ORDER BY seq")]

    def verify(self) -> VerifyResult:
        """Walk the chain: any edited, removed or reordered record is reported."""
        prev = GENESIS
        expected_seq = 1
        count = 0
        for row in self._file.db().execute("SELECT * FROM audit ORDER BY seq"):
            record = _record(row)
            count += 1
            if record.seq != expected_seq:
                return VerifyResult(
                    False, count, prev, f"record {expected_seq} is missing (next is {record.seq})"
                )
            if record.prev_hash != prev:
                return VerifyResult(
                    False, count, prev, f"record {record.seq} does not follow record {record.seq - 1}"
                )
            if _digest(prev, _body(record)) != record.hash:
                return VerifyResult(False, count, prev, f"record {record.seq} was altered")
            prev = record.hash
            expected_seq += 1
        head = self._read_head()
        if head is not None and (head[0] != count or head[1] != prev):
            return VerifyResult(
                False, count, prev, f"the log ends at record {count} but its head says {head[0]}"
            )
        return VerifyResult(True, count, prev)


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
