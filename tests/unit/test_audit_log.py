"""The audit chain detects edited, removed, reordered and truncated records, and a rewrite past an anchor."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from strongroom.server.store.audit import Anchor, AuditLog, GuardEvent


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    audit = AuditLog(tmp_path / "catalog.sqlite3")
    audit.append("alice", "search", "h1", "ok", ["handbook/a.md#x-0"], ["handbook/a.md"])
    audit.append(
        "bob", "read_document", "h2", "refused", [], [], [GuardEvent("budget_exceeded", "warning", "x")]
    )
    audit.append("alice", "search", "h3", "ok", ["handbook/b.md#y-1"], ["handbook/b.md"])
    audit.append(
        "mallory",
        "search",
        "h4",
        "ok",
        ["archive/c.md#z-0"],
        ["archive/c.md"],
        [GuardEvent("canary_served", "high", "canary")],
    )
    return audit


def sql(tmp_path: Path, statement: str) -> None:
    with sqlite3.connect(tmp_path / "catalog.sqlite3") as db:
        db.execute(statement)


def test_intact_log_verifies(log: AuditLog) -> None:
    result = log.verify()
    assert result.ok and result.records == 4 and len(result.head) == 64


def test_queries_answer_who_has_seen_a_document(log: AuditLog) -> None:
    assert [r.principal for r in log.query(document_id="handbook/a.md")] == ["alice"]
    assert [r.seq for r in log.query(principal="alice")] == [3, 1]
    assert [r.principal for r in log.query(severity="high")] == ["mallory"]
    assert len(log.query(limit=2)) == 2


def test_edited_record_is_detected(log: AuditLog, tmp_path: Path) -> None:
    sql(tmp_path, "UPDATE audit SET principal='eve' WHERE seq=2")
    result = log.verify()
    assert not result.ok and result.problem == "record 2 was altered"


def test_removed_record_is_detected(log: AuditLog, tmp_path: Path) -> None:
    sql(tmp_path, "DELETE FROM audit WHERE seq=2")
    result = log.verify()
    assert not result.ok and "record 2 is missing" in (result.problem or "")


def test_reordered_records_are_detected(log: AuditLog, tmp_path: Path) -> None:
    sql(tmp_path, "UPDATE audit SET seq=-1 WHERE seq=2")
    sql(tmp_path, "UPDATE audit SET seq=2 WHERE seq=3")
    sql(tmp_path, "UPDATE audit SET seq=3 WHERE seq=-1")
    result = log.verify()
    assert not result.ok and "does not follow" in (result.problem or "")


def test_truncated_tail_is_detected(log: AuditLog, tmp_path: Path) -> None:
    sql(tmp_path, "DELETE FROM audit WHERE seq=4")
    result = log.verify()
    assert not result.ok and "head says 4" in (result.problem or "")


def delete_head(tmp_path: Path) -> None:
    """Remove the log's head wherever it is kept (the old file beside the catalog, the head table)."""
    (tmp_path / "audit.head").unlink(missing_ok=True)
    with sqlite3.connect(tmp_path / "catalog.sqlite3") as db:
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'audit_head'").fetchone():
            db.execute("DELETE FROM audit_head")


def test_new_empty_log_verifies(tmp_path: Path) -> None:
    result = AuditLog(tmp_path / "catalog.sqlite3").verify()
    assert result.ok and result.records == 0


def test_missing_head_is_detected_and_stays_detected(log: AuditLog, tmp_path: Path) -> None:
    delete_head(tmp_path)
    result = log.verify()
    assert not result.ok and "head is missing" in (result.problem or "")
    log.append("alice", "search", "h5", "ok")  # the server goes on recording, the alarm stays
    assert not AuditLog(tmp_path / "catalog.sqlite3").verify().ok


def test_truncation_followed_by_an_append_is_detected(log: AuditLog, tmp_path: Path) -> None:
    sql(tmp_path, "DELETE FROM audit")
    sql(tmp_path, "DELETE FROM audit_documents")
    log.append("alice", "search", "h5", "ok")
    result = log.verify()
    assert not result.ok and "record 1 is missing" in (result.problem or "")


def test_anchor_accepts_an_extended_log_and_refuses_a_rewritten_one(log: AuditLog, tmp_path: Path) -> None:
    anchor = log.verify().anchor
    assert anchor.seq == 4 and Anchor.parse(str(anchor)) == anchor
    log.append("alice", "search", "h5", "ok")
    assert log.verify(anchor).ok  # extended, not rewritten
    forged = Anchor(4, "f" * 64)
    assert log.verify(forged).problem == "record 4 is not the anchored one: the log was rewritten"
    # Someone with write access rewrites the whole log consistently: only the anchor notices.
    sql(tmp_path, "DELETE FROM audit")
    delete_head(tmp_path)
    for n in range(2):
        log.append("alice", "search", f"x{n}", "ok")
    assert log.verify().ok
    stale = log.verify(anchor)
    assert not stale.ok and stale.problem == "the log ends at record 2, before the anchored record 4"
    assert log.verify(Anchor(0, "0" * 64)).ok


@pytest.mark.parametrize("text", ["", "4", "x:" + "a" * 64, "4:abc", "-1:" + "a" * 64, "4:" + "G" * 64])
def test_bad_anchors_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="SEQ:HASH"):
        Anchor.parse(text)


def test_records_never_hold_arguments_or_text(log: AuditLog) -> None:
    record = log.query(limit=1)[0].to_json()
    assert set(record) == {
        "seq",
        "ts",
        "principal",
        "action",
        "args_hash",
        "outcome",
        "chunk_ids",
        "document_ids",
        "events",
        "prev_hash",
        "hash",
    }


def test_head_file_of_earlier_versions_is_adopted_when_it_matches(log: AuditLog, tmp_path: Path) -> None:
    head = log.verify().anchor
    delete_head(tmp_path)
    (tmp_path / "audit.head").write_text(f"{head.seq} {'0' * 64}\n")  # does not match: not adopted
    assert AuditLog(tmp_path / "catalog.sqlite3").verify().problem is not None
    assert (tmp_path / "audit.head").exists()  # kept for the operator to look at
    (tmp_path / "audit.head").write_text(f"{head.seq} {head.hash}\n")
    assert AuditLog(tmp_path / "catalog.sqlite3").verify().ok
    assert not (tmp_path / "audit.head").exists()
