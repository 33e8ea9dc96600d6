"""Operator commands of the guard: audit, budget, canary, token, guard (check, replay)."""

from __future__ import annotations

import json
import math
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click

from strongroom.server.cli_common import (
    cli_settings,
    config_option,
    fail,
    printable,
    setup_logging,
    user_errors,
)
from strongroom.server.guard.access import resolve
from strongroom.server.guard.policy import when
from strongroom.server.settings.guard import GuardSettings

if TYPE_CHECKING:
    from strongroom.server.app import Anchor, App, AuditRecord, ExposureLedger, VerifyResult


def _app(config_path: Path | None) -> App:
    """The App of the configuration a command names (its stores open when first used)."""
    from strongroom.server.app import build_app

    return build_app(cli_settings(config_path))


def _print_record(r: AuditRecord) -> None:
    events = "; ".join(f"{e['severity']}:{e['kind']} ({e['detail']})" for e in r.events)
    docs = ", ".join(r.document_ids[:4]) + (f" +{len(r.document_ids) - 4}" if len(r.document_ids) > 4 else "")
    click.echo(
        printable(
            f"#{r.seq} {r.ts} {r.principal} {r.action} {r.outcome} args={r.args_hash[:12]} "
            f"passages={len(r.chunk_ids)}"
            + (f" docs=[{docs}]" if docs else "")
            + (f" events: {events}" if events else "")
        )
    )


@click.group(invoke_without_command=True)
@click.option("--principal", help="Only this principal's calls.")
@click.option("--document", "document_id", help='Only calls that returned this document ("who has seen X?").')
@click.option(
    "--severity", type=click.Choice(["info", "warning", "high"]), help="Only calls with such events."
)
@click.option("--limit", type=int, default=50, show_default=True, help="Most recent N records (0: all).")
@click.option("--jsonl", "as_jsonl", is_flag=True, help="Export as JSON Lines.")
@config_option
@click.pass_context
def audit(
    ctx: click.Context,
    config_path: Path | None,
    principal: str | None,
    document_id: str | None,
    severity: str | None,
    limit: int,
    as_jsonl: bool,
) -> None:
    """Show the audit log (most recent first), filtered; `audit verify` checks its chain."""
    if ctx.invoked_subcommand is not None:
        return
    records = _app(config_path).audit.query(principal, document_id, severity, limit or None)
    for record in records:
        if as_jsonl:
            click.echo(json.dumps(record.to_json(), ensure_ascii=False))
        else:
            _print_record(record)


@audit.command()
@click.option(
    "--head",
    "anchor",
    metavar="SEQ:HASH",
    help="A head printed earlier by `audit head`: the log must still hold exactly that record.",
)
@config_option
def verify(config_path: Path | None, anchor: str | None) -> None:
    """Check that no audit record was edited, removed or reordered (and that ANCHOR still holds)."""
    from strongroom.server.app import Anchor

    try:
        expected = None if anchor is None else Anchor.parse(anchor)
    except ValueError as exc:
        fail(f"--head: {exc}", 2)
    result = _verified(config_path, expected)
    held = f", contains anchor {expected}" if expected is not None else ""
    click.echo(f"ok: {result.records} records, head {result.anchor}{held}")


@audit.command()
@config_option
def head(config_path: Path | None) -> None:
    """Print the head of the verified log (SEQ:HASH); keep it elsewhere for `audit verify --head`."""
    click.echo(str(_verified(config_path, None).anchor))


@audit.command()
@config_option
def reanchor(config_path: Path | None) -> None:
    """Accept the log as it ends now, after a missing head was investigated (audited)."""
    from strongroom.server.app import Anchor

    record = _app(config_path).audit.reanchor()
    click.echo(f"new head {Anchor(record.seq, record.hash)}")


@audit.command()
@click.option(
    "--args", "arguments", required=True, metavar="JSON", help="The tool's arguments, as a JSON object."
)
@config_option
def digest(config_path: Path | None, arguments: str) -> None:
    """Print the digest the audit log records for a call with these arguments ("did X ask Y?")."""
    from strongroom.server.guard.digest_key import digest_key
    from strongroom.server.guard.gate import arguments_digest

    try:
        parsed = json.loads(arguments)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        fail('--args must be a JSON object, e.g. \'{"query": "refund policy", "k": 5}\'', 2)
    settings = cli_settings(config_path)
    with user_errors():
        click.echo(arguments_digest(digest_key(settings), parsed))


