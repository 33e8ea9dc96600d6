from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.server.retrieval.fusion import (
    best_per_group,
    confident_weights,
    group_evidence,
    reciprocal_rank_fusion,
    relative_score_fusion,
    standout,
)


def ranked(*ids: str) -> list[tuple[str, float]]:
    return [(i, float(len(ids) - n)) for n, i in enumerate(ids)]


def test_rrf_agreement_beats_a_single_top_rank() -> None:
    fused = reciprocal_rank_fusion([ranked("a", "b", "c"), ranked("b", "c", "a")], k=60)
    assert fused[0][0] == "b"


def test_rrf_keeps_items_from_either_list_and_counts_duplicates_once() -> None:
    fused = dict(reciprocal_rank_fusion([ranked("a"), ranked("z")], k=1))
    assert fused == {"a": 0.5, "z": 0.5}
    assert dict(reciprocal_rank_fusion([[("a", 3.0), ("a", 2.0)]], k=0))["a"] == 1.0


def test_relative_fusion_keeps_score_margins() -> None:
    # Dense is sure about "a"; keyword mildly prefers "b": with dense weighted higher, "a" wins.
    dense = [("a", 0.90), ("b", 0.40), ("c", 0.39)]
    keyword = [("b", 10.0), ("a", 9.0), ("c", 1.0)]
    fused = relative_score_fusion([dense, keyword], [0.75, 0.25])
    assert [i for i, _ in fused] == ["a", "b", "c"]
    assert fused[0][1] == pytest.approx(0.75 + 0.25 * 8 / 9)


def test_relative_fusion_keyword_only_hits_still_rank() -> None:
    fused = dict(relative_score_fusion([[("a", 0.5)], [("k", 3.0)]], [0.75, 0.25]))
    assert fused == {"a": 0.75, "k": 0.25}
    with pytest.raises(ValueError):
        relative_score_fusion([[("a", 1.0)]], [0.5, 0.5])


rankings = st.lists(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.floats(-5, 5, allow_nan=False)), max_size=8),
    max_size=3,
)


@given(rankings)
def test_fusions_are_sorted_complete_and_deterministic(rs: list[list[tuple[str, float]]]) -> None:
    for fused in (reciprocal_rank_fusion(rs), relative_score_fusion(rs, [1.0 / (len(rs) or 1)] * len(rs))):
        scores = [s for _, s in fused]
        assert scores == sorted(scores, reverse=True)
        assert {i for i, _ in fused} == {i for r in rs for i, _ in r}
    assert reciprocal_rank_fusion(rs) == reciprocal_rank_fusion(rs)


def test_identifiers_in_the_query_shift_weight_to_keywords() -> None:
    from strongroom.server.retrieval.pipeline import dense_weight_for
    from strongroom.server.settings import RetrievalSettings

    settings = RetrievalSettings(dense_weight=0.75, identifier_dense_weight=0.4)
    assert dense_weight_for(settings, "can I return a tent I pitched?") == 0.75
    for query in ("status of order 4471", "reference MK-88MP3C9R", "SKU BC2-TNT-GRN", "ext. 2210"):
        assert dense_weight_for(settings, query) == 0.4, query
    for query in ("os.path.join", "raise max_wal_size", "set PYTHONPATH", "KeyboardInterrupt", "__slots__"):
        assert dense_weight_for(settings, query) == 0.4, query
    assert dense_weight_for(settings, "30 days for 2 tents") == 0.75  # small numbers are not identifiers
    assert dense_weight_for(settings, "how to write JSON with indentation") == 0.75  # nor short acronyms
    assert dense_weight_for(settings.model_copy(update={"identifiers": False}), "os.path.join") == 0.75


