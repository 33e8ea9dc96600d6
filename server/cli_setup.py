"""First-run commands: ``init``, ``example``, ``doctor`` and ``claude-config``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from importlib import resources
from pathlib import Path

import click

from strongroom.server.cli_checks import (
    DataFolderError,
    configured_by_environment,
    where_config_was_looked_for,
    writable_data_folder,
)
from strongroom.server.cli_common import (
    cli_settings,
    config_option,
    fail,
    printable,
    setup_logging,
    user_errors,
)
from strongroom.server.errors import StrongroomError
from strongroom.server.settings import DEFAULT_CONFIG_NAME, Settings, SourceSettings

CONFIG_TEMPLATE = """\
# Strongroom configuration, written by `strongroom init` on {today}.
# Relative paths are relative to this file. Every key can also be set by an environment variable
# STRONGROOM_<SECTION>__<KEY> (e.g. STRONGROOM_STORE__PATH). Reference: docs/configuration.md.

[store]
# The data folder: the search index and the catalog. It may be deleted at any time:
# `strongroom sync` rebuilds it from the documents.
path = ".strongroom"

[[sources]]
name = "documents"
connector = "filesystem"
description = "{description}"
path = {path}
# Markdown, text, HTML, PDF and Word files are indexed by default; hidden files never are.
# include = ["**/*.md", "**/*.txt", "**/*.html", "**/*.pdf", "**/*.docx"]
# exclude = ["drafts/**"]
# labels = ["staff"]        # who may see this source (docs/guard.md)

# More sources: `strongroom connectors` lists the connectors and their settings (docs/connectors.md).

# [rules]
# file = "rules.yaml"       # business rules: one MCP tool per rule set (docs/rules.md)

