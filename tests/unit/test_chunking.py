"""chunk_text: structure-following chunks whose offsets index the source text exactly."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.server.indexing.chunking import MERGE_SLACK, Chunk, chunk_text

WORDS = ["refund", "policy", "customer", "order", "days", "item", "sale", "store", "café", "漢字"]


def sentence(n: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n)).capitalize() + "."


def paragraph(sentences: int, words: int = 12) -> str:
    return " ".join(sentence(words + i % 5) for i in range(sentences))


# --- generated markdown-ish documents -----------------------------------------------------------

_word = st.sampled_from(WORDS)
_heading = st.builds(
    lambda level, words: "#" * level + " " + " ".join(words),
    st.integers(1, 6),
    st.lists(_word, min_size=1, max_size=5),
)
_sentence = st.builds(
    lambda words, end: " ".join(words) + end,
    st.lists(_word, min_size=1, max_size=30),
    st.sampled_from([".", "!", "?", "…"]),
)
_paragraph = st.builds(" ".join, st.lists(_sentence, min_size=1, max_size=40))
_unbroken = st.builds(lambda n: "x" * n, st.integers(1, 2500))
_fence = st.builds(lambda body: f"```\n# comment\n\n{body}\n```", _paragraph)
_noise = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=80)
_element = st.one_of(_heading, _paragraph, _paragraph, _unbroken, _fence, _noise, st.just("\f"))
_separator = st.sampled_from(["\n", "\n\n", "\n\n\n", " \n \n", "\r\n\r\n", "\n\t\n"])
documents = st.builds(
    lambda parts, seps: "".join(p + seps[i % len(seps)] for i, p in enumerate(parts)),
    st.lists(_element, max_size=25),
    st.lists(_separator, min_size=1, max_size=5),
)
limits = st.tuples(st.integers(20, 1500), st.integers(0, 400))


def check_invariants(text: str, chunks: list[Chunk], max_chars: int) -> None:
    assert [c.index for c in chunks] == list(range(len(chunks)))
    previous_end = 0
    for chunk in chunks:
        assert text[chunk.start : chunk.end] == chunk.text
        assert chunk.text.strip() == chunk.text != ""
        assert previous_end <= chunk.start < chunk.end
        assert chunk.end - chunk.start <= int(max_chars * MERGE_SLACK)
        assert "\f" not in chunk.text
        expected_page = text.count("\f", 0, chunk.start) + 1 if "\f" in text else None
        assert chunk.page == expected_page
        previous_end = chunk.end
    covered = [False] * len(text)
    for chunk in chunks:
        covered[chunk.start : chunk.end] = [True] * (chunk.end - chunk.start)
    assert all(covered[i] or char.isspace() for i, char in enumerate(text)), "non-space text lost"


@settings(max_examples=300, deadline=None)
@given(documents, limits)
def test_invariants_on_generated_documents(text: str, limit: tuple[int, int]) -> None:
    max_chars, min_chars = limit
    chunks = chunk_text(text, max_chars=max_chars, min_chars=min_chars)
    check_invariants(text, chunks, max_chars)
    assert chunk_text(text, max_chars=max_chars, min_chars=min_chars) == chunks


@settings(max_examples=200, deadline=None)
@given(st.text(), st.integers(1, 300), st.integers(0, 100))
def test_invariants_on_arbitrary_text(text: str, max_chars: int, min_chars: int) -> None:
    check_invariants(text, chunk_text(text, max_chars=max_chars, min_chars=min_chars), max_chars)


# --- structure ----------------------------------------------------------------------------------


def test_empty_and_blank_text_give_no_chunks() -> None:
    assert chunk_text("") == []
    assert chunk_text(" \n\n\t\f \n") == []


def test_short_text_is_one_chunk_without_headings_or_page() -> None:
    [chunk] = chunk_text("  Refunds are issued within 30 days.\n\n")
    assert (chunk.index, chunk.text, chunk.headings, chunk.page) == (
        0,
        "Refunds are issued within 30 days.",
        (),
        None,
    )
    assert chunk.start == 2
    assert chunk.embedding_text == chunk.text


def test_heading_paths_follow_levels() -> None:
    text = (
        "Preamble.\n\n# Refund policy\n\nWithin 30 days.\n\n## Exceptions\n\nSale items.\n\n"
        "### Gift cards\n\nNever.\n\n## Process\n\nAsk the desk.\n\n# Shipping\n\nFree over 50."
    )
    chunks = chunk_text(text, min_chars=0)  # no short-section merging: one chunk per section
    assert [(c.headings, c.text.splitlines()[-1]) for c in chunks] == [
        ((), "Preamble."),
        (("Refund policy",), "Within 30 days."),
        (("Refund policy", "Exceptions"), "Sale items."),
        (("Refund policy", "Exceptions", "Gift cards"), "Never."),
        (("Refund policy", "Process"), "Ask the desk."),
        (("Shipping",), "Free over 50."),
    ]
    assert all(c.text.startswith("#") for c in chunks[1:]), "a heading opens its section's chunk"
    assert chunks[2].embedding_text == "Refund policy > Exceptions\n\n## Exceptions\n\nSale items."


def test_heading_without_text_joins_its_first_subsection() -> None:
    [chunk] = chunk_text("# Refund policy\n\n## Exceptions\n\nSale items are final.")
    assert chunk.text == "# Refund policy\n\n## Exceptions\n\nSale items are final."
    assert chunk.headings == ("Refund policy", "Exceptions")


def test_closing_hashes_and_indentation_of_headings() -> None:
    [chunk] = chunk_text("  ## Exceptions ##\n\nText.")
    assert chunk.headings == ("Exceptions",)


def test_hash_without_space_and_code_fences_are_not_headings() -> None:
    text = "#hashtag is text.\n\n```bash\n# install\n\nmake\n```\n\nAfter the code."
    [chunk] = chunk_text(text)
    assert chunk.headings == ()


def test_fenced_block_stays_whole_when_it_fits() -> None:
    code = "```\nline one\n\nline two\n```"
    chunks = chunk_text(f"{paragraph(4)}\n\n{code}", max_chars=len(code) + 5, min_chars=0)
    assert chunks[-1].text == code


def test_pages_are_numbered_and_never_crossed() -> None:
    text = "Page one text.\fPage two text.\n\nMore on two.\f\fPage four."
    chunks = chunk_text(text)
    assert [(c.page, c.text) for c in chunks] == [
        (1, "Page one text."),
        (2, "Page two text.\n\nMore on two."),
        (4, "Page four."),
    ]


def test_headings_carry_over_page_breaks() -> None:
    chunks = chunk_text("# Travel\n\nFlights.\fHotels.")
    assert [(c.page, c.headings) for c in chunks] == [(1, ("Travel",)), (2, ("Travel",))]


def test_paragraphs_are_packed_up_to_max_chars() -> None:
    paragraphs = [paragraph(2) for _ in range(12)]
    text = "\n\n".join(paragraphs)
    chunks = chunk_text(text, max_chars=600, min_chars=0)
    assert len(chunks) > 1
    for chunk in chunks:
        assert len(chunk.text) <= 600
        assert chunk.text.split("\n\n")[0] in paragraphs, "chunks start at paragraph starts"
    lengths = [len(p) for p in paragraphs]
    assert len(chunks) <= sum(lengths) // 300, "neighbouring paragraphs share chunks"


def test_long_paragraph_is_cut_at_sentence_ends() -> None:
    text = paragraph(40)
    chunks = chunk_text(text, max_chars=400, min_chars=0)
    assert len(chunks) > 5
    assert all(len(c.text) <= 400 and c.text.endswith(".") for c in chunks)
    assert " ".join(c.text for c in chunks) == text
    for chunk, following in itertools.pairwise(chunks):
        next_sentence = following.text.split(". ")[0] + "."
        assert len(chunk.text) + 1 + len(next_sentence) > 400, "cut at the last sentence end that fits"


def test_sentence_without_ends_is_cut_at_whitespace() -> None:
    text = " ".join(["word"] * 400)
    chunks = chunk_text(text, max_chars=100, min_chars=0)
    assert all(len(c.text) <= 100 and not c.text.endswith("wor") for c in chunks)
    assert " ".join(c.text for c in chunks) == text


def test_unbroken_text_is_cut_hard() -> None:
    chunks = chunk_text("x" * 2500, max_chars=1000, min_chars=0)
    assert [len(c.text) for c in chunks] == [1000, 1000, 500]


def test_tiny_trailing_piece_merges_into_previous_chunk() -> None:
    text = paragraph(1, 150) + " Short tail."
    split = chunk_text(text, max_chars=len(text) - 5, min_chars=0)
    merged = chunk_text(text, max_chars=len(text) - 5, min_chars=200)
    assert [c.text for c in split][-1] == "Short tail."
    assert [c.text for c in merged] == [text]


def test_tiny_piece_never_merges_across_pages() -> None:
    long = paragraph(6)
    chunks = chunk_text(f"{long}\fTiny.", max_chars=len(long) + 3, min_chars=200)
    assert [c.text for c in chunks] == [long, "Tiny."]


def test_tail_piece_never_merges_across_a_heading_into_a_long_section() -> None:
    long, section = paragraph(6), "# Next\n\n" + paragraph(2)
    chunks = chunk_text(f"{long}\n\n{section}", max_chars=len(long) + 3, min_chars=200)
    assert [c.text for c in chunks] == [long, section]


def test_short_sections_join_a_neighbour_under_their_shared_headings() -> None:
    body = paragraph(2)
    text = f"# Guide\n\n## Install\n\n{body}\n\n## Note\n\nSee below.\n\n## Run\n\n{body}"
    chunks = chunk_text(text)
    assert [c.text for c in chunks] == [
        f"# Guide\n\n## Install\n\n{body}\n\n## Note\n\nSee below.",
        f"## Run\n\n{body}",
    ]
    assert [c.headings for c in chunks] == [("Guide",), ("Guide", "Run")]
    first = chunk_text(f"# Title\n\nOne line.\n\n## Body\n\n{body}")  # nothing before: joins the next
    assert [c.text for c in first] == [f"# Title\n\nOne line.\n\n## Body\n\n{body}"]
    assert first[0].headings == ("Title",)


def test_headings_only_chunk_takes_the_start_of_a_long_paragraph() -> None:
    text = "# Refund policy\n\n" + paragraph(30)
    chunks = chunk_text(text, max_chars=500, min_chars=0)
    assert chunks[0].text.startswith("# Refund policy\n\n") and len(chunks[0].text) <= 500
    assert all(c.headings == ("Refund policy",) for c in chunks)


def test_deterministic() -> None:
    text = "# A\n\n" + paragraph(30) + "\f## B\n\n" + paragraph(5)
    assert chunk_text(text, max_chars=300) == chunk_text(text, max_chars=300)


@pytest.mark.parametrize(("max_chars", "min_chars"), [(0, 0), (100, -1)])
def test_rejects_bad_limits(max_chars: int, min_chars: int) -> None:
    with pytest.raises(ValueError, match="max_chars"):
        chunk_text("text", max_chars=max_chars, min_chars=min_chars)


def test_cuts_do_not_split_words_when_whitespace_exists() -> None:
    text = paragraph(50)
    for chunk in chunk_text(text, max_chars=333, min_chars=50):
        assert re.fullmatch(r"\S.*\S", chunk.text, re.DOTALL)
        assert chunk.start == 0 or text[chunk.start - 1].isspace()


def test_a_heading_line_with_a_long_run_of_spaces_is_linear() -> None:
    """A regex that backtracks over a space run made this quadratic (seconds for 20 KB)."""
    import time

    spaces = " " * 200_000  # linear: tens of milliseconds; quadratic: many minutes
    started = time.perf_counter()
    chunks = chunk_text("# Title" + spaces + "end #\n\nBody.")
    assert time.perf_counter() - started < 5
    assert chunks[0].headings == ("Title" + spaces + "end",)
    assert chunk_text("## Closed ##  \n\nBody.")[0].headings == ("Closed",)
    assert chunk_text("# C# #\n\nBody.")[0].headings == ("C#",)
