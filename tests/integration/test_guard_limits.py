"""The guard in a real MCP session (in-memory SDK client): limits, canaries, the audit trail."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import pytest
from mcp import Client

from strongroom.server.app import App, build_app
from strongroom.server.guard.access import Caller
from strongroom.server.guard.canary import make_canary
from strongroom.server.guard.gate import Guard
from strongroom.server.mcp_app.app import build_server
from strongroom.server.settings import load_settings
from strongroom.server.settings.guard import Limits
from strongroom.server.store.audit import AuditLog
from strongroom.server.store.exposure import ExposureLedger
from strongroom.server.store.records import document_id
from tests.integration.mcp_helpers import error_text, structured
from tests.support import clean_env, strongroom_cmd

pytestmark = pytest.mark.model


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def app(fresh_example: Path, embedder) -> App:  # type: ignore[no-untyped-def]
    return build_app(load_settings(fresh_example), embedder=embedder)


def make_guard(
    app: App,
    clock: Callable[[], float] = time.time,
    *,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    busy_timeout_s: float = 5.0,
    **limits: float,
) -> Guard:
    """The test seam: give ``app`` a guard with ``clock`` (and ``sleep``), ``limits`` and a busy timeout."""
    settings = app.settings.guard.model_copy(update={"limits": Limits(**limits)})  # type: ignore[arg-type]
    path = app.settings.catalog_path
    audit, ledger = AuditLog(path, busy_timeout_s), ExposureLedger(path, busy_timeout_s)
    app.guard = Guard(settings, audit, ledger, app.knowledge, clock=clock, sleep=sleep)
    return app.guard


def session(app: App, body: Callable[[Client], Awaitable[None]], who: str = "local") -> None:
    server = build_server(app, Caller(who, "stdio"))

    async def run() -> None:
        async with Client(server) as client:
            await body(client)

    anyio.run(run)


def test_rate_limit_refuses_only_past_the_longest_wait_with_retry_after_then_recovers(
    app: App,
) -> None:
    clock = Clock()
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    guard = make_guard(app, clock, sleep=sleep, calls_per_minute=6, burst=2, max_wait_s=10, soft_delay_s=0)

    async def body(client: Client) -> None:
        for _ in range(3):  # a burst of 2, then one waits for its 10 s slot, up to the 10 s bound
            structured(await client.call_tool("list_sources", {}))
        refused = await client.call_tool("list_sources", {})
        assert refused.is_error
        assert "would have waited 20 s, more than 10 s, so retry after 10 s" in error_text(refused)
        clock.now += 10
        structured(await client.call_tool("list_sources", {}))

    session(app, body)
    assert waited == [10.0, 10.0]
    outcomes = [r.outcome for r in guard.audit.query(limit=None)][::-1]
    assert outcomes == ["ok"] * 3 + ["refused", "ok"]
    assert [e["kind"] for e in guard.audit.query(limit=1)[0].events] == ["paced"]


def test_parallel_calls_are_paced_in_real_time_not_refused(app: App) -> None:
    guard = make_guard(app, calls_per_minute=240, burst=2, max_wait_s=5, soft_delay_s=0)

    async def body(client: Client) -> None:
        started = time.perf_counter()
        results: list[bool] = []

        async def one() -> None:
            results.append((await client.call_tool("list_sources", {})).is_error)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
        elapsed = time.perf_counter() - started
        assert results == [False] * 5
        assert 0.7 <= elapsed < 5  # 2 at once, then one every 0.25 s

    session(app, body)
    paced = [r for r in guard.audit.query(limit=None) if any(e["kind"] == "paced" for e in r.events)]
    assert len(paced) == 3


def test_exposure_budget_caps_and_an_operator_can_lift_it(app: App) -> None:
    clock = Clock()
    guard = make_guard(
        app, clock, hard_chunks=12, soft_chunks=8, soft_delay_s=0, novelty_min_chunks=10_000, new_share=1.0
    )
    queries = [
        "refund",
        "warranty backpack",
        "shipping costs",
        "travel per diem",
        "remote work stipend",
        "security incident",
        "expense receipts",
        "parental leave",
    ]

    async def body(client: Client) -> None:
        seen: set[str] = set()
        refusal = ""
        for q in queries:
            clock.now += 5
            result = await client.call_tool("search", {"query": q, "k": 4})
            if result.is_error:
                refusal = error_text(result)
                break
            seen |= {h["id"] for h in structured(result)["results"]}
        assert "exposure budget: you have been shown" in refusal and "of the 12 distinct passages" in refusal
        assert "ask your Strongroom operator to lift it" in refusal
        assert len(seen) <= 12
        # Re-reading what it already has is still fine.
        again = await client.call_tool("search", {"query": queries[0], "k": 4})
        assert not again.is_error
        guard.ledger.grant("local", chunks=100, chars=0, hours=1)
        clock.now += 5
        assert not (await client.call_tool("search", {"query": "parental leave weeks", "k": 4})).is_error
        # A day later the window has slid past all of it.
        guard.ledger.reset("local")
        clock.now += 5
        assert not (await client.call_tool("search", {"query": queries[-1], "k": 4})).is_error

    session(app, body)
    kinds = [e["kind"] for r in guard.audit.query(limit=None) for e in r.events]
    assert "soft_limit_crossed" in kinds and "budget_exceeded" in kinds
    assert guard.audit.verify().ok


def test_canary_served_raises_a_high_severity_event(app: App) -> None:
    canary = make_canary()
    app.indexer.plant("handbook", [canary.document])
    doc_id = document_id("handbook", canary.document.id)
    app.catalog.add_canary(doc_id, "handbook", canary.document.id, canary.token)
    clock = Clock()
    guard = make_guard(app, clock)

    async def body(client: Client) -> None:
        normal = structured(await client.call_tool("search", {"query": "how do I return a tent?", "k": 5}))
        assert doc_id not in {h["document_id"] for h in normal["results"]}
        clock.now += 2
        hit = structured(await client.call_tool("search", {"query": canary.token, "k": 3}))
        assert hit["results"][0]["document_id"] == doc_id  # an identifier: the keyword index finds it

    session(app, body, who="mallory")
    alerts = guard.audit.query(severity="high")
    assert [r.principal for r in alerts] == ["mallory"]
    assert alerts[0].events[0]["kind"] == "canary_served"
    checked = subprocess.run(
        strongroom_cmd("guard", "check", "--config", str(app.settings.config_file)),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert checked.returncode == 1 and "mallory search: canary_served" in checked.stdout
    status = subprocess.run(
        strongroom_cmd("status", "--config", str(app.settings.config_file)),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert "guard:     1 alert(s) in the last 24 h (strongroom guard check)" in status.stdout, status.stderr
    assert [r.principal for r in guard.audit.query(document_id=doc_id)] == ["mallory"]
    # A resync keeps the planted canary.
    assert app.knowledge.sync().ok and app.catalog.document(doc_id) is not None


def test_audit_cli_shows_filters_exports_and_verifies(app: App) -> None:
    make_guard(app, Clock())

    async def body(client: Client) -> None:
        await client.call_tool("search", {"query": "restocking fee", "k": 2})
        await client.call_tool("read_document", {"document_id": "handbook/nope.md"})

    session(app, body, who="alice")
    config = str(app.settings.config_file)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            strongroom_cmd(*args, "--config", config),
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
        )

    shown = cli("audit", "--principal", "alice")
    assert (
        shown.returncode == 0
        and "alice search ok" in shown.stdout
        and "alice read_document error" in shown.stdout
    )
    assert "restocking" not in shown.stdout  # arguments are hashed, never shown
    exported = cli("audit", "--jsonl", "--document", "handbook/refund-policy.md")
    assert '"principal": "alice"' in exported.stdout
    assert cli("audit", "verify").stdout.startswith("ok: 2 records")
    import sqlite3

    with sqlite3.connect(app.settings.data_dir / "catalog.sqlite3") as db:
        db.execute("UPDATE audit SET outcome='ok' WHERE seq=2")
    broken = cli("audit", "verify")
    assert broken.returncode != 0 and "record 2 was altered" in broken.stderr
    assert "lifted alice" in cli("budget", "lift", "alice", "--chunks", "50").stdout
    assert "alice:" in cli("budget", "show", "alice").stdout


def test_replay_tells_which_recorded_calls_other_limits_would_delay_or_refuse(
    app: App, tmp_path: Path
) -> None:
    from strongroom.server.guard.replay import replay
    from strongroom.server.settings.guard import GuardSettings

    clock = Clock()
    guard = make_guard(app, clock)

    async def body(client: Client) -> None:
        for q in ["refund", "warranty backpack", "shipping costs", "travel per diem", "parental leave"]:
            structured(await client.call_tool("search", {"query": q, "k": 4}))

    session(app, body, who="alice")
    records = guard.audit.all()
    assert len(records) == 5 and all(r.chunk_ids for r in records)
    # The recorded calls came within a second or so: a bucket of 1 call a minute, bursts of 2 and
    # at most 30 s of wait serves two, delays none (30 s is too long) and refuses the rest.
    tight = GuardSettings(limits=Limits(calls_per_minute=1, burst=2, max_wait_s=30))
    verdicts = [r.verdict for r in replay(records, tight, app.catalog)]
    assert verdicts == ["served", "served", "refused", "refused", "refused"]
    # A passage budget of 6 (new principal: 60% of 10) refuses the call that would pass it.
    small = GuardSettings(limits=Limits(hard_chunks=10))
    replayed = replay(records, small, app.catalog)
    first_refused = next(i for i, r in enumerate(replayed) if r.verdict == "refused")
    assert sum(len(set(r.chunk_ids)) for r in records[:first_refused]) <= 6
    assert "distinct passages" in replayed[first_refused].reason
    assert [r.verdict for r in replay(records, GuardSettings(), app.catalog)] == ["served"] * 5

    new = tmp_path / "new.toml"
    new.write_text("[guard.limits]\ncalls_per_minute = 1\nburst = 2\nmax_wait_s = 30\n")
    config = str(app.settings.config_file)
    shown = subprocess.run(
        strongroom_cmd("guard", "replay", "--config", str(new), "--current", config, "--since", "1d"),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "alice search refused: rate limit" in shown.stdout
    assert "alice: 5 calls, 3 would be refused (were 0), 0 delayed" in shown.stdout
    checked = subprocess.run(
        strongroom_cmd("guard", "check", "--config", config),
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert checked.returncode == 0 and "no guard alerts" in checked.stdout


def test_a_call_that_fails_unexpectedly_is_audited_without_its_internals(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug inside a tool (no real one to trigger: the knowledge base is made to raise) is
    audited as an error, and the client learns nothing of it but that it failed."""
    guard = make_guard(app, Clock())

    def broken(*_: object) -> None:
        raise RuntimeError("internal detail /srv/secret/path")

    monkeypatch.setattr(app.knowledge, "list_sources", broken)

    async def body(client: Client) -> None:
        failed = await client.call_tool("list_sources", {})
        assert failed.is_error and "secret" not in error_text(failed)

    session(app, body)
    (record,) = guard.audit.query(limit=1)
    assert (record.action, record.outcome) == ("list_sources", "error")


