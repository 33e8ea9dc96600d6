"""Configuration: one model per concern, loaded once from TOML and the environment.

Every field can be overridden by ``STRONGROOM_<SECTION>__<FIELD>``; the environment wins
over the file. Relative paths are resolved against the configuration file's directory.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from strongroom.server.settings.guard import GuardSettings
from strongroom.server.settings.schedule import Schedule, parse_refresh

DEFAULT_CONFIG_NAME = "strongroom.toml"


class ConfigError(Exception):
    """The configuration is unusable; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    """Where the index lives."""

    path: Path = Field(default=Path(".strongroom"), description="Data directory: embedded Chroma + catalog.")
    chroma_url: str | None = Field(default=None, description="Use a Chroma server (`chroma run`) instead.")
    collection: str = Field(default="strongroom", description="Chroma collection name.")
    busy_timeout_s: float = Field(
        default=5.0,
        gt=0,
        le=600,
        description="How long a write waits for another process's lock on the catalog before "
        "failing with 'the index is busy'.",
    )
    catalog_url: str | None = Field(
        default=None,
        description="postgresql://USER@HOST:PORT/DATABASE: keep the catalog, keyword index, budgets "
        "and audit log on a PostgreSQL server shared by several `serve` replicas (needs chroma_url). "
        "Unset: an SQLite file in the data directory.",
    )
    catalog_password: SecretStr | None = Field(
        default=None,
        description="The PostgreSQL password; set it as STRONGROOM_STORE__CATALOG_PASSWORD, never in a file.",
    )
    catalog_password_file: Path | None = Field(
        default=None,
        description="A file whose first line is the PostgreSQL password (e.g. a mounted secret).",
    )
    catalog_pool_size: int = Field(
        default=8, ge=1, le=100, description="PostgreSQL connections each process may open."
    )

    @field_validator("catalog_url")
    @classmethod
    def _postgres_url(cls, url: str | None) -> str | None:
        # The message never repeats the URL: it may hold a password.
        if url is None:
            return None
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("catalog_url must be a postgresql:// URL")
        if "@" in url and ":" in url.split("://", 1)[1].split("@", 1)[0]:
            raise ValueError(
                "catalog_url must not hold the password: set STRONGROOM_STORE__CATALOG_PASSWORD "
                "or catalog_password_file instead"
            )
        return url

    @model_validator(mode="after")
    def _shared_vectors(self) -> StoreSettings:
        if self.catalog_url is not None and self.chroma_url is None:
            raise ValueError(
                "catalog_url needs chroma_url: replicas sharing a PostgreSQL catalog must share one "
                "Chroma server too (an embedded Chroma is private to one host)"
            )
        return self


class EmbeddingSettings(_Section):
    """Which model turns text into vectors."""

    model: str = Field(
        default="all-MiniLM-L6-v2",
        description="The packaged offline all-MiniLM-L6-v2 by default; any sentence-transformers path.",
    )
    backend: Literal["onnx", "torch"] | None = Field(
        default=None,
        description="onnx (packaged int8 all-MiniLM-L6-v2, no torch) or torch (sentence-transformers);"
        " unset: onnx for the packaged model, torch for any other.",
    )
    batch_size: int = Field(
        default=8,
        ge=1,
        le=1024,
        description="Passages per encoder call. Length-sorted batches pad little, so small ones lose"
        " nothing; measured here, 8 encodes 1.12x the passages/s of 32 (ONNX int8) in a third of the"
        " memory (ONNX Runtime's arena keeps its largest batch's buffers).",
    )
    sort_window: int = Field(
        default=256,
        ge=1,
        le=8192,
        description="Passages a sync gathers and sorts by length before encoding them in batches of"
        " batch_size (less padding) and writes together; at least batch_size.",
    )
    device: str = Field(default="cpu", description="torch device (the torch backend only).")


class ChunkingSettings(_Section):
    """How documents are cut into passages."""

    max_chars: int = Field(default=1000, ge=200, le=20_000)
    min_chars: int = Field(default=200, ge=0)


