"""Human-readable CLI output escapes control characters, so data can never forge a line."""

from __future__ import annotations

import pytest

from strongroom.server.cli_common import printable
from strongroom.server.cli_output import print_hits, print_status, print_sync_summary
from strongroom.server.indexing.sync import SkippedItem, SourceReport, SyncReport
from strongroom.server.models import SearchHit, SearchResult

HOSTILE = "a.md\n#9 forged line\x1b[2K\u202eevil\u2028x"


def test_printable_escapes_controls_ansi_and_bidi() -> None:
    assert printable(HOSTILE) == "a.md\\n#9 forged line\\x1b[2K\\u202eevil\\u2028x"
    assert printable("Café — 東京 \\n tab\there") == "Café — 東京 \\n tab\\there"
    assert printable("plain") == "plain"


def test_sync_summary_hits_and_status_escape_data(capsys: pytest.CaptureFixture[str]) -> None:
    report = SourceReport("docs", skipped=[SkippedItem(HOSTILE, "bad\rreason")], error="down\x07")
    print_sync_summary(SyncReport([report]))
    hit = SearchHit(
        id="c1",
        document_id=HOSTILE,
        source="docs",
        title="T\x1b[31m",
        uri="u",
        chunk_index=0,
        start=0,
        end=1,
        headings=["H\u202e"],
        text="passage \x1b]8;;x\x07 text",
        score=1.0,
    )
    print_hits(SearchResult(query="q", results=[hit]), 240)
    info = {
        "config": None,
        "model": "m",
        "documents": 1,
        "chunks": 1,
        "store": {"chroma_url": None, "path": "/d"},
        "sources": [
            {
                "name": "docs",
                "connector": "fs",
                "documents": 1,
                "chunks": 1,
                "last_synced": None,
                "last_error": HOSTILE,
            }
        ],
    }
    print_status(info)
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out and "\u202e" not in out
    assert "forged line" in out and not any(line.startswith("#9") for line in out.splitlines())
    assert out.count("a.md\\n#9 forged line\\x1b[2K\\u202eevil\\u2028x") == 3


def test_log_lines_escape_what_could_forge_a_line() -> None:
    import logging

    from strongroom.server.cli_common import LOG_FORMAT, EscapingFormatter

    record = logging.LogRecord(
        "strongroom.sync",
        logging.WARNING,
        __file__,
        1,
        "skipped %s",
        ("a.md\n2026 ERROR forged\x1b[2J",),
        None,
    )
    line = EscapingFormatter(LOG_FORMAT).format(record)
    assert "\n" not in line and "\x1b" not in line and "a.md\\n2026 ERROR forged\\x1b[2J" in line
