"""The web connector: pages fetched over HTTP(S) from a list of URLs and/or a sitemap.

It fetches exactly the configured ``urls`` and the pages a ``sitemap`` lists; it never follows
the links inside pages (it is not a crawler).
"""

from __future__ import annotations

import asyncio
import codecs
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from ..api import Connector, ConnectorError, Document
from ..filesystem.connector import title_from_name
from ..filesystem.extract import ExtractionWorker, Limits
from ..filesystem.formats import Parsed, ParseError, first_heading
from ..filesystem.formats.base import error_reason, tidy
from ..filesystem.formats.plaintext import decode_text
from .config import WebConfig
from .fetch import UNAVAILABLE, Fetched, Fetcher, FetchError, FetchSettings, http_date
from .sitemap import Sitemap, SitemapError, parse_sitemap
from .urls import Scope, UrlError, normalise, origin, resolve

logger = logging.getLogger(__name__)

#: Media types that are pages, and how each is read; any other type is skipped.
PAGE_TYPES = {"text/html": "html", "application/xhtml+xml": "html", "text/plain": "text"}
SITEMAP_MAX_BYTES = 50 * 1024 * 1024  # the sitemaps.org limit for one (uncompressed) file
MAX_SITEMAPS = 1000
MAX_SITEMAP_DEPTH = 3
MAX_WORKERS = 64
STATE_VERSION = 1


