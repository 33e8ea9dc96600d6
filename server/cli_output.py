"""Human-readable output of the CLI: progress bar, sync summary, hits, status, connectors."""

from __future__ import annotations

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

from strongroom.server.indexing.sync import SourceReport, SyncReport
from strongroom.server.models import SearchResult


class SyncProgressBar:
    """A per-source bar on stderr (documents, chunks, rate, ETA); silent when not a terminal."""

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
            f"{s.deleted} deleted, {len(s.failed)} failed ({s.chunks} chunks written)"
        )
        click.echo(line)
        if s.error:
            click.echo(f"  source failed: {s.error}")
        for item in s.failed:
            click.echo(f"  skipped {item.id}: {item.reason}")


def print_hits(result: SearchResult, snippet_chars: int) -> None:
    if not result.results:
        click.echo("No results.")
        return
    for rank, hit in enumerate(result.results, start=1):
        where = " > ".join(hit.headings)
        position = f"chunk {hit.chunk_index}" + (f", page {hit.page}" if hit.page else "")
        click.echo(
            click.style(f"{rank}. {hit.title}", bold=True) + f"  [{hit.source}]  score {hit.score:.4f}"
        )
        click.echo(f"   {hit.document_id} · {position}" + (f" · § {where}" if where else ""))
        snippet = " ".join(hit.text.split())
        if len(snippet) > snippet_chars:
            snippet = snippet[: snippet_chars - 1].rsplit(" ", 1)[0] + "…"
        click.echo(f"   {snippet}\n")


def print_status(info: dict[str, Any]) -> None:
    store = info["store"]
    click.echo(f"config:    {info['config'] or '(none: defaults and environment)'}")
    click.echo(f"store:     {store['chroma_url'] or 'embedded'} · data in {store['path']}")
    click.echo(f"model:     {info['model']}")
    click.echo(f"indexed:   {info['documents']} documents, {info['chunks']} chunks")
    for s in info["sources"]:
        synced = s["last_synced"] or "never"
        click.echo(
            f"  {s['name']} ({s['connector']}): {s['documents']} documents, {s['chunks']} chunks, "
            f"last synced {synced}" + (f", last error: {s['last_error']}" if s.get("last_error") else "")
        )


def print_connectors() -> None:
    from pydantic import SecretStr

    from strongroom.connectors.registry import installed_connectors

    for c in installed_connectors():
        click.echo(click.style(c.name, bold=True) + f"  ({c.package} {c.version})")
        if c.cls is None:
            click.echo(f"  broken: {c.error}")
            continue
        if c.cls.description:
            click.echo(f"  {c.cls.description}")
        for name, field in c.cls.Config.model_fields.items():
            annotation = field.annotation
            type_name = getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
            secret = annotation is SecretStr or "SecretStr" in str(annotation)
            default = (
                "required"
                if field.is_required()
                else f"default {field.get_default(call_default_factory=True)!r}"
            )
            desc = f" — {field.description}" if field.description else ""
            click.echo(f"  {name}: {type_name}, {default}{' (secret)' if secret else ''}{desc}")