def _verified(config_path: Path | None, anchor: Anchor | None) -> VerifyResult:
    result = _app(config_path).audit.verify(anchor)
    if not result.ok:
        fail(f"audit log is not intact: {result.problem}")
    return result


@click.group()
def budget() -> None:
    """Show, reset or lift principals' exposure budgets."""


@budget.command("show")
@click.argument("principal", required=False)
@config_option
def budget_show(config_path: Path | None, principal: str | None) -> None:
    """Each principal's use of each limit in the current window, and what it means."""
    app = _app(config_path)
    settings, ledger = app.settings, app.ledger
    names = (
        [principal]
        if principal
        else sorted(set(ledger.principals()) | {p.name for p in settings.guard.principals})
    )
    for name in names:
        for line in explain_budget(settings.guard, ledger, name):
            click.echo(printable(line))


def explain_budget(guard: GuardSettings, ledger: ExposureLedger, name: str) -> list[str]:
    """Lines explaining one principal's use of each limit (``budget show``)."""
    from strongroom.server.guard.policy import spreading, trust
    from strongroom.server.guard.replay import caller_of

    resolved = resolve(guard, caller_of(name))
    limits = resolved.limits
    now = ledger.now()
    e = ledger.exposure(
        name, now - limits.window_hours * 3600, max(limits.novelty_calls, limits.spread_calls)
    )
    share = 1.0 if resolved.trusted else trust(e.first_ts, e.flagged_ts, now, limits)
    passages = math.ceil(limits.hard_chunks * share) + e.extra_chunks
    chars = math.ceil(limits.hard_chars * share) + e.extra_chars
    novelty = e.recent_novelty[: limits.novelty_calls]
    mean = sum(novelty) / len(novelty) if novelty else 0.0
    wide, per_call, spread_novelty = spreading(e.recent_new_documents, e.recent_document_novelty, limits)
    standing = "trusted by role" if resolved.trusted else f"trust {share:.0%} of the full budgets"
    if not resolved.trusted and share < 1:
        standing += f" (new or recently flagged; full after {limits.trust_hours:g} h of clean history)"
    lines = [
        f"{name}: {standing}",
        f"  rate: {limits.calls_per_minute} calls/min, bursts of {limits.burst}; calls wait up to "
        f"{limits.max_wait_s:g} s for their slot, refused beyond",
        f"  passages: {e.chunks:,} of {passages:,} distinct in {limits.window_hours:g} h "
        f"(slowed past {math.ceil(limits.soft_chunks * share):,})",
        f"  characters: {e.chars:,} of {chars:,}",
    ]
    if e.per_source:
        top = sorted(e.per_source.items(), key=lambda kv: -kv[1])[:3]
        lines.append("  per source: " + ", ".join(f"{s} {n:,}" for s, n in top))
    lines.append(
        f"  novelty: {mean:.0%} over the last {len(novelty)} calls (refused above {limits.novelty_limit:.0%} "
        f"over {limits.novelty_calls} once {limits.novelty_min_chunks} passages seen)"
    )
    lines.append(
        f"  spread: {per_call:.1f} new documents per call, {spread_novelty:.0%} of those returned (spreading above "
        f"{limits.spread_yield:g} or {limits.spread_novelty:.0%}): "
        + ("spreading; refused once the collective pool is full" if wide and share < 1 else "not held back")
    )
    if e.oldest_ts is not None:
        lines.append(f"  window frees from {when(e.oldest_ts + limits.window_hours * 3600)}")
    if e.extra_chunks or e.extra_chars:
        lines.append(f"  operator allowance: +{e.extra_chunks:,} passages, +{e.extra_chars:,} characters")
    return lines


@budget.command("reset")
@click.argument("principal")
@config_option
def budget_reset(config_path: Path | None, principal: str) -> None:
    """Forget what PRINCIPAL has been shown (window, novelty and rate history)."""
    app = _app(config_path)
    app.ledger.reset(principal)
    app.audit.append("operator", "budget.reset", principal, "ok")
    click.echo(printable(f"reset {principal}"))