class WebConnector(Connector):
    """Web pages (HTML and plain text) from a list of URLs and/or a sitemap, fetched politely.

    Requests are limited per host (in flight and per second), retried with exponential backoff,
    size-capped while streaming, and conditional: the ETag and Last-Modified of each page are kept
    in :attr:`state`, and a ``304 Not Modified`` keeps the indexed page without fetching it again.
    """

    name = "web"
    description = (
        "Web pages over HTTP(S): listed URLs and a sitemap's pages (links in pages are not followed)."
    )
    Config = WebConfig
    config: WebConfig
    _parser: _PageParser  # for the run of documents() under way

    def __init__(self, config: WebConfig) -> None:
        super().__init__(config)

    async def estimated_count(self) -> int | None:
        """The number of listed URLs when there is no sitemap (a sitemap is only read by the run)."""
        if self.config.sitemap is not None:
            return None
        return min(len({normalise(url) for url in self.config.urls}), self.config.max_pages)

    async def documents(self) -> AsyncIterator[Document]:
        """Yield each fetched page; report 304s with :meth:`unchanged` and bad pages with :meth:`skip`."""
        config = self.config
        scope = Scope.of(config.origins(), config.allowed_prefixes)
        run = _Run(_PreviousState.load(self.state))
        async with _client(config) as client, _PageParser(config) as parser:
            self._parser = parser
            fetcher = Fetcher(
                client,
                _fetch_settings(config),
                {name: value.get_secret_value() for name, value in config.headers.items()},
                _sitemap_scope(config, scope).origins,
            )
            targets = await self._targets(fetcher, scope, run)
            async for outcome in self._fetch_all(fetcher, scope, targets, run.previous):
                if isinstance(outcome, _Page):
                    if run.page(outcome):
                        yield outcome.document
                elif isinstance(outcome, _NotModified):
                    if run.not_modified(outcome):
                        self.unchanged(outcome.id)
                elif isinstance(outcome, _Gone):
                    run.successes += 1  # the site answered: it is up
                    logger.warning("%s: HTTP %d, gone (left out of the index)", outcome.id, outcome.status)
                else:
                    run.failures.append(outcome)
                    run.carry(outcome.requested, outcome.id)
        if run.failures and run.successes == 0 and all(f.kind == UNAVAILABLE for f in run.failures):
            first = run.failures[0]
            raise ConnectorError(
                f"no page could be fetched ({len(run.failures)} of {len(targets)} failed); "
                f"{first.requested}: {first.reason}"
            )
        for failure in run.failures:
            self.skip(failure.id, failure.reason)
        self.state = run.new_state()

    async def _targets(self, fetcher: Fetcher, scope: Scope, run: _Run) -> list[str]:
        """The URLs to fetch: ``urls`` then the sitemap's pages, in scope, deduplicated, capped."""
        listed = [normalise(url) for url in self.config.urls]
        if self.config.sitemap is not None:
            listed += await self._sitemap_pages(fetcher, scope)
        targets: list[str] = []
        seen: set[str] = set()
        for url in listed:
            if url in seen:
                continue
            seen.add(url)
            if not scope.allows(url):
                self.skip(url, "outside the allowed hosts and path prefixes")
            elif len(targets) >= self.config.max_pages:
                self.skip(url, f"over the max_pages limit of {self.config.max_pages}")
            else:
                targets.append(url)
                continue
            run.carry(url, url)
        return targets

    async def _sitemap_pages(self, fetcher: Fetcher, scope: Scope) -> list[str]:
        """The page URLs of the sitemap, following a sitemap index; ConnectorError if unreadable."""
        assert self.config.sitemap is not None
        root = normalise(self.config.sitemap)
        sitemap_scope = _sitemap_scope(self.config, scope)
        pending = [(root, 0)]
        visited: set[str] = set()
        pages: list[str] = []
        while pending:
            url, depth = pending.pop(0)
            if url in visited:
                continue
            visited.add(url)
            if len(visited) > MAX_SITEMAPS:
                raise ConnectorError(f"sitemap {root}: more than {MAX_SITEMAPS} sitemap files")
            sitemap = await _read_sitemap(fetcher, url, sitemap_scope)
            pages += self._listed_pages(url, sitemap.pages)
            pending += self._listed_sitemaps(root, url, depth, sitemap.sitemaps, sitemap_scope)
        if not pages:  # more likely a broken site than an empty one: delete nothing on its word
            raise ConnectorError(f"sitemap {root} lists no pages")
        logger.info("sitemap %s lists %d pages", root, len(pages))
        return pages

    def _listed_pages(self, url: str, locs: Sequence[str]) -> list[str]:
        """The page URLs a sitemap lists, resolved against it (a bad one is skipped)."""
        pages: list[str] = []
        for loc in locs:
            try:
                pages.append(resolve(url, loc))
            except UrlError as exc:
                self.skip(loc, f"listed in sitemap {url}: {exc}")
        return pages

    def _listed_sitemaps(
        self, root: str, url: str, depth: int, locs: Sequence[str], sitemap_scope: Scope
    ) -> list[tuple[str, int]]:
        """The sitemaps a sitemap index at ``depth`` lists, with their depth, inside the allowed hosts."""
        children: list[tuple[str, int]] = []
        for loc in locs:
            try:
                child = resolve(url, loc)
            except UrlError as exc:
                self.skip(loc, f"listed in sitemap index {url}: {exc}")
                continue
            if depth + 1 > MAX_SITEMAP_DEPTH:
                raise ConnectorError(f"sitemap {root}: indexes nested more than {MAX_SITEMAP_DEPTH} deep")
            if not sitemap_scope.allows(child):
                self.skip(child, f"sitemap listed in {url} is outside the allowed hosts")
                continue
            children.append((child, depth + 1))
        return children

    async def _fetch_all(
        self, fetcher: Fetcher, scope: Scope, targets: list[str], previous: _PreviousState
    ) -> AsyncIterator[_Outcome]:
        """Fetch ``targets`` with a pool of workers; outcomes arrive in completion order."""
        if not targets:
            return
        todo: asyncio.Queue[str] = asyncio.Queue()
        for url in targets:
            todo.put_nowait(url)
        hosts = {origin(url) for url in targets}
        count = min(len(targets), self.config.concurrency_per_host * len(hosts), MAX_WORKERS)
        results: asyncio.Queue[_Outcome] = asyncio.Queue(maxsize=count)

        async def work() -> None:
            while True:
                try:
                    url = todo.get_nowait()
                except asyncio.QueueEmpty:
                    return
                await results.put(await self._page(fetcher, scope, url, previous))

        workers = [asyncio.create_task(work()) for _ in range(count)]
        try:
            for _ in targets:
                yield await results.get()
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _page(self, fetcher: Fetcher, scope: Scope, url: str, previous: _PreviousState) -> _Outcome:
        """Fetch and parse one page; never raises (but for cancellation)."""
        try:
            fetched = await fetcher.fetch(
                url,
                scope=scope,
                accept=PAGE_TYPES.__contains__,
                max_bytes=self.config.max_bytes,
                conditional=previous.conditional_headers,
            )
        except FetchError as exc:
            # Reported under the page it concerns, so that a sync keeps that page's indexed version.
            reached = exc.url or url
            doc_id = reached if reached != url else previous.redirects.get(url, url)
            return _Failed(url, doc_id, str(exc), exc.kind)
        except Exception as exc:  # one bad page never stops the source
            logger.warning("%s: unexpected error", url, exc_info=True)
            return _Failed(url, url, f"unexpected error: {error_reason(exc)}")
        if fetched.status == 304:
            if fetched.url not in previous.pages:
                return _Failed(url, fetched.url, "HTTP 304 Not Modified to an unconditional request")
            return _NotModified(url, fetched.url)
        if fetched.status in (404, 410):
            return _Gone(url, fetched.url, fetched.status)
        try:
            document = await self._parser.document(fetched)
        except ParseError as exc:
            return _Failed(url, fetched.url, str(exc))
        except Exception as exc:
            logger.warning("%s: unexpected error while parsing", fetched.url, exc_info=True)
            return _Failed(url, fetched.url, f"unexpected error: {error_reason(exc)}")
        return _Page(url, document, _validators(fetched))


