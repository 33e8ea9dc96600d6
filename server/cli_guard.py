"""Operator commands of the guard: audit, budget, canary, token."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import click

from strongroom.server.cli_common import (
    cli_settings,
    config_option,
    fail,
    printable,
    setup_logging,
    user_errors,
)
from strongroom.server.store.audit import Anchor, AuditLog, AuditRecord, VerifyResult
from strongroom.server.store.exposure import ExposureLedger


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
    settings = cli_settings(config_path)
    records = AuditLog(settings.catalog_path).query(principal, document_id, severity, limit or None)
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
    record = AuditLog(cli_settings(config_path).catalog_path).reanchor()
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
    result = AuditLog(cli_settings(config_path).catalog_path).verify(anchor)
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
    """What each principal has been shown in the current window."""
    from strongroom.server.guard.access import Caller, resolve

    settings = cli_settings(config_path)
    ledger = ExposureLedger(settings.catalog_path)
    names = (
        [principal]
        if principal
        else sorted(set(ledger.principals()) | {p.name for p in settings.guard.principals})
    )
    for name in names:
        limits = resolve(settings.guard, Caller(name, "cli")).limits
        since = ledger.now() - limits.window_hours * 3600
        e = ledger.exposure(name, since, limits.novelty_calls)
        novelty = f"{sum(e.recent_novelty) / len(e.recent_novelty):.0%}" if e.recent_novelty else "-"
        click.echo(
            printable(
                f"{name}: {e.chunks}/{limits.hard_chunks + e.extra_chunks} passages, "
                f"{e.chars}/{limits.hard_chars + e.extra_chars} characters in {limits.window_hours:g} h; "
                f"recent novelty {novelty}"
            )
        )


@budget.command("reset")
@click.argument("principal")
@config_option
def budget_reset(config_path: Path | None, principal: str) -> None:
    """Forget what PRINCIPAL has been shown (window, novelty and rate history)."""
    settings = cli_settings(config_path)
    ExposureLedger(settings.catalog_path).reset(principal)
    AuditLog(settings.catalog_path).append("operator", "budget.reset", principal, "ok")
    click.echo(printable(f"reset {principal}"))


@budget.command("lift")
@click.argument("principal")
@click.option("--chunks", type=int, default=500, show_default=True, help="Extra distinct passages.")
@click.option("--chars", type=int, default=500_000, show_default=True, help="Extra characters.")
@click.option("--hours", type=float, default=24, show_default=True, help="How long the allowance lasts.")
@config_option
def budget_lift(config_path: Path | None, principal: str, chunks: int, chars: int, hours: float) -> None:
    """Give PRINCIPAL an extra allowance for a while."""
    settings = cli_settings(config_path)
    ExposureLedger(settings.catalog_path).grant(principal, chunks, chars, hours)
    AuditLog(settings.catalog_path).append("operator", "budget.lift", principal, "ok")
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
    from strongroom.server.indexing.sync import document_id
    from strongroom.server.knowledge import KnowledgeBase

    settings = cli_settings(config_path)
    setup_logging("WARNING")
    with user_errors():
        kb = KnowledgeBase(settings)
        canaries = [make_canary() for _ in range(count)]
        kb.indexer.plant(source, [c.document for c in canaries])
        for c in canaries:
            kb.catalog.add_canary(document_id(source, c.document.id), source, c.document.id, c.token)
            click.echo(printable(f"planted {document_id(source, c.document.id)} (trace token {c.token})"))


@canary.command("list")
@config_option
def canary_list(config_path: Path | None) -> None:
    """The planted canaries."""
    from strongroom.server.store.catalog import Catalog

    settings = cli_settings(config_path)
    for row in Catalog(settings.catalog_path).canaries():
        click.echo(printable(f"{row['document_id']}  token {row['token']}  planted {row['created']}"))


@click.command()
@click.option("--principal", help="Print the TOML to paste under this principal.")
def token(principal: str | None) -> None:
    """Generate a bearer token and the digest to put in the configuration (token_sha256)."""
    from strongroom.server.guard.auth import token_digest

    value = "sr_" + secrets.token_urlsafe(32)
    click.echo(f"token:        {value}   (give it to the client; only its digest is kept)")
    click.echo(f"token_sha256: {token_digest(value)}")
    if principal:
        principal = printable(principal)
        click.echo(f'\n[[guard.principals]]\nname = "{principal}"\ntoken_sha256 = ["{token_digest(value)}"]')
