"""Fusion of several rankings of the same candidates into one.

Each ranking is a list of ``(id, score)`` pairs, best first, higher scores better.
"""

from __future__ import annotations

from collections.abc import Sequence

Ranking = Sequence[tuple[str, float]]


def _sorted(scores: dict[str, float]) -> list[tuple[str, float]]:
    order = {item: i for i, item in enumerate(scores)}  # ties keep first appearance
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def reciprocal_rank_fusion(rankings: Sequence[Ranking], k: int = 60) -> list[tuple[str, float]]:
    """``score(id) = sum(1 / (k + rank))`` over the rankings containing it; scores are ignored."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        ids = dict.fromkeys(item for item, _ in ranking)
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return _sorted(scores)


def relative_score_fusion(rankings: Sequence[Ranking], weights: Sequence[float]) -> list[tuple[str, float]]:
    """Min-max normalise each ranking's scores to [0, 1], then add them with ``weights``.

    Unlike RRF this keeps how much better the top candidates are, which matters when one
    ranker (dense vectors for paraphrased questions) is usually right.
    """
    if len(weights) != len(rankings):
        raise ValueError("one weight per ranking")
    scores: dict[str, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        best: dict[str, float] = {}
        for item, score in ranking:
            best[item] = max(score, best.get(item, score))
        if not best:
            continue
        low, high = min(best.values()), max(best.values())
        for item, score in best.items():
            normalised = (score - low) / (high - low) if high > low else 1.0
            scores[item] = scores.get(item, 0.0) + weight * normalised
    return _sorted(scores)
