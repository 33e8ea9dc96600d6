"""Fusion of several rankings of the same candidates into one.

Each ranking is a list of ``(id, score)`` pairs, best first, higher scores better.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

Ranking = Sequence[tuple[str, float]]


def _sorted(scores: dict[str, float]) -> list[tuple[str, float]]:
    order = {item: i for i, item in enumerate(scores)}  # ties keep first appearance
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))


def best_per_group(ranking: Ranking, group_of: Callable[[str], str]) -> list[tuple[str, float]]:
    """A ranking of groups (a chunk's document): each group scores its best member."""
    best: dict[str, float] = {}
    for item, score in ranking:
        group = group_of(item)
        best[group] = max(score, best.get(group, score))
    return _sorted(best)


def normaliser(scores: Iterable[float], floor: float | None = None) -> Callable[[float], float]:
    """Min-max normalisation to [0, 1] over ``scores``, from ``floor`` instead of their minimum
    when given: what an item the ranker did not match would score (0 for BM25), so the weakest
    of a few matches still counts as a match."""
    values = list(scores)
    if not values:
        return lambda score: 1.0
    low, high = (min(values) if floor is None else floor), max(values)
    if high <= low:
        return lambda score: 1.0
    return lambda score: max(0.0, (score - low) / (high - low))


def group_evidence(
    ranking: Ranking, group_of: Callable[[str], str], decay: float, depth: int = 3, floor: float | None = None
) -> list[tuple[str, float]]:
    """A ranking of groups that counts more than their best member: scores are normalised to
    [0, 1] (:func:`normaliser`), and a group scores ``n1 + decay * n2 + decay**2 * n3 ...`` over
    its ``depth`` best members (``decay`` 0: its best member alone, as :func:`best_per_group`).

    A manual page with three passages about the question is likelier its answer than a page
    that mentions it once."""
    if not decay:
        return best_per_group(ranking, group_of)
    normalised = normaliser((score for _, score in ranking), floor)
    members: dict[str, list[float]] = {}
    for item, score in ranking:
        members.setdefault(group_of(item), []).append(normalised(score))
    return _sorted(
        {
            group: sum(s * decay**j for j, s in enumerate(sorted(found, reverse=True)[:depth]))
            for group, found in members.items()
        }
    )


def reciprocal_rank_fusion(rankings: Sequence[Ranking], k: int = 60) -> list[tuple[str, float]]:
    """``score(id) = sum(1 / (k + rank))`` over the rankings containing it; scores are ignored."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        ids = dict.fromkeys(item for item, _ in ranking)
        for rank, item in enumerate(ids, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return _sorted(scores)


def standout(ranking: Ranking, floor: float | None = None) -> float:
    """How clearly a ranking's first item stands out, in [0, 1]: the gap between its first two
    scores over the spread of its scores. The spread runs down to ``floor`` when given (what an
    unmatched item scores, as in :func:`normaliser`), so a ranker with a single match, say the
    one passage holding a code word for word, stands out fully; without a floor, 0 with fewer
    than three scores."""
    scores = sorted((s for _, s in ranking), reverse=True)
    if (floor is None and len(scores) < 3) or not scores:
        return 0.0
    low = scores[-1] if floor is None else floor
    second = scores[1] if len(scores) > 1 else low
    return (scores[0] - second) / (scores[0] - low) if scores[0] > low else 0.0


def confident_weights(
    rankings: Sequence[Ranking],
    weights: Sequence[float],
    gain: float,
    floors: Sequence[float | None] | None = None,
) -> list[float]:
    """``weights`` shifted toward the rankings whose first item stands out (``gain`` 0: unchanged),
    normalised to the same total; ``floors`` as in :func:`standout`, one per ranking."""
    floors = [None] * len(rankings) if floors is None else floors
    raised = [
        w * (1.0 + gain * standout(r, floor)) for r, w, floor in zip(rankings, weights, floors, strict=True)
    ]
    total = sum(raised)
    return [w * sum(weights) / total for w in raised] if total > 0 else list(weights)


def relative_score_fusion(
    rankings: Sequence[Ranking], weights: Sequence[float], floors: Sequence[float | None] | None = None
) -> list[tuple[str, float]]:
    """Normalise each ranking's scores to [0, 1] (min-max, or from its floor: :func:`normaliser`),
    then add them with ``weights``.

    Unlike RRF this keeps how much better the top candidates are, which matters when one
    ranker (dense vectors for paraphrased questions) is usually right.
    """
    floors = [None] * len(rankings) if floors is None else floors
    if not len(weights) == len(floors) == len(rankings):
        raise ValueError("one weight and one floor per ranking")
    scores: dict[str, float] = {}
    for ranking, weight, floor in zip(rankings, weights, floors, strict=True):
        best: dict[str, float] = {}
        for item, score in ranking:
            best[item] = max(score, best.get(item, score))
        normalised = normaliser(best.values(), floor)
        for item, score in best.items():
            scores[item] = scores.get(item, 0.0) + weight * normalised(score)
    return _sorted(scores)
