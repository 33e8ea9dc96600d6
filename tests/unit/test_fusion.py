from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from strongroom.server.retrieval.fusion import reciprocal_rank_fusion, relative_score_fusion


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

    settings = RetrievalSettings()
    assert dense_weight_for(settings, "can I return a tent I pitched?") == 0.75
    for query in ("status of order 4471", "reference MK-88MP3C9R", "SKU BC2-TNT-GRN", "ext. 2210"):
        assert dense_weight_for(settings, query) == 0.4, query
    assert dense_weight_for(settings, "30 days for 2 tents") == 0.75  # small numbers are not identifiers
