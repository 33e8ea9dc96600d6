"""The composition root: every service of one configuration, wired in one place.

:func:`build_app` is the only place where the catalog, vector store, embedder, retriever,
indexer, knowledge base, rules, answer checker, session memory, audit log, exposure ledger and
guard are constructed. The CLI, the MCP server (its lifespan yields the App), tests and
benchmarks all build through it.

Each part is built on first use and then kept, so a command pays only for what it touches: the
operator commands (audit, budget, canary list, rules check, guard) read ``catalog``, ``audit``
or ``ledger`` and never load the model or open Chroma. Even the knowledge base is cheap to
build: the embedder loads its model, and the vector store opens Chroma, on first use.

A test may replace a part before anything uses it, by assigning it (``app.guard = Guard(...)``
with a fake clock); the parts built after it then use the replacement.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import TYPE_CHECKING

from strongroom.server.errors import StoreUnavailable
from strongroom.server.settings import Settings
from strongroom.server.store.audit import Anchor, AuditLog, AuditRecord, GuardEvent, VerifyResult
from strongroom.server.store.catalog import Catalog
from strongroom.server.store.database import Database
from strongroom.server.store.exposure import ExposureLedger
from strongroom.server.store.sqlite import SqliteDatabase

# The services are imported where they are built: importing them all (numpy, CEL, the
# connectors) would double the start-up of the operator commands, which need only the stores.
if TYPE_CHECKING:
    from strongroom.server.answers.checker import AnswerChecker
    from strongroom.server.answers.session import SessionMemory
    from strongroom.server.embedder import Embedder
    from strongroom.server.guard.gate import Guard
    from strongroom.server.indexing.sync import Indexer
    from strongroom.server.knowledge import KnowledgeBase
    from strongroom.server.retrieval.pipeline import Retriever
    from strongroom.server.rules.service import Rules
    from strongroom.server.store.vectors import VectorStore

# The stores' values the operator commands handle; front ends import them from here (docs/architecture.md#layers).
__all__ = [
    "Anchor",
    "App",
    "AuditRecord",
    "ExposureLedger",
    "GuardEvent",
    "VerifyResult",
    "build_app",
]


SEARCH_THREADS = 8
"""Searches whose keyword side can run at once beside their dense side; more wait their turn."""


def build_app(settings: Settings, *, embedder: Embedder | None = None) -> App:
    """The services of ``settings``, each built on first use; ``embedder`` shares a loaded model."""
    return App(settings, embedder)


class App:
    """Every service of one configuration (see the module docstring); build it with :func:`build_app`."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder

    # -- stores ----------------------------------------------------------------------------------

    @cached_property
    def database(self) -> Database:
        """Where the catalog, ledger and audit log live: the SQLite file in the data directory, or
        the PostgreSQL server of ``store.catalog_url`` (shared by replicas)."""
        store = self.settings.store
        if store.catalog_url is None:
            return SqliteDatabase(self.settings.catalog_path, store.busy_timeout_s)
        from strongroom.server.store.postgres import PostgresDatabase

        return PostgresDatabase(
            store.catalog_url, self._catalog_password(), store.busy_timeout_s, store.catalog_pool_size
        )

    def _catalog_password(self) -> str | None:
        store = self.settings.store
        if store.catalog_password is not None:
            return store.catalog_password.get_secret_value()
        if store.catalog_password_file is None:
            return None  # libpq's own PGPASSWORD / ~/.pgpass, or no password
        path = self.settings.resolve(store.catalog_password_file)
        try:
            return path.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, UnicodeDecodeError, IndexError) as exc:
            raise StoreUnavailable(
                f"store.catalog_password_file {path} cannot be read ({type(exc).__name__}): "
                "check that it exists and holds the password on its first line"
            ) from exc

    @cached_property
    def catalog(self) -> Catalog:
        """Documents, chunks, keyword index, sync state, canaries."""
        return Catalog(self.database)

    @cached_property
    def vectors(self) -> VectorStore:
        """The vector store; Chroma opens on first search or write."""
        from strongroom.server.store.vectors import VectorStore

        return VectorStore(self.settings.store, self.settings.data_dir)

    @cached_property
    def audit(self) -> AuditLog:
        """The hash-chained audit log (beside the catalog)."""
        return AuditLog(self.database)

    @cached_property
    def ledger(self) -> ExposureLedger:
        """What each principal has been shown: budgets, novelty, rate slots (beside the catalog)."""
        return ExposureLedger(self.database)

    # -- services --------------------------------------------------------------------------------

    @cached_property
    def embedder(self) -> Embedder:
        """The embedding model; it loads on first use (or from ``start_loading``)."""
        if self._embedder is not None:
            return self._embedder
        from strongroom.server.embedder import Embedder

        return Embedder(self.settings.embedding, self.settings.base_dir)

    @cached_property
    def retriever(self) -> Retriever:
        """Hybrid search: dense and keyword candidates, fused and shaped into hits."""
        from strongroom.server.retrieval.pipeline import Retriever

        return Retriever(
            self.settings.retrieval, self.catalog, self.vectors, self.embedder, self._search_threads
        )

    @cached_property
    def _search_threads(self) -> ThreadPoolExecutor:
        """Threads for the keyword side of searches (started as searches need them)."""
        return ThreadPoolExecutor(SEARCH_THREADS, thread_name_prefix="search-keyword")

    @cached_property
    def indexer(self) -> Indexer:
        """Incremental, crash-safe sync of the configured sources."""
        from strongroom.server.indexing.sync import Indexer

        return Indexer(self.settings, self.catalog, self.vectors, self.embedder)

    @cached_property
    def knowledge(self) -> KnowledgeBase:
        """search, read_document, list_sources, record and sync as plain methods."""
        from strongroom.server.knowledge import KnowledgeBase

        return KnowledgeBase(
            self.settings,
            catalog=self.catalog,
            vectors=self.vectors,
            embedder=self.embedder,
            retriever=self.retriever,
            indexer=self.indexer,
        )

    @cached_property
    def rules(self) -> Rules:
        """The configured rules file, compiled (RulesError if it is broken; none: no rule sets)."""
        from strongroom.server.rules.service import Rules

        rules = Rules(self.settings, self.catalog)
        rules.load()
        return rules

    @cached_property
    def checker(self) -> AnswerChecker:
        """check_answer's engine."""
        from strongroom.server.answers.checker import AnswerChecker

        return AnswerChecker(self.settings.answers, self.embedder, self.catalog)

    @cached_property
    def memory(self) -> SessionMemory:
        """The rule decisions each caller was given (check_answer accepts them as citations)."""
        from strongroom.server.answers.session import SessionMemory

        return SessionMemory()

    @cached_property
    def guard(self) -> Guard:
        """The single call path: access, budgets, canaries, the audit trail."""
        from strongroom.server.guard.digest_key import digest_key
        from strongroom.server.guard.gate import Guard

        return Guard(
            self.settings.guard,
            self.audit,
            self.ledger,
            _Inventory(self),
            digest_key=digest_key(self.settings),
        )

    def close(self) -> None:
        """Close the database if it was opened."""
        if "_search_threads" in self.__dict__:
            self._search_threads.shutdown(wait=True)
        if "database" in self.__dict__:
            self.database.close()


class _Inventory:
    """The guard's view of the index: the knowledge base's, built when the guard first asks (a
    server builds its guard before the handshake and the knowledge base after it)."""

    def __init__(self, app: App) -> None:
        self._app = app

    def source_sizes(self) -> dict[str, int]:
        return self._app.knowledge.source_sizes()

    def canary_documents(self) -> set[str]:
        return self._app.knowledge.canary_documents()
