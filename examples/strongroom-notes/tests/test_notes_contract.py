"""The notes connector: Strongroom's connector contract, then what is specific to notes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from strongroom_notes import NotesConnector

from strongroom.connectors import ConnectorError
from strongroom.connectors.testing import ConnectorContract, collect

SAMPLE = Path(__file__).resolve().parent.parent / "notes.json"


class TestNotesContract(ConnectorContract):
    connector_class = NotesConnector

    def config(self, tmp_path: Path) -> dict[str, Any]:  # parameters are pytest fixtures
        return {"path": str(SAMPLE), "api_token": "not-needed-for-files"}

    def broken_config(self, tmp_path: Path) -> dict[str, Any]:  # valid settings, unreadable source
        return {"path": "missing.json"}  # relative to base_dir(): tmp_path


# --- notes-specific behaviour --------------------------------------------------------------------


def notes(tmp_path: Path, entries: Any, **options: Any) -> NotesConnector:
    path = tmp_path / "notes.json"
    path.write_text(json.dumps(entries), encoding="utf-8")
    return NotesConnector(NotesConnector.Config.model_validate({"path": path, **options}))


def test_sample_export_becomes_documents(tmp_path: Path) -> None:
    connector = notes(tmp_path, json.loads(SAMPLE.read_text(encoding="utf-8")))
    docs = {d.id: d for d in collect(connector)}
    assert sorted(docs) == ["105", "n-101", "n-102", "n-103", "n-104"]
    printer = docs["n-102"]
    assert printer.title == "Third-floor printer" and "tray 2" in printer.text
    assert printer.metadata == {"tags": "office, facilities"}
    assert printer.updated_at is not None and printer.updated_at.year == 2025
    assert printer.uri.endswith("notes.json#n-102")
    assert docs["n-104"].title == "Parcel room key: ask security at the main desk. Parcels…"
    assert connector.skipped == []


def test_bad_entries_are_skipped_and_the_rest_indexed(tmp_path: Path) -> None:
    connector = notes(
        tmp_path,
        [
            {"id": "ok", "title": "Fine", "body": "Kept."},
            {"id": "ok", "title": "Again", "body": "Same id."},
            {"id": "blank", "title": "Blank", "body": "   "},
            {"title": "No id", "body": "Lost."},
            "not an object",
        ],
    )
    assert [d.id for d in collect(connector)] == ["ok"]
    assert {s.id: s.reason.split(":")[0] for s in connector.skipped} == {
        "ok": "the id appears more than once in the export; the first is kept",
        "blank": "empty note",
        "entry 4": "not a note",
        "entry 5": "not a note",
    }


def test_tags_filter(tmp_path: Path) -> None:
    connector = notes(tmp_path, json.loads(SAMPLE.read_text(encoding="utf-8")), tags=["finance", "events"])
    assert sorted(d.id for d in collect(connector)) == ["105", "n-103"]


def test_second_run_reports_unchanged_notes_instead_of_yielding_them(tmp_path: Path) -> None:
    entries = json.loads(SAMPLE.read_text(encoding="utf-8"))
    first = notes(tmp_path, entries)
    collect(first)
    entries[1]["updated"] = "2025-04-01T10:00:00Z"
    second = notes(tmp_path, entries)
    second.state = json.loads(json.dumps(first.state))
    assert [d.id for d in collect(second)] == ["n-102"]
    assert second.kept == {"105", "n-101", "n-103", "n-104"}


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "not a JSON notes export"), ('{"notes": []}', "expected a JSON list of notes")],
)
def test_unusable_export_fails_the_source(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "notes.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConnectorError, match=message):
        collect(NotesConnector(NotesConnector.Config.model_validate({"path": path})))
