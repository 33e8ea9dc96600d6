"""The audit log contract on every backend: the chain detects edited, removed, reordered and
truncated records and a rewrite past an anchor, and replicas appending at once never fork it."""

from __future__ import annotations

import threading

import pytest

from strongroom.server.store.audit import MISSING_HEAD, Anchor, AuditLog, GuardEvent
from tests.contract.conftest import Backend


@pytest.fixture
def log(backend: Backend) -> AuditLog:
    return fill(AuditLog(backend.open()))


def fill(audit: AuditLog) -> AuditLog:
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


def test_intact_log_verifies(log: AuditLog) -> None:
    result = log.verify()
    assert result.ok and result.records == 4 and len(result.head) == 64


def test_queries_answer_who_has_seen_a_document(log: AuditLog) -> None:
    assert [r.principal for r in log.query(document_id="handbook/a.md")] == ["alice"]
    assert [r.seq for r in log.query(principal="alice")] == [3, 1]
    assert [r.principal for r in log.query(severity="high")] == ["mallory"]
    assert len(log.query(limit=2)) == 2


def test_edited_record_is_detected(log: AuditLog, backend: Backend) -> None:
    backend.sql("UPDATE audit SET principal='eve' WHERE seq=2")
    result = log.verify()
    assert not result.ok and result.problem == "record 2 was altered"


def test_removed_record_is_detected(log: AuditLog, backend: Backend) -> None:
    backend.sql("DELETE FROM audit WHERE seq=2")
    result = log.verify()
    assert not result.ok and "record 2 is missing" in (result.problem or "")


def test_reordered_records_are_detected(log: AuditLog, backend: Backend) -> None:
    backend.sql("UPDATE audit SET seq=-1 WHERE seq=2")
    backend.sql("UPDATE audit SET seq=2 WHERE seq=3")
    backend.sql("UPDATE audit SET seq=3 WHERE seq=-1")
    result = log.verify()
    assert not result.ok and "does not follow" in (result.problem or "")


def test_truncated_tail_is_detected(log: AuditLog, backend: Backend) -> None:
    backend.sql("DELETE FROM audit WHERE seq=4")
    result = log.verify()
    assert not result.ok and "head says 4" in (result.problem or "")


def delete_head(backend: Backend) -> None:
    backend.sql("DELETE FROM audit_head")


def test_new_empty_log_verifies(backend: Backend) -> None:
    result = AuditLog(backend.open()).verify()
    assert result.ok and result.records == 0


def test_missing_head_is_detected_and_stays_detected(log: AuditLog, backend: Backend) -> None:
    delete_head(backend)
    result = log.verify()
    assert not result.ok and "head is missing" in (result.problem or "")
    log.append("alice", "search", "h5", "ok")  # the server goes on recording, the alarm stays
    assert not AuditLog(backend.open()).verify().ok


def test_an_emptied_log_is_not_a_new_one(log: AuditLog, backend: Backend) -> None:
    backend.sql("DELETE FROM audit")
    backend.sql("DELETE FROM audit_documents")
    delete_head(backend)
    assert log.verify().problem == MISSING_HEAD
    log.append("alice", "search", "h5", "ok")  # the server goes on; the alarm stays until reanchored
    assert log.verify().problem == MISSING_HEAD
    log.reanchor()
    assert log.verify().ok


def test_truncation_followed_by_an_append_is_detected(log: AuditLog, backend: Backend) -> None:
    backend.sql("DELETE FROM audit")
    backend.sql("DELETE FROM audit_documents")
    log.append("alice", "search", "h5", "ok")
    result = log.verify()
    assert not result.ok and "record 1 is missing" in (result.problem or "")


def test_anchor_accepts_an_extended_log_and_refuses_a_rewritten_one(log: AuditLog, backend: Backend) -> None:
    anchor = log.verify().anchor
    assert anchor.seq == 4 and Anchor.parse(str(anchor)) == anchor
    log.append("alice", "search", "h5", "ok")
    assert log.verify(anchor).ok  # extended, not rewritten
    forged = Anchor(4, "f" * 64)
    assert log.verify(forged).problem == "record 4 is not the anchored one: the log was rewritten"
    # Someone with write access rewrites the whole log consistently: only the anchor notices.
    backend.sql("DELETE FROM audit")
    backend.sql("UPDATE audit_head SET seq = 0, hash = '" + "0" * 64 + "'")
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


def test_replicas_appending_at_once_extend_one_chain(backend: Backend) -> None:
    logs = [AuditLog(backend.open()), AuditLog(backend.open())]

    def append(log: AuditLog, worker: int) -> None:
        for n in range(25):
            log.append(f"p{worker}", "search", f"h{worker}-{n}", "ok", [], [f"s/{worker}"])

    threads = [threading.Thread(target=append, args=(logs[w % 2], w)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    result = logs[1].verify()
    assert result.ok and result.records == 100
    assert len(logs[0].query(document_id="s/3", limit=None)) == 25