class _PageParser:
    """Pages parsed one at a time in an extraction worker (a process stopped when a page takes
    longer than ``parse_timeout``), their text capped at ``max_text_chars``: page bytes are
    untrusted, and a few MB of deeply nested HTML can keep a parser busy for minutes."""

    def __init__(self, config: WebConfig) -> None:
        self._worker = ExtractionWorker(config.parse_timeout)
        self._limits = Limits(config.max_text_chars, config.max_bytes)
        self._turn = asyncio.Lock()

    async def __aenter__(self) -> _PageParser:
        return self

    async def __aexit__(self, *_: object) -> None:
        await asyncio.to_thread(self._worker.close)

    async def document(self, fetched: Fetched) -> Document:
        async with self._turn:  # the worker takes one page at a time
            return await asyncio.to_thread(build_document, fetched, self._worker, self._limits)


def build_document(fetched: Fetched, worker: ExtractionWorker, limits: Limits) -> Document:
    """A 200 response as a Document; ParseError if it has no text (blocking: call in a thread)."""
    encoding = _codec(fetched.charset)
    if PAGE_TYPES.get(fetched.content_type) == "html":
        parsed = worker.extract("page.html", fetched.body, limits, encoding)
    else:
        text = fetched.body.decode(encoding, errors="replace") if encoding else decode_text(fetched.body)
        if "\x00" in text:
            raise ParseError("binary content")
        if len(text) > limits.max_text_chars:
            raise ParseError(
                f"text of {len(text):,} characters, over the {limits.max_text_chars:,} limit (max_text_chars)"
            )
        parsed = Parsed(title=None, text=tidy(text))
    if not parsed.text.strip():
        raise ParseError("no text")
    parts = urlsplit(fetched.url)
    return Document(
        id=fetched.url,
        title=parsed.title or first_heading(parsed.text) or _title_from_url(fetched.url),
        text=parsed.text,
        uri=fetched.url,
        updated_at=http_date(fetched.headers.get("last-modified")),
        metadata={"host": parts.netloc, "path": parts.path, "content_type": fetched.content_type},
    )


def _title_from_url(url: str) -> str:
    """``https://example.com/docs/refund-policy.html`` → ``Refund policy``; the host for ``/``."""
    parts = urlsplit(url)
    segments = [s for s in unquote(parts.path).split("/") if s]
    return title_from_name(segments[-1]) if segments else parts.netloc


def _codec(name: str | None) -> str | None:
    """A character set name Python knows, else None (the bytes are sniffed instead)."""
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _validators(fetched: Fetched) -> dict[str, str]:
    entry = {"etag": fetched.headers.get("etag"), "last_modified": fetched.headers.get("last-modified")}
    return {key: value for key, value in entry.items() if value}


def _sitemap_scope(config: WebConfig, scope: Scope) -> Scope:
    """Sitemaps may live anywhere on the allowed origins and on the sitemap's own origin."""
    own = {origin(config.sitemap)} if config.sitemap else set()
    return Scope.of({*scope.origins, *own}, ["/"])


def _client(config: WebConfig) -> httpx.AsyncClient:
    """The shared client: only the User-Agent is set here; secret headers are added per request."""
    return httpx.AsyncClient(
        headers={"User-Agent": config.user_agent},
        timeout=httpx.Timeout(config.timeout_s),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=MAX_WORKERS * 2, max_keepalive_connections=MAX_WORKERS),
    )


