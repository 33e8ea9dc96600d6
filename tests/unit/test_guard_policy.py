"""The guard's limits as pure decisions."""

from __future__ import annotations

from strongroom.server.guard.access import Access, Caller, check_stdio_principal, resolve
from strongroom.server.guard.policy import check_rate, judge_result, source_cap
from strongroom.server.guard.settings import CollectiveLimits, GuardSettings, JwtSettings, Limits, Principal
from strongroom.server.store.exposure import Exposure, Served

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


def exposure(
    chunks: int = 0, chars: int = 0, novelty: list[float] | None = None, **per_source: int
) -> Exposure:
    return Exposure(chunks, chars, dict(per_source), novelty or [], 0, 0)


def served(*ids: str, source: str = "s", chars: int = 100) -> list[Served]:
    return [Served(i, f"{source}/{i}", source, chars) for i in ids]


def judge(ex: Exposure, items: list[Served], never: set[str] | None = None, **kw: object):  # type: ignore[no-untyped-def]
    ids = {s.chunk_id for s in items}
    args = dict(
        exposure=ex,
        served=items,
        never_seen=ids if never is None else never,
        new_in_window=ids,
        source_sizes={"s": 10_000},
        collective_seen=0,
        collective_new=0,
        total_chunks=10_000,
        limits=LIMITS,
        collective=COLLECTIVE,
    )
    args.update(kw)
    return judge_result(**args)  # type: ignore[arg-type]


def test_rate_limit_refuses_with_retry_after() -> None:
    now = 1000.0
    assert check_rate([now - 70] + [now - 30] * 9, now, LIMITS) is None
    refusal = check_rate([now - 50] + [now - 10] * 9, now, LIMITS)
    assert refusal is not None and refusal.retry_after_s == 10
    assert "retry after 10 s" in refusal.message and refusal.event.kind == "rate_limited"


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


def test_collective_cap() -> None:
    refusal = judge(exposure(), served("a"), collective_seen=2500, collective_new=1).refusal
    assert refusal is not None and refusal.event.kind == "collective_budget_exceeded"
    assert judge(exposure(), served("a"), collective_seen=2500, collective_new=0).refusal is None


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
