"""The guard's limits as pure decisions."""

from __future__ import annotations

from strongroom.server.guard.access import Access, Caller, check_stdio_principal, resolve
from strongroom.server.guard.policy import judge_result, pace, source_cap, spreading, trust
from strongroom.server.models import Served
from strongroom.server.settings.guard import CollectiveLimits, GuardSettings, JwtSettings, Limits, Principal
from strongroom.server.store.exposure import Collective, Exposure

LIMITS = Limits(
    calls_per_minute=10,
    soft_chunks=50,
    hard_chunks=100,
    hard_chars=50_000,
    novelty_calls=5,
    novelty_limit=0.6,
    novelty_min_chunks=20,
)
COLLECTIVE = CollectiveLimits(share=0.25, min_chunks=0)
NOW = 1_800_000_000.0
DAY = 86400.0
ESTABLISHED = NOW - 10 * DAY


def exposure(
    chunks: int = 0,
    chars: int = 0,
    novelty: list[float] | None = None,
    first_ts: float | None = ESTABLISHED,
    spread: list[tuple[int, int]] | None = None,
    **per_source: int,
) -> Exposure:
    """``spread``: per recent call, (documents new to the principal, documents returned)."""
    return Exposure(
        chunks,
        chars,
        dict(per_source),
        novelty or [],
        0,
        0,
        first_ts=first_ts,
        recent_new_documents=[n for n, _ in spread or []],
        recent_documents=[d for _, d in spread or []],
    )


def pool(pooled: int = 0, unseen: set[str] | None = None) -> Collective:
    return Collective(pooled, pooled, unseen or set(), NOW - DAY / 2)


def served(*ids: str, source: str = "s", chars: int = 100) -> list[Served]:
    return [Served(i, f"{source}/{i}", source, chars) for i in ids]