def _fetch_settings(config: WebConfig) -> FetchSettings:
    return FetchSettings(
        timeout_s=config.timeout_s,
        retries=config.retries,
        backoff_s=config.backoff_s,
        max_retry_wait_s=config.max_retry_wait_s,
        concurrency_per_host=config.concurrency_per_host,
        requests_per_second=config.requests_per_second,
    )


async def _read_sitemap(fetcher: Fetcher, url: str, scope: Scope) -> Sitemap:
    try:
        fetched = await fetcher.fetch(url, scope=scope, accept=lambda _: True, max_bytes=SITEMAP_MAX_BYTES)
    except FetchError as exc:
        raise ConnectorError(f"sitemap {url}: {exc}") from None
    if fetched.status != 200:
        reason = httpx.codes.get_reason_phrase(fetched.status)
        raise ConnectorError(f"sitemap {url}: HTTP {fetched.status} {reason}".rstrip())
    try:
        return parse_sitemap(fetched.body)
    except SitemapError as exc:
        raise ConnectorError(f"sitemap {url}: {exc}") from None


# --- what one page's fetch came to, and the state carried to the next run ---------------------


@dataclass(frozen=True)
class _Page:
    requested: str
    document: Document
    validators: dict[str, str]


@dataclass(frozen=True)
class _NotModified:
    requested: str
    id: str


@dataclass(frozen=True)
class _Gone:
    requested: str
    id: str
    status: int


@dataclass(frozen=True)
class _Failed:
    requested: str
    id: str
    """The document the failure concerns: the page a known redirect leads to, else the URL."""
    reason: str
    kind: str = "page"


_Outcome = _Page | _NotModified | _Gone | _Failed


@dataclass(frozen=True)
class _PreviousState:
    """The last successful run's memory: validators per page, and where listed URLs redirected."""

    pages: Mapping[str, Mapping[str, str]]
    redirects: Mapping[str, str]

    @classmethod
    def load(cls, state: Mapping[str, Any]) -> _PreviousState:
        """Tolerant of a missing, older or hand-edited state: anything unexpected is ignored."""
        if state.get("version") != STATE_VERSION:
            return cls({}, {})
        pages = state.get("pages")
        redirects = state.get("redirects")
        return cls(
            {
                url: {k: v for k, v in entry.items() if isinstance(v, str)}
                for url, entry in (pages.items() if isinstance(pages, dict) else [])
                if isinstance(entry, dict)
            },
            {
                url: target
                for url, target in (redirects.items() if isinstance(redirects, dict) else [])
                if isinstance(target, str)
            },
        )

    def conditional_headers(self, url: str) -> dict[str, str]:
        """``If-None-Match``/``If-Modified-Since`` for a page fetched before with validators."""
        entry = self.pages.get(url) or {}
        headers = {}
        if etag := entry.get("etag"):
            headers["If-None-Match"] = etag
        if last_modified := entry.get("last_modified"):
            headers["If-Modified-Since"] = last_modified
        return headers


@dataclass
class _Run:
    """One run's bookkeeping: documents yielded, failures, and the state for the next run."""

    previous: _PreviousState
    pages: dict[str, Mapping[str, str]] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    failures: list[_Failed] = field(default_factory=list)
    done: set[str] = field(default_factory=set)
    successes: int = 0

    def page(self, outcome: _Page) -> bool:
        """Note a fetched page; whether to yield it (not if another URL already led to it)."""
        self.successes += 1
        doc_id = outcome.document.id
        self._redirected(outcome.requested, doc_id)
        if doc_id in self.done:
            return False
        self.done.add(doc_id)
        if outcome.validators:
            self.pages[doc_id] = outcome.validators
        return True

    def not_modified(self, outcome: _NotModified) -> bool:
        """Note a 304 (its validators carry over); whether to report it unchanged (not yet done)."""
        self.successes += 1
        self._redirected(outcome.requested, outcome.id)
        self.pages[outcome.id] = self.previous.pages[outcome.id]
        if outcome.id in self.done:
            return False
        self.done.add(outcome.id)
        return True

    def _redirected(self, requested: str, doc_id: str) -> None:
        if requested != doc_id:
            self.redirects[requested] = doc_id

    def carry(self, requested: str, doc_id: str) -> None:
        """Keep the previous state of a page kept in the index without being fetched."""
        if doc_id in self.previous.pages:
            self.pages[doc_id] = self.previous.pages[doc_id]
        if requested in self.previous.redirects:
            self.redirects[requested] = self.previous.redirects[requested]

    def new_state(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, "pages": self.pages, "redirects": self.redirects}
