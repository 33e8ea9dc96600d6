"""The Connector API: what a data source hands to Strongroom.

A connector knows its source and nothing else. It yields :class:`Document` objects from
one async generator and never imports the vector store, the embedding model or MCP.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

JsonScalar = str | int | float | bool | None


class ConnectorError(Exception):
    """A source-level failure: the source cannot be read at all (down, bad credentials, bad path).

    Raising it stops this source's run; Strongroom reports it in the sync summary, keeps the
    source's already-indexed content untouched and goes on with the other sources.
    """


class SkippedItem(BaseModel):
    """An item the connector could not turn into a document, with the reason (e.g. a corrupt PDF)."""

    model_config = ConfigDict(frozen=True)

    id: str
    reason: str


class Document(BaseModel):
    """One unit of a source: a file, a page, a record.

    ``text`` uses a light Markdown convention that the chunker understands: ``#`` headings,
    blank lines between paragraphs and a form feed (``\\f``) between PDF pages.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, description="Stable and unique within the source.")
    title: str
    text: str
    uri: str = ""
    updated_at: datetime | None = None
    metadata: dict[str, JsonScalar] = Field(default_factory=dict)
    fields: dict[str, Any] | None = Field(
        default=None, description="Typed values of a record (rows, CSV lines); None for prose."
    )


class Config(BaseModel):
    """Base class for a connector's settings. Unknown keys are errors; use SecretStr for secrets.

    Relative paths (fields typed :class:`pathlib.Path`) are resolved against the directory of
    the configuration file that declared them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _resolve_relative_paths(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base_dir")
        if isinstance(value, Path) and base is not None and not value.is_absolute():
            return (Path(base) / value).resolve()
        return value


ConnectorConfig = Config  # the name ``Config`` is shadowed inside Connector


def in_scope(item_id: str, scopes: AbstractSet[str]) -> bool:
    """Whether ``item_id`` is one of ``scopes`` or lies under one (``scope/...``): the items a
    run of :meth:`Connector.documents_in` covers."""
    end = len(item_id)
    while end != -1:
        if item_id[:end] in scopes:
            return True
        end = item_id.rfind("/", 0, end)
    return False


class Connector(abc.ABC):
    """Base class of every connector.

    Subclasses set ``name`` (the value of ``connector =`` in the configuration), a nested or
    referenced ``Config`` model, and implement :meth:`documents`; those that can read part of
    their source also implement :meth:`documents_in` and set ``partial``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Config: ClassVar[type[ConnectorConfig]]
    partial: ClassVar[bool] = False
    """Whether :meth:`documents_in` is implemented; otherwise every run covers the whole source."""

    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config
        self.skipped: list[SkippedItem] = []
        self.kept: set[str] = set()
        #: JSON-serialisable memory between runs (ETags, a high-water mark, ...). Strongroom
        #: loads it before :meth:`documents` and saves it only after a run that succeeded.
        self.state: dict[str, Any] = {}

    def skip(self, item_id: str, reason: str) -> None:
        """Record an item that could not be read; the sync summary lists it and goes on.

        Its previously indexed version, if any, is kept.
        """
        self.skipped.append(SkippedItem(id=item_id, reason=reason))

    def unchanged(self, item_id: str) -> None:
        """Say that an item still exists and has not changed since the last run.

        For incremental sources (conditional HTTP requests, an ``updated_at`` column): the
        item is not yielded again, and its indexed version is kept rather than deleted.
        """
        self.kept.add(item_id)

    async def estimated_count(self) -> int | None:
        """How many documents a run will yield, if cheap to know (drives the progress bar ETA)."""
        return None

    @abc.abstractmethod
    def documents(self) -> AsyncIterator[Document]:
        """Yield every document of the source. Raise ConnectorError if the source is unreadable."""

    def documents_in(self, scopes: Sequence[str]) -> AsyncIterator[Document]:
        """Optional (see ``partial``): :meth:`documents` for part of the source only, the items
        :func:`in_scope` of ``scopes`` (ids, or id prefixes ending before a ``/``: the files and
        folders a watcher saw change).

        Items in scope that are neither yielded, nor reported with :meth:`unchanged` or
        :meth:`skip`, are deleted from the index; items out of scope are left as they are, so
        ``state`` must end up updated for the items in scope and unchanged for the others.
        """
        raise NotImplementedError(f"the {self.name} connector reads its whole source on every run")