@budget.command("lift")
@click.argument("principal")
@click.option("--chunks", type=int, default=500, show_default=True, help="Extra distinct passages.")
@click.option("--chars", type=int, default=500_000, show_default=True, help="Extra characters.")
@click.option("--hours", type=float, default=24, show_default=True, help="How long the allowance lasts.")
@config_option
def budget_lift(config_path: Path | None, principal: str, chunks: int, chars: int, hours: float) -> None:
    """Give PRINCIPAL an extra allowance for a while."""
    from strongroom.server.app import GuardEvent

    app = _app(config_path)
    app.ledger.grant(principal, chunks, chars, hours)
    app.audit.append(
        "operator",
        "budget.lift",
        principal,
        "ok",
        events=[
            GuardEvent("budget_lifted", "info", f"+{chunks} passages, +{chars} characters for {hours:g} h")
        ],
    )
    click.echo(printable(f"lifted {principal}: +{chunks} passages, +{chars} characters for {hours:g} h"))


@click.group()
def canary() -> None:
    """Plant and list decoy documents that reveal a harvesting client."""


@canary.command("plant")
@click.option("--source", required=True, help="Source to plant them in.")
@click.option("--count", type=int, default=3, show_default=True)
@config_option
def canary_plant(config_path: Path | None, source: str, count: int) -> None:
    """Index COUNT plausible, unique decoys into SOURCE; a principal served one raises an alert."""
    from strongroom.server.guard.canary import make_canary

    app = _app(config_path)
    setup_logging("WARNING")
    with user_errors():
        canaries = [make_canary() for _ in range(count)]
        planted = app.knowledge.plant_canaries(source, canaries)
        for doc_id, c in zip(planted, canaries, strict=True):
            click.echo(printable(f"planted {doc_id} (trace token {c.token})"))


@canary.command("list")
@config_option
def canary_list(config_path: Path | None) -> None:
    """The planted canaries."""
    for row in _app(config_path).catalog.canaries():
        click.echo(printable(f"{row['document_id']}  token {row['token']}  planted {row['created']}"))


@click.command()
@click.option("--principal", help="Print the TOML to paste under this principal.")
@click.option(
    "--add-to",
    "add_to",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Append the principal to this configuration file and print only the token.",
)
@click.option("--labels", multiple=True, help="With --add-to: labels the principal may see ('*': all).")
def token(principal: str | None, add_to: Path | None, labels: tuple[str, ...]) -> None:
    """Generate a bearer token and the digest to put in the configuration (token_sha256)."""
    from strongroom.server.guard.auth import token_digest

    value = "sr_" + secrets.token_urlsafe(32)
    if add_to is not None:
        _add_principal(add_to, principal, list(labels), token_digest(value))
        click.echo(value)
        return
    click.echo(f"token:        {value}   (give it to the client; only its digest is kept)")
    click.echo(f"token_sha256: {token_digest(value)}")
    if principal:
        principal = printable(principal)
        click.echo(f'\n[[guard.principals]]\nname = "{principal}"\ntoken_sha256 = ["{token_digest(value)}"]')


def _add_principal(config: Path, name: str | None, labels: list[str], digest: str) -> None:
    """Append ``[[guard.principals]]`` to ``config``, after checking it loads and lacks ``name``."""
    from pydantic import ValidationError

    from strongroom.server.settings import format_validation_error
    from strongroom.server.settings.guard import Principal

    if not name:
        fail("--add-to needs --principal NAME")
    settings = cli_settings(config, require=False)
    if any(p.name == name for p in settings.guard.principals):
        fail(f"{config}: principal {name!r} is already declared: add the new digest to its token_sha256")
    try:
        Principal(name=name, labels=labels, token_sha256=[digest])
    except ValidationError as exc:
        fail(format_validation_error(exc, "the principal"))
    entry = {"name": name, "labels": labels, "token_sha256": [digest]}
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in entry.items())
    try:
        with config.open("a", encoding="utf-8") as out:
            out.write(f"\n[[guard.principals]]\n{lines}")
    except OSError as exc:
        fail(f"cannot write {config}: {exc.strerror}")


