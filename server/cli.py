"""The ``strongroom`` command line."""

from __future__ import annotations

import importlib
import json
import logging
import sys
from contextlib import suppress
from pathlib import Path
from typing import NoReturn

import click

from strongroom.server.cli_checks import require_free_port, require_index, writable_data_folder
from strongroom.server.cli_common import (
    cli_settings,
    config_option,
    for_operator,
    report,
    setup_logging,
    user_errors,
)
from strongroom.server.errors import StoreError, StrongroomError
from strongroom.server.settings import ConfigError

log = logging.getLogger("strongroom")
SYNC_WAIT_S = 600.0
# Subcommands imported when run (``module:attribute`` under strongroom.server): `serve` loads none.
LAZY_COMMANDS = {
    "audit": "cli_guard:audit",
    "budget": "cli_guard:budget",
    "canary": "cli_guard:canary",
    "token": "cli_guard:token",
    "guard": "cli_guard:guard_group",
    "rules": "cli_rules:rules",
    "init": "cli_setup:init",
    "example": "cli_setup:example",
    "doctor": "cli_setup:doctor",
    "claude-config": "cli_setup:claude_config",
}


class LazyGroup(click.Group):
    """A command group whose listed subcommands are imported only when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module, attribute = LAZY_COMMANDS[cmd_name].split(":")
            command = getattr(importlib.import_module(f"strongroom.server.{module}"), attribute)
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="strongroom")
def main() -> None:
    """Strongroom: let AI models use your private documents without handing them over."""


@main.command()
@click.option("--source", "sources", multiple=True, help="Only sync this source (repeatable).")
@click.option("--full", is_flag=True, help="Re-index every document, changed or not.")
@config_option
def sync(config_path: Path | None, sources: tuple[str, ...], full: bool) -> None:
    """Index the configured sources (incremental)."""
    from strongroom.server.app import build_app
    from strongroom.server.cli_output import SyncProgressBar, print_sync_summary
    from strongroom.server.indexing.sync import SyncBusy

    settings = cli_settings(config_path)
    setup_logging("WARNING")
    with user_errors():
        if not settings.all_sources():
            raise ConfigError(
                f"{settings.config_file or 'configuration'}: no [[sources]] configured: "
                "add one (see `strongroom init`)"
            )
        writable_data_folder(settings)
        kb = build_app(settings).knowledge
        with SyncProgressBar(enabled=sys.stderr.isatty()) as bar:
            try:
                report = kb.sync(list(sources) or None, full=full, progress=bar)
            except SyncBusy:  # e.g. a server's background sync: usually over in seconds
                click.echo("strongroom: waiting for the sync running in another process...", err=True)
                report = kb.sync(list(sources) or None, full=full, progress=bar, wait_s=SYNC_WAIT_S)
    print_sync_summary(report)
    if not report.ok:
        sys.exit(1)


@main.command()
@click.option("--transport", type=click.Choice(["stdio", "sse", "http"]), default=None)
@click.option("--host", default=None, help="Bind address for sse/http (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port for sse/http (default 8000).")
@config_option
def serve(config_path: Path | None, transport: str | None, host: str | None, port: int | None) -> None:
    """Run the MCP server (stdio by default)."""
    from strongroom.server.app import build_app
    from strongroom.server.guard.access import Caller, check_stdio_principal
    from strongroom.server.mcp_app.app import build_server
    from strongroom.server.mcp_app.transports import exit_now, http_auth, run

    def stop(error: StrongroomError) -> NoReturn:  # the SDK's stdio reader cannot be interrupted
        report(for_operator(error))
        exit_now(1)

    settings = cli_settings(config_path)
    setup_logging(settings.server.log_level)
    transport = transport or settings.server.transport
    host = host or settings.server.host
    port = settings.server.port if port is None else port
    with user_errors():
        if transport == "stdio":
            check_stdio_principal(settings.guard, settings.principal)
            auth = None
        else:
            auth = http_auth(settings, host, port)
            require_free_port(host, port)
        writable_data_folder(settings)
        # A client that spawned the server over stdio waits for `initialize`: the rules file
        # compiles right after it. Over HTTP it compiles before the port opens.
        server = build_server(
            build_app(settings),
            Caller(settings.principal, transport),
            auth,
            rules_after_handshake=stop if transport == "stdio" else None,
        )
        log.info("serving %s over %s", settings.data_dir, transport)
    with suppress(KeyboardInterrupt):
        run(server, settings.server, transport, host, port)


@main.command()
@click.argument("query")
@click.option("-k", "k", type=int, default=None, help="Number of hits.")
@click.option("--source", "sources", multiple=True, help="Only search this source (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the same structure as the MCP tool.")
@config_option
def search(
    config_path: Path | None, query: str, k: int | None, sources: tuple[str, ...], as_json: bool
) -> None:
    """Search the index from the shell."""
    from strongroom.server.app import build_app
    from strongroom.server.cli_output import print_hits

    settings = cli_settings(config_path)
    setup_logging("WARNING")
    with user_errors():
        require_index(settings)
        result = build_app(settings).knowledge.search(query, k, list(sources) or None)
    if as_json:
        click.echo(result.model_dump_json(indent=2))
    else:
        print_hits(result, settings.retrieval.snippet_chars)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@config_option
def status(config_path: Path | None, as_json: bool) -> None:
    """Sources, document and chunk counts, last sync, model and store."""
    from strongroom.server.app import build_app
    from strongroom.server.cli_guard import guard_alerts
    from strongroom.server.cli_output import print_status

    settings = cli_settings(config_path)
    setup_logging("WARNING")
    with user_errors():
        require_index(settings)
        app = build_app(settings)
        sources = app.knowledge.list_sources()
        documents, chunks = app.catalog.counts()
        try:
            alerts = guard_alerts(app, 24)
        except StoreError:  # the guard's tables are being written by another process: status still answers
            alerts = ["guard state is being written by another process: run `strongroom guard check` later"]
    info = {
        "config": str(settings.config_file) if settings.config_file else None,
        "store": {"path": str(settings.data_dir), "chroma_url": settings.store.chroma_url},
        "model": settings.embedding.model,
        "documents": documents,
        "chunks": chunks,
        "sources": [s.model_dump(mode="json") for s in sources.sources],
        "guard_alerts": alerts,
    }
    if as_json:
        click.echo(json.dumps(info, indent=2))
    else:
        print_status(info)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def connectors(as_json: bool) -> None:
    """Installed connectors and their settings."""
    from strongroom.server.cli_output import print_connectors

    print_connectors(as_json)
