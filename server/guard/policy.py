"""The limits as pure decisions: given what a principal has seen and is about to see, allow or refuse.

Kept free of I/O so each rule can be tested alone; :mod:`gate` gathers the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from strongroom.server.guard.settings import CollectiveLimits, Limits
from strongroom.server.store.audit import GuardEvent
from strongroom.server.store.exposure import Exposure, Served


@dataclass(frozen=True)
class Refusal:
    """A refused call: the message the client sees, and the audit event."""

    message: str
    event: GuardEvent
    retry_after_s: float | None = None


@dataclass
class Decision:
    refusal: Refusal | None = None
    events: list[GuardEvent] = field(default_factory=list)
    delay_s: float = 0.0
    shown: dict[str, int] = field(default_factory=dict)  # characters of each passage shown in the window


def shown_after(served: Sequence[Served], shown_before: Mapping[str, int]) -> dict[str, int]:
    """Characters of each passage shown in the window once ``served`` is returned.

    What a call returns adds to what was shown before, up to the passage's length: a tiny
    search hit and a later full read of the same passage count as the full passage; reading
    it again costs nothing more.
    """
    out: dict[str, int] = {}
    for s in served:
        before = out.get(s.chunk_id, shown_before.get(s.chunk_id, 0))
        out[s.chunk_id] = max(before, min(s.size, before + s.chars))
    return out


def check_rate(recent_calls: Sequence[float], now: float, limits: Limits) -> Refusal | None:
    """At most ``calls_per_minute`` calls in any 60 s; the refusal says when to retry."""
    in_minute = [t for t in recent_calls if t > now - 60]
    if len(in_minute) < limits.calls_per_minute:
        return None
    retry = max(0.0, 60 - (now - min(in_minute)))
    return Refusal(
        f"rate limit: {limits.calls_per_minute} calls per minute; retry after {math.ceil(retry)} s",
        GuardEvent("rate_limited", "warning", f"{len(in_minute)} calls in the last minute"),
        retry_after_s=retry,
    )


def source_cap(source_chunks: int, limits: Limits) -> int:
    return max(limits.source_min_chunks, math.ceil(limits.source_share * source_chunks))


def judge_result(
    *,
    exposure: Exposure,
    served: Sequence[Served],
    never_seen: set[str],
    new_in_window: set[str],
    shown_before: Mapping[str, int] | None = None,
    source_sizes: Mapping[str, int],
    collective_seen: int,
    collective_new: int,
    total_chunks: int,
    limits: Limits,
    collective: CollectiveLimits,
) -> Decision:
    """Decide on a result before it is returned."""
    before = {c: n for c, n in (shown_before or {}).items() if c not in new_in_window}
    decision = Decision(shown=shown_after(served, before))
    distinct = {s.chunk_id: s for s in served}
    fresh = [distinct[c] for c in new_in_window if c in distinct]
    chunks_after = exposure.chunks + len(fresh)
    added_chars = sum(n - before.get(c, 0) for c, n in decision.shown.items())
    chars_after = exposure.chars + added_chars
    hard_chunks = limits.hard_chunks + exposure.extra_chunks
    hard_chars = limits.hard_chars + exposure.extra_chars
    if fresh and chunks_after > hard_chunks:
        decision.refusal = _budget_refusal("passages", chunks_after, hard_chunks, limits)
        return decision
    if added_chars and chars_after > hard_chars:
        decision.refusal = _budget_refusal("characters", chars_after, hard_chars, limits)
        return decision
    for source in {s.source for s in fresh}:
        after = exposure.per_source.get(source, 0) + sum(1 for s in fresh if s.source == source)
        cap = source_cap(source_sizes.get(source, 0), limits) + exposure.extra_chunks
        if after > cap:
            decision.refusal = Refusal(
                f"exposure budget for source {source!r}: at most {cap} distinct passages in "
                f"{limits.window_hours:g} h",
                GuardEvent("source_budget_exceeded", "warning", f"{source}: {after} > {cap}"),
            )
            return decision
    # Only a call that brings passages new to the principal can be a harvesting step. Judging the
    # others too would lock a flagged principal out for the whole window (refused calls are not
    # recorded, so its novelty history never changes), whatever it narrows its questions to.
    if distinct and never_seen & set(distinct):
        novelty = [len(never_seen & set(distinct)) / len(distinct), *exposure.recent_novelty]
        window = novelty[: limits.novelty_calls]
        if (
            len(window) >= limits.novelty_calls
            and chunks_after >= limits.novelty_min_chunks
            and sum(window) / len(window) > limits.novelty_limit
        ):
            share = sum(window) / len(window)
            decision.refusal = Refusal(
                f"harvesting pattern: {share:.0%} of the passages in your last {len(window)} calls were new to "
                "you; narrow your questions to the task at hand",
                GuardEvent("crawler_pattern", "high", f"mean novelty {share:.2f} over {len(window)} calls"),
            )
            return decision
    collective_cap = max(collective.min_chunks, math.ceil(collective.share * total_chunks))
    if collective_new and collective_seen + collective_new > collective_cap:
        decision.refusal = Refusal(
            "collective exposure budget reached: all clients together have seen as much as allowed for now",
            GuardEvent(
                "collective_budget_exceeded", "high", f"{collective_seen + collective_new} > {collective_cap}"
            ),
        )
        return decision
    if chunks_after >= limits.soft_chunks:
        if exposure.chunks < limits.soft_chunks:
            decision.events.append(
                GuardEvent("soft_limit_crossed", "warning", f"{chunks_after} distinct passages in the window")
            )
        decision.delay_s = limits.soft_delay_s
    return decision


def _budget_refusal(what: str, value: int, cap: int, limits: Limits) -> Refusal:
    return Refusal(
        f"exposure budget: at most {cap} distinct {what} in {limits.window_hours:g} h; ask an operator to "
        "lift it if this is real work",
        GuardEvent("budget_exceeded", "warning", f"{what}: {value} > {cap}"),
    )