def test_identifiers_become_the_keyword_index_phrases() -> None:
    from strongroom.server.retrieval.pipeline import identifiers

    assert identifiers("how does os.path.join treat an absolute part?") == ["os path join"]
    assert identifiers("max_wal_size and std::vector") == ["max wal size", "std vector"]
    assert identifiers("PYTHONPATH, ENOENT and ValueError in --user mode") == [
        "pythonpath",
        "enoent",
        "valueerror",
        "user",
    ]
    assert identifiers("can I return a tent I pitched?") == []
    # a code is one phrase with its hyphens; hyphenated words and number ranges are not codes
    assert identifiers("reference EN-346P3YD2, order 4475") == ["en 346p3yd2", "4475"]
    assert identifiers("decode UTF-8 from a well-known x-ray on pages 10-20") == ["utf 8"]


def test_best_per_group_scores_a_group_by_its_best_member() -> None:
    ranking = [("a#1", 0.9), ("b#1", 0.8), ("a#2", 0.7), ("c#1", 0.1)]
    assert best_per_group(ranking, lambda i: i.split("#")[0]) == [("a", 0.9), ("b", 0.8), ("c", 0.1)]


def test_a_page_with_several_good_passages_outranks_a_page_that_mentions_it_once() -> None:
    page = lambda i: i.split("#")[0]  # noqa: E731
    ranking = [("once#1", 1.0), ("often#1", 0.9), ("often#2", 0.85), ("often#3", 0.8), ("other#1", 0.0)]
    assert [g for g, _ in best_per_group(ranking, page)][:2] == ["once", "often"]
    scored = dict(group_evidence(ranking, page, decay=0.5))
    # normalised: 1.0 for "once"; 0.9 + 0.5 * 0.85 + 0.25 * 0.8 for "often"
    assert scored == pytest.approx({"often": 1.525, "once": 1.0, "other": 0.0})
    assert group_evidence(ranking, page, decay=0.0) == best_per_group(ranking, page)
    # only the three best passages of a page count, however many it has
    many = [(f"long#{n}", 0.5) for n in range(20)] + [("top#1", 1.0), ("low#1", 0.0)]
    assert dict(group_evidence(many, page, decay=1.0))["long"] == pytest.approx(1.5)


def test_a_ranker_whose_first_stands_out_gets_more_say() -> None:
    flat = [("a", 1.0), ("b", 0.99), ("c", 0.98), ("d", 0.5)]
    sharp = [("x", 10.0), ("y", 2.0), ("z", 1.0)]
    assert standout(flat) == pytest.approx(0.02) and standout(sharp) == pytest.approx(8 / 9)
    assert standout(sharp[:2]) == 0.0
    # measured from a floor (what an unmatched item scores), a lone match stands out fully
    assert standout([("x", 6.3)], floor=0.0) == 1.0 and standout([("x", 6.0), ("y", 2.0)], floor=0.0) == 2 / 3
    assert standout(sharp, floor=0.0) == pytest.approx(0.8) and standout([], floor=0.0) == 0.0
    weights = confident_weights([flat, sharp], [0.5, 0.5], gain=1.0)
    assert weights[1] > weights[0] and sum(weights) == pytest.approx(1.0)
    assert confident_weights([flat, sharp], [0.6, 0.4], gain=0.0) == pytest.approx([0.6, 0.4])


def test_fusion_by_document_keeps_a_keyword_sure_page_that_dense_misses() -> None:
    from strongroom.server.retrieval.pipeline import fuse
    from strongroom.server.settings import RetrievalSettings

    # Dense spreads over pages a and b; keyword is sure of page k (its best chunk far ahead).
    dense = [("s/a#h-0", 0.62), ("s/a#h-1", 0.61), ("s/b#h-0", 0.60), ("s/k#h-3", 0.40)]
    keyword = [("s/k#h-3", 30.0), ("s/b#h-0", 4.0), ("s/a#h-1", 3.5)]
    settings = RetrievalSettings(dense_weight=0.5, confidence_gain=1.0)
    fused = fuse(settings, dense, keyword, "how to do it")
    assert fused[0][0] == "s/k#h-3"
    # each document's chunks come together, with the document's score
    pages = [c.split("#")[0] for c, _ in fused]
    assert pages == sorted(pages, key=pages.index)  # grouped
    scores = [s for _, s in fused]
    assert scores == sorted(scores, reverse=True)


