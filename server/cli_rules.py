"""``strongroom rules``: check a rules file, and try a rule set from the shell."""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import ValidationError

from strongroom.server.cli_common import (
    cli_settings,
    config_option,
    fail,
    printable,
    setup_logging,
    user_errors,
)
from strongroom.server.settings import Settings

if TYPE_CHECKING:
    from strongroom.server.models import RuleDecision

ARROW = "\u203a"


def _rules_file(settings: Settings, file: Path | None) -> Path:
    if file is not None:
        return file
    if settings.rules.file is None:
        fail("no rules file: pass FILE, or set `[rules] file = ...` in the configuration")
    return settings.resolve(settings.rules.file)


@click.group()
def rules() -> None:
    """Business rules: check a rules file, try a rule set."""


@rules.command()
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@config_option
def check(config_path: Path | None, file: Path | None) -> None:
    """Validate a rules file against the configuration and the index.

    Compiles every expression, and checks names, parameter types, sources, the record fields
    rules read, and that every citation resolves to an indexed document and heading. FILE
    defaults to the configured `[rules] file`.
    """
    from strongroom.server.app import build_app
    from strongroom.server.rules import RulesError, load_rulebook

    settings = cli_settings(config_path)
    setup_logging("WARNING")
    path = _rules_file(settings, file)
    with user_errors():
        catalog = build_app(settings).catalog
    sources = [s.name for s in settings.all_sources()]
    try:
        book = load_rulebook(path, catalog, sources)
    except RulesError as exc:
        for problem in exc.problems:
            click.echo(printable(problem))
        n = len(exc.problems)
        click.echo(printable(f"{n} problem{'s' if n != 1 else ''} in {path}"), err=True)
        sys.exit(1)
    for warning in book.warnings:
        click.echo(printable(f"warning: {warning}"))
    policies = book.policies.count
    click.echo(
        printable(
            f"ok: {len(book.rule_sets)} rule set{'s' if len(book.rule_sets) != 1 else ''}, "
            f"{book.rule_count} rule{'s' if book.rule_count != 1 else ''}, "
            f"{policies} answer polic{'ies' if policies != 1 else 'y'} ({path})"
        )
    )


@rules.command()
@click.argument("rule_set")
@click.argument("arguments", nargs=-1)
@click.option(
    "--file",
    "file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Rules file (default: configured).",
)
@click.option("--today", type=click.DateTime(formats=["%Y-%m-%d"]), help="Decide as if today were this date.")
@click.option("--json", "as_json", is_flag=True, help="Print the same structure as the MCP tool.")
@config_option
def run(
    config_path: Path | None,
    rule_set: str,
    arguments: tuple[str, ...],
    file: Path | None,
    today: datetime | None,
    as_json: bool,
) -> None:
    """Decide a case from the shell: `strongroom rules run refund_eligibility order_id=4471 opened=true`."""
    from strongroom.server.app import build_app
    from strongroom.server.rules import load_rulebook
    from strongroom.server.rules.params import arguments_model

    settings = cli_settings(config_path)
    setup_logging("WARNING")
    path = _rules_file(settings, file)
    raw = _named_arguments(arguments)
    with user_errors():
        catalog = build_app(settings).catalog
        book = load_rulebook(path, catalog, [s.name for s in settings.all_sources()])
        compiled = book.rule_sets.get(rule_set)
        if compiled is None:
            fail(f"no rule set {rule_set!r} in {path} (rule sets: {', '.join(book.rule_sets) or 'none'})")
        model = arguments_model(rule_set, compiled.parameters)
        try:
            validated = model.model_validate(raw).model_dump()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            fail(f"{rule_set}: {problems}")
        kwargs: dict[str, Any] = {}
        day = today.date() if today is not None else settings.rules.today
        if day is not None:
            moment = datetime.combine(day, time(12), tzinfo=compiled.tz)
            kwargs["clock"] = lambda: moment
        decision = compiled.evaluate(validated, catalog, **kwargs)
    if as_json:
        click.echo(decision.model_dump_json(indent=2))
    else:
        _print_decision(rule_set, decision)


def _named_arguments(arguments: tuple[str, ...]) -> dict[str, str]:
    raw: dict[str, str] = {}
    for item in arguments:
        name, sep, value = item.partition("=")
        if not sep or not name:
            fail(f"arguments are NAME=VALUE, got {item!r}")
        raw[name] = value
    return raw


def _print_decision(rule_set: str, decision: RuleDecision) -> None:
    marks = {True: "✓", False: "✗", None: "\u2013"}
    click.echo(printable(f"{rule_set}: {decision.decision}"))
    click.echo(printable(f"  {decision.summary}"))
    for r in decision.rules:
        cite = ""
        if r.citation:
            heading = f" {ARROW} {r.citation.heading}" if r.citation.heading else ""
            cite = f"  [{r.citation.document_id}{heading}]"
        click.echo(printable(f"  {marks[r.passed]} {r.id}: {r.reason}{cite}"))
    shown = [f"{v.name}={_show(v.value)}" for v in decision.values if v.error is None]
    if shown:
        click.echo(printable("  values: " + ", ".join(shown)))
    for v in decision.values:
        if v.error is not None:
            click.echo(printable(f"  value {v.name} not computed: {v.error}"))
    click.echo("  facts: " + json.dumps(decision.facts, default=str))


def _show(value: object) -> str:
    if isinstance(value, date):
        return value.isoformat()
    return "null" if value is None else str(value)
