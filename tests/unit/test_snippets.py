"""`strongroom search` snippets: centred on the best-matching sentence, without markup."""

from __future__ import annotations

import pytest

from strongroom.server.cli_output import print_hits
from strongroom.server.models import SearchHit, SearchResult
from strongroom.server.snippets import plain_text, snippet

FILLER = " ".join(f"Sentence {n} talks about the weather in the valley." for n in range(1, 9))
PASSAGE = f"{FILLER} Refunds for opened tents carry a restocking fee of 15 percent. {FILLER}"


def test_the_snippet_centres_on_the_best_matching_sentence() -> None:
    text = snippet(PASSAGE, "restocking fee for a tent", 240)
    assert len(text) <= 240
    assert text.startswith("…") and text.endswith("…")  # text left out on both sides
    middle = text.index("Refunds for opened tents carry a restocking fee of 15 percent.")
    assert 40 < middle < 200  # with its neighbours around it, not at one end


def test_stems_match_and_without_a_match_the_snippet_starts_at_the_beginning() -> None:
    assert "Refunds for opened tents" in snippet(PASSAGE, "refund", 120)  # refund ~ Refunds
    assert snippet(PASSAGE, "zeppelin", 60).startswith("Sentence 1 talks")


def test_a_long_best_sentence_is_cut_around_its_match() -> None:
    long = "Intro. " + "word " * 80 + "the deadline is thirty days " + "word " * 80 + "end."
    text = snippet(long, "deadline", 100)
    assert "the deadline is thirty days" in text and len(text) <= 100
    assert text.startswith("…") and text.endswith("…")


def test_markdown_and_html_markup_is_stripped() -> None:
    passage = (
        "## 2. Return *windows*\n\n"
        "Items are **returnable** within [30 days](https://example.com/returns) of purchase, "
        'see <a href="x">the <b>form</b></a> and `RMA-1`. ![a receipt](r.png)\n\n'
        "- Keep the _original_ tags.\n\n"
        "| Item | Window |\n|---|---|\n| Tents | 30 days |\n\n"
        "<div class='note'><p>Call first.</p></div>\n"
    )
    text = snippet(passage, "returnable", 400)
    assert text == (
        "Items are returnable within 30 days of purchase, see the form and RMA-1. a receipt · "
        "Keep the original tags. Item | Window · Tents | 30 days · Call first."
    )
    assert plain_text("**Refunds** & `fees` [here](u)") == "Refunds & fees here"


def test_a_record_stays_one_line_of_its_fields() -> None:
    record = "# Order 4476: Jacket\n\norder_id: 4476\nstatus: shipped\nnotes: first line\n  second line\n"
    assert (
        snippet(record, "shipped", 240) == "order_id: 4476 · status: shipped · notes: first line second line"
    )
    assert snippet(record, "shipped", 30) == "order_id: 4476 · status…"


def test_search_output_shows_the_snippet_and_a_plain_heading_path(capsys: pytest.CaptureFixture[str]) -> None:
    hit = SearchHit(
        id="c1",
        document_id="handbook/refunds.md",
        source="handbook",
        title="Refunds",
        uri="u",
        chunk_index=0,
        start=0,
        end=len(PASSAGE),
        headings=["Refunds", "**Opened** items"],
        text="## **Opened** items\n\n" + PASSAGE,
        score=1.0,
    )
    print_hits(SearchResult(query="restocking fee", results=[hit]), 240)
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].endswith("§ Refunds > Opened items")
    assert lines[2].startswith("   …") and "restocking fee of 15 percent." in lines[2]
    assert "#" not in lines[2] and "**" not in lines[2]