# [server]
# sync_on_start = true      # `strongroom serve` indexes new and changed documents in the background
"""


@click.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--documents",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="The folder to index (default: DIR/docs if it exists, else DIR; asked on a terminal).",
)
@click.option("--force", is_flag=True, help="Overwrite an existing strongroom.toml.")
def init(directory: Path | None, documents: Path | None, force: bool) -> None:
    """Write a commented strongroom.toml in DIR (default: the current folder)."""
    folder = (directory or Path.cwd()).expanduser().resolve()
    target = folder / DEFAULT_CONFIG_NAME
    if target.exists() and not force:
        fail(f"{target} already exists: edit it, or pass --force to replace it")
    default_docs = folder / "docs" if (folder / "docs").is_dir() else folder
    if documents is None and sys.stdin.isatty():
        documents = Path(click.prompt("Documents folder to index", default=str(default_docs)))
    docs = (documents or default_docs).expanduser()
    docs = (docs if docs.is_absolute() else Path.cwd() / docs).resolve()
    shown = docs.relative_to(folder).as_posix() if docs.is_relative_to(folder) else str(docs)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        target.write_text(
            CONFIG_TEMPLATE.format(
                today=date.today().isoformat(),
                description=f"Documents in {docs.name or docs}".replace('"', "'"),
                path=json.dumps(shown or "."),
            ),
            encoding="utf-8",
        )
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    click.echo(printable(f"wrote {target} (documents: {docs})"))
    if not docs.is_dir():
        click.echo(printable(f"note: {docs} does not exist yet: create it and put documents in it"))
    where = "" if folder == Path.cwd().resolve() else f"cd {folder} && "
    click.echo(printable(f"next: {where}strongroom doctor && strongroom sync"))


@click.command()
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False))
def example(directory: Path) -> None:
    """Write the example company (documents, records, rules, strongroom.toml) into DIRECTORY."""
    target = directory.expanduser().resolve()
    if target.exists() and any(target.iterdir()):
        fail(f"{target} is not empty: name a new or empty folder")
    source = resources.files("strongroom.examples").joinpath("acme")
    try:
        with resources.as_file(source) as path:
            shutil.copytree(
                path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".strongroom", "__pycache__")
            )
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    click.echo(printable(f"wrote the example company to {target}"))
    click.echo(printable(f'next: cd {target} && strongroom sync && strongroom search "restocking fee"'))


@click.command("claude-config")
@click.option("--write", is_flag=True, help="Merge the entry into Claude Desktop's configuration file.")
@click.option("--name", default="strongroom", show_default=True, help="The entry's name in mcpServers.")
@config_option
def claude_config(config_path: Path | None, write: bool, name: str) -> None:
    """Print (or --write) the claude_desktop_config.json entry that launches this server."""
    from strongroom.server import claude_desktop

    settings = cli_settings(config_path, require=False)
    if settings.config_file is None:
        fail(
            f"no configuration file: looked for {where_config_was_looked_for()}. Claude Desktop "
            "starts servers from / with its own environment, so an entry without --config would index "
            "nothing and create /.strongroom; run `strongroom init`, then this again"
        )
    entry = claude_desktop.server_entry(settings.config_file)
    logs = claude_desktop.logs_folder() / f"mcp-server-{name}.log"
    if not write:
        click.echo(json.dumps({"mcpServers": {name: entry}}, indent=2))
        click.echo(printable(f"Claude Desktop's log of this server: {logs}"), err=True)
        return
    path = claude_desktop.config_path()
    with user_errors():
        backup = claude_desktop.merge_entry(path, name, entry)
    kept = f" (the previous file is kept as {backup})" if backup else ""
    click.echo(printable(f"wrote the {name!r} entry to {path}{kept}"))
    click.echo("restart Claude Desktop (quit it fully) to load it")
    click.echo(printable(f"its log of this server: {logs}"))


# -- doctor ------------------------------------------------------------------------------------

Check = tuple[bool, str]


@click.command()
@click.option("--skip-model", is_flag=True, help="Do not load the embedding model (faster).")
@config_option
def doctor(config_path: Path | None, skip_model: bool) -> None:
    """Check the configuration, data folder, model, sources, index and Claude Desktop entry."""
    setup_logging("ERROR")
    settings = cli_settings(config_path, require=False)
    problems = 0
    for ok, line in _checks(settings, skip_model):
        problems += not ok
        label = click.style("ok     ", fg="green") if ok else click.style("problem", fg="red", bold=True)
        click.echo(f"{label} {printable(line)}")
    if problems:
        click.echo(f"{problems} problem{'s' if problems != 1 else ''} found")
        sys.exit(1)
    click.echo("all checks passed")


def _checks(settings: Settings, skip_model: bool) -> Iterator[Check]:
    if settings.config_file:
        yield True, f"config: {settings.config_file}"
    elif configured_by_environment():
        yield True, f"config: no file; from the environment ({', '.join(configured_by_environment())})"
    else:
        yield False, f"config: none found (looked for {where_config_was_looked_for()}): run `strongroom init`"
        return
    yield _data_folder(settings)
    if not skip_model:
        yield _model(settings)
    sources = settings.all_sources()
    if not sources:
        yield False, "sources: none configured: add a [[sources]] table (see `strongroom init`)"
    for source in sources:
        yield _source(settings, source)
    yield _index(settings)
    yield _claude_entry(settings)


def _data_folder(settings: Settings) -> Check:
    folder = settings.data_dir
    if not folder.exists():
        parent = next((p for p in folder.parents if p.exists()), None)
        if parent is not None and os.access(parent, os.W_OK | os.X_OK):
            return True, f"data folder: {folder} (created by the first sync)"
        return False, f"data folder: cannot create {folder}: set store.path to a folder you can write"
    try:
        writable_data_folder(settings)
    except DataFolderError as exc:
        return False, f"data folder: {exc}"
    return True, f"data folder: {folder} (writable)"


def _model(settings: Settings) -> Check:
    from strongroom.server.app import build_app

    started = time.monotonic()
    try:
        build_app(settings).embedder.embed_query("doctor")
    except StrongroomError as exc:
        return False, f"model: {exc}; check embedding.model (the packaged one is all-MiniLM-L6-v2)"
    return True, f"model: {settings.embedding.model} loads offline ({time.monotonic() - started:.1f}s)"


def _source(settings: Settings, source: SourceSettings) -> Check:
    from strongroom.connectors.registry import build_connector

    what = f"source {source.name} ({source.connector})"

    async def probe() -> int | None:
        connector = build_connector(source.connector, source.connector_options(), settings.base_dir)
        async for _ in connector.documents():
            break
        return await connector.estimated_count()

    try:
        count = asyncio.run(asyncio.wait_for(probe(), timeout=60))
    except TimeoutError:
        return False, f"{what}: no answer within 60 s: check that it is reachable from here"
    except Exception as exc:  # a connector's failure, whatever its type, is this source's problem
        return False, f"{what}: {exc}; fix the source's settings in the configuration"
    about = f", about {count} documents" if count is not None else ""
    return True, f"{what}: reachable{about}"


def _index(settings: Settings) -> Check:
    from strongroom.server.readiness import not_ready_message

    if settings.store.catalog_url is None and not settings.catalog_path.exists():
        return False, "index: nothing indexed yet: run `strongroom sync`"
    from strongroom.server.app import build_app

    app = build_app(settings)
    try:
        catalog = app.catalog
        documents, chunks = catalog.counts()
        vectors = app.vectors.count()
        pending = len(catalog.orphaned_vectors())
        note = not_ready_message(catalog, settings.data_dir)
        synced = {s.name for s in catalog.source_states() if s.last_synced}
    except StrongroomError as exc:
        return False, f"index: {exc}"
    never = [s.name for s in settings.all_sources() if s.name not in synced]
    if note:
        return False, f"index: {note}"
    if not chunks <= vectors <= chunks + pending:
        return False, (
            f"index: the catalog has {chunks} passages but the vector store {vectors}: "
            "run `strongroom sync` to repair it (`--full` if that is not enough)"
        )
    if never:
        return False, f"index: never synced: {', '.join(never)}: run `strongroom sync`"
    return True, f"index: {documents} documents, {chunks} passages; the vector store matches the catalog"


def _claude_entry(settings: Settings) -> Check:
    from strongroom.server import claude_desktop

    if settings.config_file is None:
        return True, "claude desktop: no config file, so no entry (a bundle sets the environment instead)"
    entry = claude_desktop.server_entry(settings.config_file)
    command = " ".join([entry["command"], *entry["args"]])
    path = claude_desktop.config_path()
    installed = _installed_entry(path)
    if installed is None:
        return True, f"claude desktop: `strongroom claude-config --write` would add: {command}"
    if installed == entry:
        return True, f"claude desktop: {path} runs: {command}"
    return False, (
        f"claude desktop: {path} has a different 'strongroom' entry; "
        f"run `strongroom claude-config --write` to make it run: {command}"
    )


def _installed_entry(path: Path) -> object:
    try:
        servers = json.loads(path.read_text(encoding="utf-8")).get("mcpServers", {})
    except (OSError, ValueError, AttributeError):
        return None
    return servers.get("strongroom") if isinstance(servers, dict) else None


COMMANDS: list[Callable[..., object]] = [init, example, claude_config, doctor]
