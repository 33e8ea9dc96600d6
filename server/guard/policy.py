"""The limits as pure decisions: given what a principal has seen and is about to see, allow or refuse.

Kept free of I/O so each rule can be tested alone; :mod:`gate` gathers the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from strongroom.server.models import Served
from strongroom.server.settings.guard import CollectiveLimits, Limits
from strongroom.server.store.audit import GuardEvent
from strongroom.server.store.exposure import Collective, Exposure


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
    trust: float = 1.0  # share of its budgets the principal has earned
    pooled: bool = False  # not yet trusted: what it brings in counts in the collective pool
    spreading: bool = False  # its recent calls take like a crawler's

    def refuse(self, refusal: Refusal) -> Decision:
        self.refusal = refusal
        return self


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


@dataclass(frozen=True)
class Pacing:
    """When a call may go ahead: after ``delay_s``, or refused."""

    delay_s: float = 0.0
    refusal: Refusal | None = None


def pace(tat: float | None, now: float, limits: Limits) -> tuple[float | None, Pacing]:
    """A token bucket (as GCRA): ``calls_per_minute`` sustained, ``burst`` at once.

    ``tat`` is the principal's next free slot. A call that comes early waits for its slot; only
    one that would wait longer than ``max_wait_s`` is refused, with the time to retry. Returns the
    new slot (None: unchanged) and the pacing.
    """
    interval = 60.0 / limits.calls_per_minute
    slot = max(now, tat or now)
    wait = max(0.0, slot - (limits.burst - 1) * interval - now)
    if wait <= limits.max_wait_s:
        return slot + interval, Pacing(delay_s=wait)
    retry = wait - limits.max_wait_s
    return None, Pacing(
        refusal=Refusal(
            f"rate limit: {limits.calls_per_minute} calls per minute in bursts of up to {limits.burst}; "
            f"this call would have waited {wait:.0f} s, more than {limits.max_wait_s:g} s, so retry after "
            f"{math.ceil(retry)} s",
            GuardEvent("rate_limited", "warning", f"wait {wait:.1f} s > {limits.max_wait_s:g} s"),
            retry_after_s=retry,
        )
    )


def established(first_ts: float | None, flagged_ts: float | None, now: float, limits: Limits) -> bool:
    """Whether a principal has ``trust_hours`` of clean history (since its first call or last flag)."""
    if limits.trust_hours <= 0:
        return True
    if first_ts is None:
        return False
    return now - max(first_ts, flagged_ts or first_ts) >= limits.trust_hours * 3600


def trust(first_ts: float | None, flagged_ts: float | None, now: float, limits: Limits) -> float:
    """Share of its budgets a principal gets: ``new_share`` when first seen, growing linearly to
    the whole over ``trust_hours`` of clean history (since its first call or its last flag)."""
    if established(first_ts, flagged_ts, now, limits):
        return 1.0
    if first_ts is None:
        return limits.new_share
    clean = now - max(first_ts, flagged_ts or first_ts)
    return limits.new_share + (1 - limits.new_share) * clean / (limits.trust_hours * 3600)


def spreading(
    recent_new: Sequence[int], recent_novelty: Sequence[float], limits: Limits
) -> tuple[bool, float, float]:
    """Whether a principal takes like a crawler: (spreading, yield, novelty) over its recent calls,
    most recent first, counted in documents.

    Breadth is what a crawler needs and a case does not: yield is the mean number of documents new
    to the principal per call (a case's searches bring a few, its reads of what they found none;
    a coverage-maximiser brings its full ``k`` every call), novelty the mean share of new
    documents, judged from the third call. Reading deeper into a document already shown is depth,
    not spread: a long policy read window by window is a case, not a crawl.
    """
    news = list(recent_new[: limits.spread_calls]) or [0]
    shares = list(recent_novelty[: limits.spread_calls]) or [0.0]
    mean_yield = sum(news) / len(news)
    mean_novelty = sum(shares) / len(shares)
    wide = mean_yield > limits.spread_yield or (len(shares) >= 3 and mean_novelty > limits.spread_novelty)
    return wide, mean_yield, mean_novelty


def when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def source_cap(source_chunks: int, limits: Limits) -> int:
    return max(limits.source_min_chunks, math.ceil(limits.source_share * source_chunks))


def judge_result(
    *,
    exposure: Exposure,
    served: Sequence[Served],
    never_seen: set[str],
    new_in_window: set[str],
    new_documents: set[str],
    shown_before: Mapping[str, int] | None = None,
    source_sizes: Mapping[str, int],
    pool: Collective,
    total_chunks: int,
    limits: Limits,
    collective: CollectiveLimits,
    now: float,
    trusted: bool = False,
    contact: str = "your Strongroom operator",
) -> Decision:
    """Decide on a result before it is returned.

    In order: the passage and character budgets (scaled by trust), the per-source cap, the
    novelty check, the collective pool (only for principals not yet trusted that are spreading),
    and the soft limit.
    """
    before = {c: n for c, n in (shown_before or {}).items() if c not in new_in_window}
    decision = Decision(shown=shown_after(served, before))
    decision.trust = 1.0 if trusted else trust(exposure.first_ts, exposure.flagged_ts, now, limits)
    # Whoever has not earned its history draws on the pool, whatever share of budgets it starts with.
    decision.pooled = not trusted and not established(exposure.first_ts, exposure.flagged_ts, now, limits)
    distinct = {s.chunk_id: s for s in served}
    fresh = [distinct[c] for c in new_in_window if c in distinct]
    chunks_after = exposure.chunks + len(fresh)
    added_chars = sum(n - before.get(c, 0) for c, n in decision.shown.items())
    chars_after = exposure.chars + added_chars
    hard_chunks = math.ceil(limits.hard_chunks * decision.trust) + exposure.extra_chunks
    hard_chars = math.ceil(limits.hard_chars * decision.trust) + exposure.extra_chars
    frees = None if exposure.oldest_ts is None else exposure.oldest_ts + limits.window_hours * 3600
    budget = _Budget(limits, decision.trust, frees, now, contact)
    if fresh and chunks_after > hard_chunks:
        return decision.refuse(budget.refusal("distinct passages", exposure.chunks, hard_chunks))
    if added_chars and chars_after > hard_chars:
        return decision.refuse(budget.refusal("characters", exposure.chars, hard_chars))
    for source in sorted({s.source for s in fresh}):
        used = exposure.per_source.get(source, 0)
        cap = source_cap(source_sizes.get(source, 0), limits) + exposure.extra_chunks
        if used + sum(1 for s in fresh if s.source == source) > cap:
            return decision.refuse(budget.refusal(f"distinct passages of source {source!r}", used, cap))
    new = len(never_seen & set(distinct))
    documents = {s.document_id for s in served}
    new_docs = len(new_documents & documents)
    wide, mean_yield, mean_novelty = spreading(
        [new_docs, *exposure.recent_new_documents],
        [new_docs / len(documents) if documents else 0.0, *exposure.recent_document_novelty],
        limits,
    )
    decision.spreading = wide
    # Only a call that brings passages new to the principal can be a harvesting step. Judging the
    # others too would lock a flagged principal out for the whole window (refused calls are not
    # recorded, so its novelty history never changes), whatever it narrows its questions to.
    if new:
        novelty = [new / len(distinct), *exposure.recent_novelty]
        window = novelty[: limits.novelty_calls]
        share = sum(window) / len(window)
        if (
            len(window) >= limits.novelty_calls
            and chunks_after >= limits.novelty_min_chunks
            and share > limits.novelty_limit
        ):
            return decision.refuse(
                Refusal(
                    f"harvesting pattern: {share:.0%} of the passages in your last {len(window)} calls were "
                    f"new to you (the limit is {limits.novelty_limit:.0%}); calls on what you have already "
                    "seen are still served and the pattern clears as your questions narrow to the task at "
                    f"hand, or ask {contact}",
                    GuardEvent(
                        "crawler_pattern", "high", f"mean novelty {share:.2f} over {len(window)} calls"
                    ),
                ),
            )
    collective_new = len(pool.unseen & set(distinct))
    cap = max(collective.min_chunks, math.ceil(collective.share * total_chunks))
    if decision.pooled and wide and collective_new and pool.pooled + collective_new > cap:
        frees_at = None if pool.oldest_ts is None else pool.oldest_ts + collective.window_hours * 3600
        return decision.refuse(
            Refusal(
                f"collective exposure budget: principals not yet trusted have together been shown {pool.pooled:,} "
                f"of the {cap:,} passages they may bring in per {collective.window_hours:g} h, and your recent "
                f"calls spread widely ({mean_yield:.1f} documents new to you per call, {mean_novelty:.0%} of those returned)"
                f"; it frees from {when(frees_at or now)}, calls on passages others have seen are still "
                f"served, and {contact} can vouch for you",
                GuardEvent(
                    "collective_budget_exceeded",
                    "high",
                    f"pool {pool.pooled + collective_new} > {cap}; yield {mean_yield:.1f}, novelty {mean_novelty:.2f}",
                ),
                retry_after_s=None if frees_at is None else max(0.0, frees_at - now),
            )
        )
    soft = math.ceil(limits.soft_chunks * decision.trust)
    if chunks_after >= soft:
        if exposure.chunks < soft:
            decision.events.append(
                GuardEvent("soft_limit_crossed", "warning", f"{chunks_after} distinct passages in the window")
            )
        decision.delay_s = limits.soft_delay_s
    return decision


@dataclass(frozen=True)
class _Budget:
    limits: Limits
    trust: float
    frees: float | None
    now: float
    contact: str

    def refusal(self, what: str, used: int, cap: int) -> Refusal:
        grows = (
            f" (a new principal's share, {self.trust:.0%}, that grows with a clean history)"
            if self.trust < 1
            else ""
        )
        frees = (
            f"it frees from {when(self.frees)} as older ones leave the window"
            if self.frees
            else "it frees as the window slides"
        )
        return Refusal(
            f"exposure budget: you have been shown {used:,} of the {cap:,} {what} allowed in "
            f"{self.limits.window_hours:g} h{grows}; {frees}; ask {self.contact} to lift it if this is real work",
            GuardEvent("budget_exceeded", "warning", f"{what}: {used} of {cap}"),
            retry_after_s=None if self.frees is None else max(0.0, self.frees - self.now),
        )