class RetrievalSettings(_Section):
    """Hybrid search knobs (see the README's retrieval section for when to change them)."""

    default_k: int = Field(default=5, ge=1)
    max_k: int = Field(default=20, ge=1, le=100)
    candidates: int = Field(default=150, ge=5, le=500, description="Candidates per ranker before fusion.")
    keyword_postings: int = Field(
        default=10_000,
        ge=100,
        description="Passages the keyword query may score: past that, its most common words are left out "
        "(the rarest always counts; a huge number: every word). BM25 scores every passage holding any of them.",
    )
    fusion: Literal["relative", "rrf"] = Field(
        default="relative",
        description="How dense and keyword rankings combine: weighted normalised scores, or RRF.",
    )
    fusion_level: Literal["document", "chunk"] = Field(
        default="document",
        description="Fuse documents (each ranker's best chunk per document) or single chunks.",
    )
    document_evidence: float = Field(
        default=0.7,
        ge=0.0,
        le=1.0,
        description="In document fusion, how much a document's 2nd and 3rd best passages add to its score "
        "(times this, and its square; 0: its best passage alone).",
    )
    dense_weight: float = Field(
        default=0.75, ge=0.0, le=1.0, description="Share of the dense score in relative fusion."
    )
    identifier_dense_weight: float = Field(
        default=0.75,
        ge=0.0,
        le=1.0,
        description="Dense share when the query names an identifier (os.path.join, ENOENT, a code).",
    )
    confidence_gain: float = Field(
        default=1.0,
        ge=0.0,
        le=10.0,
        description="How much more say a ranker gets when its first document stands out (0: fixed weights).",
    )
    identifiers: bool = Field(
        default=True, description="Match identifiers in the query word for word, with more keyword weight."
    )
    per_document: int = Field(default=1, ge=1, le=100, description="At most this many hits per document.")
    rrf_k: int = Field(default=60, ge=1, description="Reciprocal rank fusion constant.")
    snippet_chars: int = Field(default=240, ge=40)


class ServerSettings(_Section):
    """The MCP server and its transports."""

    transport: Literal["stdio", "sse", "http"] = "stdio"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    allowed_origins: list[str] = Field(
        default_factory=list, description="Extra Origin values accepted over HTTP (loopback always is)."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list, description="Extra Host values accepted over HTTP (loopback always is)."
    )
    max_read_chars: int = Field(default=4000, ge=100, le=100_000, description="Cap of one read window.")
    sync_on_start: bool = Field(
        default=False, description="Sync every source in the background when serving."
    )
    watch: bool = Field(
        default=True, description="While serving, watch filesystem sources and sync the files that change."
    )
    debounce_s: float = Field(
        default=1.0, ge=0.05, le=60, description="Quiet seconds after a file change before its sync."
    )
    watch_polling: bool = Field(
        default=False, description="Poll for file changes (network drives); automatic without native events."
    )
    poll_interval_s: float = Field(default=5.0, ge=0.5, le=3600, description="Seconds between polls.")
    public_url: str | None = Field(
        default=None,
        description="This server's URL as clients see it (protected-resource metadata); default from host/port.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    shutdown_grace_s: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="On SIGTERM/SIGINT: how long calls in flight may take to finish before the server stops.",
    )


class RulesSettings(_Section):
    """Business rules: a rules file whose rule sets become MCP tools (see README)."""

    file: Path | None = Field(default=None, description="Rules file (YAML); relative to this config file.")
    reload: bool = Field(default=True, description="Reload the rules when the file (or the index) changes.")
    reload_interval: float = Field(default=2.0, gt=0, le=3600, description="Seconds between change checks.")
    today: date | None = Field(
        default=None, description="Pin `today` for demos and tests; leave unset to use the real clock."
    )


class AnswersSettings(_Section):
    """check_answer: what makes a cited passage support a sentence of a draft.

    A sentence is supported when every content-bearing term of it is stated in what it cites,
    each number it states is stated there about the same thing, no cited statement about the
    same thing says the opposite, and it is at least ``min_similarity`` close in meaning.
    """

    min_similarity: float = Field(
        default=0.35, ge=0, le=1, description="Floor: similarity to the citation's closest sentence."
    )
    statement_coverage: float = Field(
        default=0.7,
        ge=0,
        le=1,
        description="Share of a sentence's terms a cited statement must share to be about the same "
        "thing: to state one of its numbers, or to contradict it.",
    )
    min_content_words: int = Field(
        default=3, ge=0, description="Sentences with fewer content words (and no numbers) are not checked."
    )
    require_retrieved: bool = Field(
        default=True,
        description="A cited passage the caller was not shown in its budget window fails the check "
        "(when false it is only ignored; it is never read out either way).",
    )
    max_draft_chars: int = Field(default=20_000, ge=100, le=1_000_000)
    max_citations: int = Field(default=50, ge=1, le=1000)