def test_a_call_whose_settling_fails_unexpectedly_is_still_audited(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tool ran, then judging its result failed (a bug, not a store fault): audited as an error."""
    guard = make_guard(app, Clock())

    def broken(*_: object) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(guard, "_judge", broken)

    async def body(client: Client) -> None:
        failed = await client.call_tool("list_sources", {})
        assert failed.is_error and "internal detail" not in error_text(failed)

    session(app, body)
    (record,) = guard.audit.query(limit=1)
    assert (record.action, record.outcome) == ("list_sources", "error")


def test_a_call_failing_on_a_locked_catalog_is_audited_once_the_catalog_frees(app: App) -> None:
    import sqlite3

    path = app.settings.catalog_path
    guard = make_guard(app, Clock(), busy_timeout_s=0.3)
    holder = sqlite3.connect(path, isolation_level=None)

    async def body(client: Client) -> None:
        holder.execute("BEGIN EXCLUSIVE")  # another process writing, as far as the server can tell
        failed = await client.call_tool("list_sources", {})
        assert failed.is_error and "index is busy" in error_text(failed)
        holder.execute("COMMIT")
        structured(await client.call_tool("list_sources", {}))

    session(app, body)
    holder.close()
    assert [(r.action, r.outcome) for r in guard.audit.query(limit=2)] == [
        ("list_sources", "ok"),
        ("list_sources", "error"),
    ]
    assert guard.audit.verify().ok
