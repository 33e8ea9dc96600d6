"""Numbered schema migrations: a new file gets every one, an old file the missing ones, and a
file from a newer Strongroom is refused with one clear line."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from strongroom.server.errors import StoreTooNew
from strongroom.server.store.audit import AUDIT_SCHEMA, AuditLog
from strongroom.server.store.catalog import CATALOG_SCHEMA, Catalog
from strongroom.server.store.exposure import LEDGER_SCHEMA, ExposureLedger
from strongroom.server.store.sqlite import schema_version


def versions(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT component, version FROM strongroom_schema").fetchall())


def test_a_new_file_records_each_components_version(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    Catalog(path).close()
    AuditLog(path)
    ExposureLedger(path)
    assert versions(path) == {
        "catalog": CATALOG_SCHEMA.version("sqlite"),
        "audit": AUDIT_SCHEMA.version("sqlite"),
        "exposure": LEDGER_SCHEMA.version("sqlite"),
    }


def test_opening_an_up_to_date_file_writes_nothing(tmp_path: Path) -> None:
    """Another process holding the write lock does not make an open wait."""
    path = tmp_path / "catalog.sqlite3"
    Catalog(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        Catalog(path, busy_timeout_s=0.1).close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_an_old_ledger_gets_the_missing_columns_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    with sqlite3.connect(path) as db:  # a ledger as written before versions and document breadth
        db.execute(
            "CREATE TABLE guard_novelty (principal TEXT NOT NULL, ts REAL NOT NULL, returned INTEGER NOT NULL, new INTEGER NOT NULL)"
        )
        db.execute("INSERT INTO guard_novelty VALUES ('ann', 1.0, 5, 3)")
    ledger = ExposureLedger(path)
    exposure = ledger.exposure("ann", 0.0, 10)
    assert exposure.recent_new == [3] and exposure.recent_new_documents == [0]
    assert versions(path)["exposure"] == LEDGER_SCHEMA.version("sqlite")


def test_a_file_from_a_newer_strongroom_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    Catalog(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE strongroom_schema SET version=99 WHERE component='catalog'")
    with pytest.raises(StoreTooNew) as refused:
        Catalog(path)
    assert str(refused.value) == (
        f"the index was written by a newer Strongroom (catalog schema version 99; this one reads up to "
        f"{CATALOG_SCHEMA.version('sqlite')}): upgrade Strongroom, or use another data folder"
    )
    with sqlite3.connect(path) as db:
        assert schema_version(db, "catalog") == 99


def test_the_cli_says_so_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    config = tmp_path / "strongroom.toml"
    config.write_text('[[sources]]\nname = "docs"\nconnector = "filesystem"\npath = "docs"\n')
    data = tmp_path / ".strongroom"
    data.mkdir()
    Catalog(data / "catalog.sqlite3").close()
    with sqlite3.connect(data / "catalog.sqlite3") as db:
        db.execute("UPDATE strongroom_schema SET version=99 WHERE component='catalog'")
    done = subprocess.run(
        [sys.executable, "-m", "strongroom.server", "status", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "written by a newer Strongroom" in lines[0], done.stderr


def test_the_head_file_of_earlier_versions_is_adopted_when_it_matches(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite3"
    log = AuditLog(path)
    log.append("alice", "search", "h1", "ok")
    head = log.verify().anchor
    with sqlite3.connect(path) as db:  # as written before the head moved into the catalog
        db.execute("DELETE FROM audit_head")
    (tmp_path / "audit.head").write_text(f"{head.seq} {'0' * 64}\n")  # does not match: not adopted
    assert AuditLog(path).verify().problem is not None
    assert (tmp_path / "audit.head").exists()  # kept for the operator to look at
    (tmp_path / "audit.head").write_text(f"{head.seq} {head.hash}\n")
    assert AuditLog(path).verify().ok
    assert not (tmp_path / "audit.head").exists()


def test_passages_leave_the_keyword_index_by_rowid_also_in_a_catalog_from_before(tmp_path: Path) -> None:
    """Deleting an FTS5 row by its chunk id reads the whole table; each chunk keeps its rowid."""
    from strongroom.server.store.records import SearchFilter
    from tests.contract.test_catalog import chunks_of, doc

    path = tmp_path / "catalog.sqlite3"
    catalog = Catalog(path)
    for name, text in (("a", "tents are restocked weekly"), ("b", "kayaks are inspected daily")):
        catalog.commit_document(doc(name, text), chunks_of(doc(name, text)))
    catalog.close()
    with sqlite3.connect(path) as db:  # as a catalog written before chunks kept their rowid
        db.execute("ALTER TABLE chunks DROP COLUMN fts_rowid")
        db.execute("UPDATE strongroom_schema SET version=2 WHERE component='catalog'")
    catalog = Catalog(path)
    assert versions(path)["catalog"] == CATALOG_SCHEMA.version("sqlite")
    statements: list[str] = []
    catalog.database.db().set_trace_callback(statements.append)  # type: ignore[attr-defined]
    new = doc("a", "tents are repaired on request")
    catalog.commit_document(new, chunks_of(new))
    assert not [s for s in statements if "DELETE FROM chunks_fts WHERE chunk_id" in s]
    assert catalog.keyword_search("restocked", 5, SearchFilter()) == []
    assert [h.id for h in catalog.keyword_search("repaired", 5, SearchFilter())] == [chunks_of(new)[0].id]
    assert catalog.delete_document("s/b") and catalog.keyword_search("kayaks", 5, SearchFilter()) == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM chunks_fts").fetchone()[0] == 1