class SourceSettings(BaseModel):
    """One ``[[sources]]`` entry. Connector-specific keys are checked by the connector's Config."""

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    connector: str
    description: str = ""
    labels: list[str] = Field(default_factory=list)
    refresh: str | None = Field(
        default=None, description='While serving, sync on this schedule: "15m", "1h" or a cron expression.'
    )
    watch: bool | None = Field(
        default=None,
        description="Filesystem sources: watch for changes while serving (default: [server] watch).",
    )

    @field_validator("refresh")
    @classmethod
    def _check_refresh(cls, value: str | None) -> str | None:
        if value is not None:
            parse_refresh(value)
        return value

    @model_validator(mode="after")
    def _check_watch(self) -> SourceSettings:
        if self.watch and self.connector != "filesystem":
            raise ValueError('only filesystem sources can be watched; remove watch and set refresh = "15m"')
        return self

    def schedule(self) -> Schedule | None:
        """The parsed ``refresh`` schedule, if any."""
        return parse_refresh(self.refresh) if self.refresh else None

    def watched(self, server: ServerSettings) -> bool:
        """Whether a server with these settings watches this source's files."""
        return self.connector == "filesystem" and (server.watch if self.watch is None else self.watch)

    def connector_options(self) -> dict[str, Any]:
        """The keys meant for the connector's own Config."""
        return dict(self.model_extra or {})


class Settings(BaseSettings):
    """The whole configuration, built once at start-up and passed down."""

    model_config = SettingsConfigDict(
        env_prefix="STRONGROOM_", env_nested_delimiter="__", extra="forbid", frozen=True
    )

    store: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    server: ServerSettings = ServerSettings()
    guard: GuardSettings = GuardSettings()
    rules: RulesSettings = RulesSettings()
    answers: AnswersSettings = AnswersSettings()
    sources: list[SourceSettings] = Field(default_factory=list)
    principal: str = Field(default="local", description="Who is calling over stdio (STRONGROOM_PRINCIPAL).")
    documents: Path | None = Field(
        default=None,
        description="Shortcut: index this folder as a filesystem source named 'documents'.",
    )
    config_file: Path | None = Field(default=None, exclude=True)
    base_dir: Path = Field(default=Path("."), exclude=True)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[SourceSettings]) -> list[SourceSettings]:
        seen: set[str] = set()
        for source in sources:
            if source.name in seen:
                raise ValueError(f"duplicate source name {source.name!r}")
            seen.add(source.name)
        return sources

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The environment overrides the file, which arrives as init kwargs.
        return (env_settings, init_settings)

    @property
    def data_dir(self) -> Path:
        return self.resolve(self.store.path)

    @property
    def catalog_path(self) -> Path:
        """The catalog file: documents, keyword index, sync state, budgets, audit log."""
        return self.data_dir / "catalog.sqlite3"

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    def all_sources(self) -> list[SourceSettings]:
        """Configured sources plus the ``documents`` shortcut, if set."""
        sources = list(self.sources)
        if self.documents is not None and not any(s.name == "documents" for s in sources):
            shortcut = {
                "name": "documents",
                "connector": "filesystem",
                "description": "Documents folder",
                "path": str(self.resolve(self.documents)),
            }
            sources.append(SourceSettings.model_validate(shortcut))
        return sources

    def source(self, name: str) -> SourceSettings:
        for source in self.all_sources():
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.all_sources()) or "none configured"
        raise ConfigError(f"unknown source {name!r} (known: {known})")


def default_config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$STRONGROOM_CONFIG``, else ``./strongroom.toml``."""
    env = os.environ if environ is None else environ
    return Path(env.get("STRONGROOM_CONFIG") or DEFAULT_CONFIG_NAME)


def load_settings(path: Path | None = None, *, required: bool | None = None) -> Settings:
    """Load the configuration file (if any) and the environment.

    ``path`` None means the default location, which may be absent (defaults and environment
    apply). An explicitly named file must exist.
    """
    explicit = path is not None or "STRONGROOM_CONFIG" in os.environ
    config_path = (path or default_config_path()).expanduser()
    must_exist = explicit if required is None else required
    data: dict[str, Any] = {}
    if config_path.is_file():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{config_path}: invalid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{config_path}: cannot read: {exc.strerror}") from exc
        base_dir = config_path.resolve().parent
        file_ref: Path | None = config_path.resolve()
    elif must_exist:
        raise ConfigError(f"{config_path}: configuration file not found")
    else:
        base_dir = Path.cwd()
        file_ref = None
    where = str(file_ref) if file_ref else "environment"
    try:
        return Settings(**data, config_file=file_ref, base_dir=base_dir)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where, data)) from exc


def format_validation_error(exc: ValidationError, where: str, data: Mapping[str, Any] | None = None) -> str:
    """One line per problem, naming the file and the dotted key (sources by name, not index)."""
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        if data and len(loc) >= 2 and loc[0] == "sources" and isinstance(loc[1], int):
            sources = data.get("sources") or []
            if loc[1] < len(sources) and isinstance(sources[loc[1]], dict) and "name" in sources[loc[1]]:
                loc[1] = sources[loc[1]]["name"]
        key = ".".join(str(p) for p in loc) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {key}: {msg}")
    return "\n".join(lines)