@click.group("guard")
def guard_group() -> None:
    """Check the guard's alerts; replay recorded traffic against other limits."""


def guard_alerts(app: App, hours: float) -> list[str]:
    """High-severity guard events of the last ``hours`` and a full collective pool, for monitoring."""
    since = datetime.now(UTC) - timedelta(hours=hours)
    alerts = []
    for r in app.audit.query(severity="high", limit=1000):
        if datetime.fromisoformat(r.ts) < since:
            break
        for e in r.events:
            if e["severity"] == "high":
                alerts.append(f"{r.ts} {r.principal} {r.action}: {e['kind']} ({e['detail']})")
    collective = app.settings.guard.collective
    pool = app.ledger.collective([], app.ledger.now() - collective.window_hours * 3600)
    total = sum(s.chunks for s in app.catalog.source_states())
    cap = max(collective.min_chunks, math.ceil(collective.share * total))
    if pool.pooled >= cap:
        alerts.append(
            f"collective pool full: {pool.pooled:,} of {cap:,} passages brought in by principals not yet "
            "trusted; spreading ones are refused"
        )
    return alerts


@guard_group.command("check")
@click.option("--hours", type=float, default=1.0, show_default=True, help="How far back to look.")
@config_option
def guard_check(config_path: Path | None, hours: float) -> None:
    """Exit 1 (for monitoring) when the guard raised high-severity alerts in the last HOURS."""
    alerts = guard_alerts(_app(config_path), hours)
    for line in alerts[:50]:
        click.echo(printable(line))
    if alerts:
        fail(f"{len(alerts)} guard alert(s) in the last {hours:g} h", 1)
    click.echo(f"ok: no guard alerts in the last {hours:g} h")


@guard_group.command("replay")
@click.option(
    "--config",
    "new_config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The configuration whose [guard] limits to try.",
)
@click.option("--since", help="Only calls since this time (ISO 8601, or e.g. 24h, 7d).")
@click.option(
    "--current",
    "current_config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The configuration in force (whose catalog holds the log); default: as `serve` finds it.",
)
@click.option("--all", "show_all", is_flag=True, help="List every call, not only those delayed or refused.")
def guard_replay(new_config: Path, since: str | None, current_config: Path | None, show_all: bool) -> None:
    """Replay the recorded audit log against NEW limits: which calls would be delayed or refused."""
    from strongroom.server.guard.replay import Summary, replay

    app = _app(current_config)
    with user_errors():
        new = cli_settings(new_config).guard
    try:
        start = _since(since)
    except ValueError as exc:
        fail(f"--since: {exc}", 2)
    records = [r for r in app.audit.all() if start is None or datetime.fromisoformat(r.ts) >= start]
    results = replay(records, new, app.catalog)
    summary = Summary()
    for r in results:
        summary.add(r)
        if show_all or r.verdict != "served":
            detail = f" {r.delay_s:.1f} s" if r.delay_s else ""
            why = f": {r.reason}" if r.reason else ""
            was = " (was refused)" if r.record.outcome == "refused" else ""
            click.echo(
                printable(
                    f"#{r.record.seq} {r.record.ts} {r.record.principal} {r.record.action} "
                    f"{r.verdict}{detail}{was}{why}"
                )
            )
    click.echo(f"replayed {len(results)} calls against {new_config}:")
    for who in sorted(summary.calls):
        click.echo(
            printable(
                f"  {who}: {summary.calls[who]} calls, {summary.refused[who]} would be refused "
                f"(were {summary.originally_refused[who]}), {summary.delayed[who]} delayed "
                f"({summary.delay_s[who]:.1f} s in all)"
            )
        )
    if any(summary.originally_refused.values()):
        click.echo(
            "calls refused in the recorded run served nothing, so replay cannot tell what they "
            "would have served under the new limits"
        )


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    units = {"h": 1.0, "d": 24.0}
    if text[-1:] in units and text[:-1].replace(".", "", 1).isdigit():
        return datetime.now(UTC) - timedelta(hours=float(text[:-1]) * units[text[-1]])
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
