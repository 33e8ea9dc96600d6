"""strongroom-notes: a Strongroom connector for a notes app's JSON export.

The export is one JSON file holding a list of notes::

    [{"id": "n-101", "title": "Wi-Fi for visitors", "body": "...", "tags": ["office"],
      "updated": "2025-03-02T09:15:00Z"}, ...]

Each usable note becomes one :class:`~strongroom.connectors.Document`. A note that cannot be used
(no body, a malformed entry, a repeated id) is skipped with a reason and the others go on; a file
that is missing or is not a notes export fails the whole source with a ConnectorError, which
leaves what Strongroom already indexed from it untouched.

The connector keeps each note's ``updated`` stamp in ``self.state`` and, on the next run, reports
a note whose stamp has not moved with ``self.unchanged(id)`` instead of yielding it again: the
pattern an API-backed source uses to avoid downloading what it already has.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from strongroom.connectors import Config, Connector, ConnectorError, Document

__version__ = "0.1.0"
__all__ = ["NotesConfig", "NotesConnector"]


class NotesConfig(Config):
    """The keys of a ``connector = "notes"`` source in strongroom.toml."""

    path: Path = Field(
        description="The notes export: a JSON list of notes (id, title, body, tags, updated). "
        "A relative path is relative to the configuration file."
    )
    tags: list[str] = Field(
        default_factory=list,
        description="Only index notes carrying at least one of these tags; every note when empty.",
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="Token of the notes service's API. A file export does not need it; it shows "
        "that a SecretStr setting never appears in listings, logs or errors.",
    )


class Note(BaseModel):
    """One entry of the export, as the notes app writes it (unknown keys are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    title: str = ""
    body: str
    tags: list[str] = Field(default_factory=list)
    updated: datetime | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # The app writes numeric ids in older exports; bool is an int in Python but never an id.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class NotesConnector(Connector):
    """Notes from a notes app's JSON export file."""

    name = "notes"
    description = "Notes from a notes app's JSON export (title, body, tags, last update)."
    Config = NotesConfig
    config: NotesConfig

    async def documents(self) -> AsyncIterator[Document]:
        entries = await asyncio.to_thread(self._read)
        export = str(self.config.path)
        before: dict[str, str] = self.state.get("updated", {}) if self.state.get("export") == export else {}
        stamps: dict[str, str] = {}
        wanted = set(self.config.tags)
        seen: set[str] = set()
        for index, entry in enumerate(entries):
            try:
                note = Note.model_validate(entry)
            except ValidationError as exc:
                self.skip(_entry_id(entry, index), f"not a note: {_first_problem(exc)}")
                continue
            if note.id in seen:
                self.skip(note.id, "the id appears more than once in the export; the first is kept")
                continue
            seen.add(note.id)
            if wanted and not wanted.intersection(note.tags):
                continue  # filtered out: not indexed (and removed from the index if it was)
            if not note.body.strip():
                self.skip(note.id, "empty note")
                continue
            stamp = note.updated.isoformat() if note.updated else None
            if stamp is not None:
                stamps[note.id] = stamp
                if before.get(note.id) == stamp:
                    self.unchanged(note.id)
                    continue
            yield self._document(note)
        # Saved by Strongroom only when the whole run succeeds.
        self.state = {"export": export, "updated": stamps}

    async def estimated_count(self) -> int | None:
        try:
            return len(await asyncio.to_thread(self._read))
        except ConnectorError:
            return None

    def _read(self) -> list[Any]:
        """The export's entries; ConnectorError when the file as a whole is unusable."""
        path = self.config.path.expanduser()
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError as exc:
            raise ConnectorError(f"{path}: notes export not found") from exc
        except IsADirectoryError as exc:
            raise ConnectorError(f"{path}: is a folder, not a notes export file") from exc
        except OSError as exc:
            raise ConnectorError(f"{path}: cannot read: {exc.strerror or exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConnectorError(f"{path}: not a JSON notes export ({exc})") from exc
        if not isinstance(data, list):
            raise ConnectorError(f"{path}: expected a JSON list of notes, found a JSON {type(data).__name__}")
        return data

    def _document(self, note: Note) -> Document:
        title = note.title.strip() or _first_line(note.body)
        return Document(
            id=note.id,
            title=title,
            text=note.body.strip(),
            uri=f"{self.config.path.expanduser().resolve().as_uri()}#{quote(note.id, safe='')}",
            updated_at=note.updated,
            metadata={"tags": ", ".join(note.tags)},
        )


def _entry_id(entry: Any, index: int) -> str:
    if isinstance(entry, dict) and isinstance(entry.get("id"), str | int) and str(entry["id"]):
        return str(entry["id"])
    return f"entry {index + 1}"


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(p) for p in error["loc"])
    return f"{where}: {error['msg']}" if where else error["msg"]


def _first_line(text: str, limit: int = 60) -> str:
    """A title for an untitled note: its first line, cut at a word boundary."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(line) <= limit:
        return line
    return line[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:.") + "…"