def judge(ex: Exposure, items: list[Served], never: set[str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    ids = {s.chunk_id for s in items}
    args = dict(
        exposure=ex,
        served=items,
        never_seen=ids if never is None else never,
        new_in_window=ids,
        new_documents={s.document_id for s in items if never is None or s.chunk_id in never},
        source_sizes={"s": 10_000},
        pool=pool(),
        total_chunks=10_000,
        limits=LIMITS,
        collective=COLLECTIVE,
        now=NOW,
    )
    args.update(kw)
    return judge_result(**args)  # type: ignore[arg-type]


def _calls(times: list[float], limits: Limits) -> list[float | str]:
    """The delay of each call arriving at ``times`` (or "refused")."""
    tat: float | None = None
    out: list[float | str] = []
    for t in times:
        new, pacing = pace(tat, t, limits)
        tat = new if new is not None else tat
        out.append("refused" if pacing.refusal else round(pacing.delay_s, 2))
    return out


def test_a_burst_and_a_steady_rate_are_paced_not_refused() -> None:
    limits = Limits(calls_per_minute=60, burst=5, max_wait_s=10)
    assert _calls([NOW] * 5, limits) == [0.0] * 5  # five parallel calls: the burst allowance
    assert _calls([NOW] * 7, limits) == [0.0] * 5 + [1.0, 2.0]  # beyond it: each waits for its slot
    assert _calls([NOW + i for i in range(300)], limits) == [0.0] * 300  # a steady 1 call/s
    # An agent at 5 calls/s that waits for each answer is slowed to the rate, never refused.
    times, tat, t = [], None, NOW
    for _ in range(200):
        new, pacing = pace(tat, t, limits)
        assert pacing.refusal is None
        tat, t = new, t + pacing.delay_s + 0.2
        times.append(pacing.delay_s)
    assert max(times) <= 1.0 and sum(times) > 100


def test_rate_refuses_only_past_the_longest_wait_with_a_retry_after() -> None:
    limits = Limits(calls_per_minute=60, burst=2, max_wait_s=3)
    delays = _calls([NOW] * 7, limits)
    assert delays[:5] == [0.0, 0.0, 1.0, 2.0, 3.0] and delays[5:] == ["refused", "refused"]
    tat, refused = pace(NOW + 5, NOW, limits)
    assert tat is None and refused.refusal is not None and refused.refusal.retry_after_s == 1.0
    assert "would have waited 4 s, more than 3 s, so retry after 1 s" in refused.refusal.message


def test_trust_starts_small_and_grows_with_a_clean_history() -> None:
    limits = Limits(new_share=0.5, trust_hours=48)
    assert trust(None, None, NOW, limits) == 0.5
    assert trust(NOW - DAY, None, NOW, limits) == 0.75
    assert trust(NOW - 3 * DAY, None, NOW, limits) == 1.0
    assert trust(NOW - 3 * DAY, NOW - DAY, NOW, limits) == 0.75  # a flag restarts the clean history
    new = judge(exposure(55, first_ts=None), served("a"), limits=LIMITS.model_copy(update={"new_share": 0.5}))
    assert new.refusal is not None and "a new principal's share, 50%" in new.refusal.message
    assert judge(exposure(55), served("a")).refusal is None


def test_spread_separates_topic_work_from_coverage_maximising() -> None:
    assert not spreading([1, 1, 0, 2, 1], [0.2, 0.2, 0.0, 0.4, 0.2], LIMITS)[0]  # a topic: re-reads
    assert spreading([20, 20, 19], [1.0, 1.0, 0.95], LIMITS)[0]  # its full k new every call
    assert spreading([5, 5, 5], [1.0, 1.0, 1.0], LIMITS) == (True, 5.0, 1.0)  # k=5, but all new
    assert not spreading([5, 5], [1.0, 1.0], LIMITS)[0]  # two calls: novelty not judged yet


def test_hard_cap_counts_only_passages_new_in_the_window() -> None:
    items = served(*[f"c{i}" for i in range(5)])
    assert judge(exposure(95), items).refusal is None
    assert judge(exposure(96), items).refusal is not None
    assert judge(exposure(100), items, never=set(), new_in_window=set()).refusal is None  # re-reads are free
    lifted = Exposure(100, 0, {}, [], 50, 0)  # an operator's grant
    assert judge(lifted, items).refusal is None


def test_character_cap() -> None:
    refusal = judge(exposure(10, 49_950), served("a", chars=100)).refusal
    assert refusal is not None and "characters" in refusal.message


def test_soft_limit_slows_and_is_audited_once() -> None:
    decision = judge(exposure(48), served("a", "b"))
    assert decision.refusal is None and decision.delay_s == LIMITS.soft_delay_s
    assert [e.kind for e in decision.events] == ["soft_limit_crossed"]
    later = judge(exposure(60), served("x"))
    assert later.events == [] and later.delay_s == LIMITS.soft_delay_s


def test_novelty_refuses_a_crawler_but_not_a_reader() -> None:
    crawler = judge(exposure(30, novelty=[1.0, 0.9, 1.0, 0.8]), served("a", "b", "c"))
    assert crawler.refusal is not None and crawler.refusal.event.kind == "crawler_pattern"
    reader = judge(exposure(30, novelty=[0.2, 0.4, 0.0, 0.6]), served("a", "b", "c"), never={"a"})
    assert reader.refusal is None
    young = judge(exposure(5, novelty=[1.0, 1.0, 1.0, 1.0]), served("a", "b"))  # too early to judge
    assert young.refusal is None


def test_per_source_share() -> None:
    assert source_cap(10_000, LIMITS) == 800 and source_cap(100, LIMITS) == LIMITS.source_min_chunks == 300
    small = LIMITS.model_copy(update={"hard_chunks": 10_000, "soft_chunks": 10_000})
    refusal = judge(exposure(800, **{"s": 800}), served("n1"), limits=small).refusal
    assert refusal is not None and "source 's'" in refusal.message


def test_collective_pool_refuses_only_new_spreading_principals() -> None:
    full = pool(2500, {"a"})
    wide = [1.0] * 4
    new = exposure(novelty=wide, first_ts=NOW - 60, spread=[(5, 5)] * 4)
    refusal = judge(new, served("a"), pool=full).refusal
    assert refusal is not None and refusal.event.kind == "collective_budget_exceeded"
    assert refusal.event.severity == "high" and refusal.retry_after_s == DAY / 2
    assert "2,500 of the 2,500 passages" in refusal.message and "2027-01-15 20:00 UTC" in refusal.message
    assert judge(new, served("a"), pool=pool(2500)).refusal is None  # others saw it: still served
    assert (
        judge(exposure(novelty=wide, spread=[(5, 5)] * 4), served("a"), pool=full).refusal is None
    )  # established
    narrow = exposure(
        novelty=[0.2, 0.0, 0.3, 0.1], first_ts=NOW - 60, spread=[(1, 5), (0, 1), (1, 5), (0, 1)]
    )
    assert judge(narrow, served("a"), never=set(), pool=full).refusal is None  # a new colleague's topic work
    decision = judge(new, served("a"), pool=pool(10, {"a"}))
    assert decision.refusal is None and decision.pooled and decision.spreading


def test_reading_deeper_into_found_documents_is_depth_not_spread() -> None:
    """A new colleague reads a long policy window by window after the pool filled: every passage
    is new to it, none of the documents is, so it is not spreading and is served."""
    full = pool(2500, {"p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"})
    reading = exposure(
        novelty=[1.0, 0.8, 1.0, 0.8], first_ts=NOW - 60, spread=[(0, 1), (1, 5), (0, 1), (4, 5)]
    )
    window = [Served(f"p{i}", "s/policy", "s", 1000) for i in range(1, 9)]
    decision = judge(reading, window, new_documents=set(), pool=full)
    assert decision.refusal is None and not decision.spreading
    # The same passages from eight documents it was never shown: breadth, and the pool refuses it.
    spread = [Served(f"p{i}", f"s/doc{i}", "s", 1000) for i in range(1, 9)]
    crawl = judge(exposure(novelty=[1.0] * 4, first_ts=NOW - 60, spread=[(8, 8)] * 4), spread, pool=full)
    assert crawl.refusal is not None and crawl.refusal.event.kind == "collective_budget_exceeded"


def test_budget_refusal_says_use_when_it_frees_and_whom_to_ask() -> None:
    ex = Exposure(100, 0, {}, [], 0, 0, first_ts=ESTABLISHED, oldest_ts=NOW - DAY + 3600)
    refusal = judge(ex, served("z"), contact="the data office").refusal
    assert refusal is not None and refusal.retry_after_s == 3600
    assert refusal.message == (
        "exposure budget: you have been shown 100 of the 100 distinct passages allowed in 24 h; it frees "
        "from 2027-01-15 09:00 UTC as older ones leave the window; ask the data office to lift it if this "
        "is real work"
    )


def test_roles_limit_principals_and_unknown_roles_are_refused() -> None:
    import pytest
    from pydantic import ValidationError

    settings = GuardSettings(
        principals=[Principal(name="desk", role="service"), Principal(name="ops", role="operator")]
    )
    desk = resolve(settings, Caller("desk", "http"))
    assert desk.limits.hard_chunks == 5000 and desk.limits.novelty_limit == 0.9 and not desk.trusted
    assert resolve(settings, Caller("ops", "http")).trusted
    with pytest.raises(ValidationError, match="unknown role 'boss'"):
        GuardSettings(principals=[Principal(name="x", role="boss")])


def test_principals_and_access() -> None:
    laptop = GuardSettings()
    assert resolve(laptop, Caller("local", "stdio")).access == Access.everything()
    settings = GuardSettings(
        principals=[Principal(name="alice", labels=["hr"]), Principal(name="root", labels=["*"])]
    )
    alice = resolve(settings, Caller("alice", "http")).access
    assert alice.can_see(["hr", "x"]) and alice.can_see([]) and not alice.can_see(["finance"])
    assert resolve(settings, Caller("root", "http")).access.can_see(["anything"])
    stranger = resolve(settings, Caller("jwt-user", "http", "jwt", frozenset({"finance"}))).access
    assert stranger.can_see(["finance"]) and not stranger.can_see(["hr"])
    assert not resolve(settings, Caller("nobody", "http")).access.can_see(["hr"])
    check_stdio_principal(settings, "alice")
    try:
        check_stdio_principal(settings, "local")
    except Exception as exc:
        assert "not declared" in str(exc)
    else:
        raise AssertionError("an undeclared stdio principal must be refused")


def test_static_tokens_must_be_digests() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="SHA-256 hex digest"):
        Principal(name="a", token_sha256=["my-secret-token"])


JWT = JwtSettings(
    issuer="https://id.example",
    audience="https://strongroom.example",
    jwks_file="jwks.json",
    labels_claim="groups",
)


def _jwt(settings: GuardSettings, subject: str, labels: set[str] | None) -> tuple[str, Access]:
    caller = Caller(subject, "http", "jwt", None if labels is None else frozenset(labels))
    resolved = resolve(settings, caller)
    return resolved.name, resolved.access


def test_a_jwt_sees_what_its_labels_claim_grants_even_with_no_principal_declared() -> None:
    settings = GuardSettings(jwt=JWT)
    name, access = _jwt(settings, "carol", {"finance"})
    assert name == "jwt:carol"
    assert access.can_see(["finance"]) and access.can_see([]) and not access.can_see(["hr"])


def test_a_jwt_without_the_claim_sees_unlabelled_documents_or_nothing() -> None:
    assert _jwt(GuardSettings(jwt=JWT), "dave", None)[1] == Access.of(())
    strict = GuardSettings(jwt=JWT.model_copy(update={"without_labels": "nothing"}))
    access = _jwt(strict, "dave", None)[1]
    assert not access.can_see([]) and not access.can_see(["hr"])


def test_a_wildcard_in_a_token_grants_everything_only_when_the_operator_allows_it() -> None:
    access = _jwt(GuardSettings(jwt=JWT), "mallory", {"*", "finance"})[1]
    assert access.can_see(["finance"]) and not access.can_see(["hr"])
    allowed = GuardSettings(jwt=JWT.model_copy(update={"allow_wildcard_labels": True}))
    assert _jwt(allowed, "ops", {"*"})[1] == Access.everything()


def test_a_jwt_subject_named_like_a_principal_does_not_inherit_it_unless_mapped() -> None:
    root = Principal(name="root", labels=["*"])
    name, access = _jwt(GuardSettings(jwt=JWT, principals=[root]), "root", None)
    assert name == "jwt:root" and not access.can_see(["hr"])
    mapped = Principal(name="root", labels=["*"], jwt_subjects=["admin@example.com"])
    name, access = _jwt(GuardSettings(jwt=JWT, principals=[mapped]), "admin@example.com", {"x"})
    assert name == "root" and access == Access.everything()


def test_one_jwt_subject_maps_to_one_principal() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="mapped to more than one principal"):
        GuardSettings(
            principals=[Principal(name="a", jwt_subjects=["s"]), Principal(name="b", jwt_subjects=["s"])]
        )


def test_a_jwt_issuer_needs_exactly_one_key_set() -> None:
    import pytest
    from pydantic import ValidationError

    for keys in ({}, {"jwks_file": "a.json", "jwks_url": "https://id.example/jwks"}):
        with pytest.raises(ValidationError, match="exactly one of jwks_file and jwks_url"):
            JwtSettings(issuer="https://id.example", audience="https://s.example", **keys)