def test_a_page_titled_by_the_name_the_query_gives_is_its_definition() -> None:
    from strongroom.server.retrieval.pipeline import fuse, named_by_title
    from strongroom.server.settings import RetrievalSettings

    titles = {
        "m/time": "time — Time access and conversions",
        "m/timeit": "timeit — Measure execution time of small code snippets",
        "m/os.path": "os.path — Common pathname manipulations",
        "m/howto": "Sorting HOW TO",
        "m/rust": "std::vec::Vec - Rust",
    }
    assert named_by_title("time.perf_counter", titles) == [("m/time", 0.5)]
    assert named_by_title("what does os.path.join do", titles) == [("m/os.path", 2 / 3)]
    assert named_by_title("std::vec::Vec::push", titles) == [("m/rust", 0.75)]
    assert named_by_title("time", titles) == []  # a plain word is not a name
    assert named_by_title("how to sort a list", titles) == []

    # the page that uses the name more often loses to the page that defines it
    dense = [("m/timeit#h-0", 0.60), ("m/time#h-4", 0.58), ("m/howto#h-0", 0.30)]
    keyword = [("m/timeit#h-0", 9.0), ("m/time#h-4", 7.0), ("m/howto#h-0", 1.0)]
    settings = RetrievalSettings()
    assert fuse(settings, dense, keyword, "time.perf_counter")[0][0] == "m/timeit#h-0"
    assert fuse(settings, dense, keyword, "time.perf_counter", titles=titles)[0][0] == "m/time#h-4"
    # titles only speak for names: an ordinary query ranks as without them
    assert fuse(settings, dense, keyword, "measure time", titles=titles) == fuse(
        settings, dense, keyword, "measure time"
    )


def test_the_weakest_of_a_few_keyword_matches_still_counts_as_a_match() -> None:
    from strongroom.server.retrieval.fusion import normaliser

    assert normaliser([2.0, 4.0])(2.0) == 0.0  # min-max: the weakest match scores as nothing
    assert normaliser([2.0, 4.0], floor=0.0)(2.0) == 0.5  # from the floor: half the best
    assert normaliser([], floor=0.0)(1.0) == 1.0 and normaliser([3.0, 3.0])(3.0) == 1.0
    # two pages match the phrase: the second still beats a page dense alone likes a little more
    dense = [("p", 0.50), ("q", 0.495), ("r", 0.505), ("s", 0.40)]
    exact = [("p", 4.0), ("q", 2.0)]
    assert [i for i, _ in relative_score_fusion([dense, exact], [0.5, 0.5])][:2] == ["p", "r"]
    assert [i for i, _ in relative_score_fusion([dense, exact], [0.5, 0.5], [None, 0.0])][:2] == ["p", "q"]


def test_the_one_passage_holding_a_code_word_for_word_comes_first() -> None:
    from strongroom.server.retrieval.pipeline import fuse
    from strongroom.server.settings import RetrievalSettings

    # A made-up code (a canary's, as measured on the example corpus): embeddings place it
    # nowhere in particular, and every long page's several middling passages add up to more
    # than the code's one short page; keyword and exact matching find only that page.
    dense = [(f"s/p{p}#h-{n}", 0.39 - 0.01 * p - 0.05 * n) for p in range(12) for n in range(6)]
    dense = sorted([*dense, ("s/code#h-0", 0.28)], key=lambda c: -c[1])
    only = [("s/code#h-0", 12.6)]
    ranked = fuse(RetrievalSettings(), dense, only, "KD-RW9541RJ", exact=[("s/code#h-0", 6.3)])
    assert ranked[0][0] == "s/code#h-0"
