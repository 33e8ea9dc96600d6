"""Human-readable output of the CLI: progress bar, sync summary, hits, status, connectors."""

from __future__ import annotations

import json
import textwrap
from types import TracebackType
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from strongroom.server.cli_common import printable
from strongroom.server.indexing.sync import SourceReport, SyncReport
from strongroom.server.models import SearchResult


class SyncProgressBar:
    """Sync progress on stderr: the model-loading phase as lines, and on a terminal a bar per
    source (documents, chunks, rate, ETA)."""

    def __init__(self, enabled: bool) -> None:
        self._progress: Progress | None = None
        if enabled:
            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("docs · {task.fields[chunks]} chunks · {task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> SyncProgressBar:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress:
            self._progress.stop()

    def model_loading(self, model: str) -> None:
        self._say(f"loading the embedding model {model}…")

    def model_loaded(self, seconds: float) -> None:
        self._say(f"embedding model loaded in {seconds:.1f}s")

    def _say(self, line: str) -> None:
        if self._progress:
            self._progress.console.print(printable(line), markup=False, highlight=False)
        else:
            click.echo(printable(line), err=True)

    def source_started(self, name: str, estimated_documents: int | None) -> None:
        if self._progress:
            self._tasks[name] = self._progress.add_task(name, total=estimated_documents, chunks=0, rate="")

    def documents_done(self, name: str, documents: int, chunks: int) -> None:
        if self._progress and name in self._tasks:
            task_id = self._tasks[name]
            task = self._progress.tasks[task_id]
            elapsed = task.elapsed or 0.0
            rate = f"{documents / elapsed:.1f} docs/s" if elapsed > 0.5 else ""
            self._progress.update(task_id, completed=documents, chunks=chunks, rate=rate)

    def source_finished(self, report: SourceReport) -> None:
        if self._progress and report.name in self._tasks:
            task_id = self._tasks[report.name]
            task = self._progress.tasks[task_id]
            self._progress.update(task_id, total=task.completed, chunks=report.chunks)


def print_sync_summary(report: SyncReport) -> None:
    for s in report.sources:
        line = (
            f"{s.name}: {s.added} added, {s.updated} updated, {s.unchanged} unchanged, "
            f"{s.deleted} deleted, {len(s.skipped)} skipped"
            + (f", {len(s.flagged)} flagged" if s.flagged else "")
            + f" ({s.chunks} chunks written)"
        )
        click.echo(printable(line))
        if s.error:
            click.echo(printable(f"  source failed: {s.error}"))
        for item in s.skipped:
            click.echo(printable(f"  skipped {item.id}: {item.reason}"))
        for item_id, passages in sorted(s.flagged.items()):
            noun = "passage reads" if passages == 1 else "passages read"
            click.echo(printable(f"  flagged {item_id}: {passages} {noun} like instructions to a model"))
    for name, documents in sorted(report.purged.items()):
        click.echo(printable(f"{name}: no longer configured, {documents} documents removed from the index"))


def print_hits(result: SearchResult, snippet_chars: int) -> None:
    if not result.results:
        click.echo("No results.")
        return
    from strongroom.server.snippets import plain_text, snippet

    for rank, hit in enumerate(result.results, start=1):
        where = " > ".join(plain_text(heading) for heading in hit.headings)
        position = f"chunk {hit.chunk_index}" + (f", page {hit.page}" if hit.page else "")
        click.echo(
            click.style(f"{rank}. {printable(hit.title)}", bold=True)
            + printable(f"  [{hit.source}]  score {hit.score:.4f}")
        )
        click.echo(printable(f"   {hit.document_id} · {position}" + (f" · § {where}" if where else "")))
        click.echo(f"   {printable(snippet(hit.text, result.query, snippet_chars))}\n")


def print_status(info: dict[str, Any]) -> None:
    store = info["store"]
    click.echo(printable(f"config:    {info['config'] or '(none: defaults and environment)'}"))
    click.echo(printable(f"store:     {store['chroma_url'] or 'embedded'} · data in {store['path']}"))
    click.echo(printable(f"model:     {info['model']}"))
    click.echo(f"indexed:   {info['documents']} documents, {info['chunks']} chunks")
    for s in info["sources"]:
        synced = s["last_synced"] or "never"
        click.echo(
            printable(
                f"  {s['name']} ({s['connector']}): {s['documents']} documents, {s['chunks']} chunks, "
                f"last synced {synced}" + (f", last error: {s['last_error']}" if s.get("last_error") else "")
            )
        )
        fresh = _freshness(s)
        if fresh:
            click.echo(printable(f"    {fresh}"))
    alerts = info.get("guard_alerts", [])
    click.echo(
        f"guard:     {len(alerts)} alert(s) in the last 24 h"
        + (" (strongroom guard check)" if alerts else "")
    )
    for line in alerts[:5]:
        click.echo(printable(f"  {line}"))


def _freshness(source: dict[str, Any]) -> str:
    """How a running server keeps a source fresh, in a few words ('' when nothing does)."""
    parts = []
    if source.get("syncing"):
        parts.append("syncing now")
    if source.get("watching"):
        parts.append("watched for changes")
    if source.get("pending_changes"):
        parts.append(f"{source['pending_changes']} pending changes")
    if source.get("refresh"):
        when = source.get("next_sync")
        parts.append(f"refresh {source['refresh']}" + (f", next sync {when}" if when else " (when serving)"))
    return "; ".join(parts)


def print_connectors(as_json: bool = False) -> None:
    """Every installed connector: package, version, description and settings; broken ones say why."""
    from strongroom.connectors.registry import installed_connectors

    installed = installed_connectors()
    if as_json:
        click.echo(json.dumps({"connectors": [c.to_json() for c in installed]}, indent=2))
        return
    for c in installed:
        click.echo(click.style(printable(c.name), bold=True) + printable(f"  ({c.package} {c.version})"))
        if c.shadowed:
            click.echo(printable(f"  also registered by {', '.join(c.shadowed)} (ignored)"))
        if c.cls is None:
            click.echo(click.style(printable(f"  broken: {c.error}"), fg="red"))
            continue
        if c.description:
            click.echo(_wrap(c.description, 2))
        settings = c.settings
        click.echo("  settings:" if settings else "  settings: none")
        for s in settings:
            if s.required:
                default = " (required)"
            elif s.default is None:
                default = " (optional)"
            else:
                default = printable(f" = {json.dumps(s.default, ensure_ascii=False)}")
            secret = click.style("  [secret]", fg="yellow") if s.secret else ""
            click.echo(
                f"    {click.style(printable(s.name), bold=True)}: {printable(s.type)}{default}{secret}"
            )
            if s.description:
                click.echo(_wrap(s.description, 6))


def _wrap(text: str, indent: int) -> str:
    pad = " " * indent
    return textwrap.fill(
        printable(text), 100, initial_indent=pad, subsequent_indent=pad, break_on_hyphens=False
    )
