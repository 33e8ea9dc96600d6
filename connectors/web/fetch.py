"""HTTP fetching: one client, per-host concurrency and rate limits, retries, redirects, size caps."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx
from aiolimiter import AsyncLimiter
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential, wait_random

from ..filesystem.reader import format_size
from .urls import Scope, origin, resolve

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: After this many pages of one host failed in a row for want of a connection, its other pages
#: fail at once instead of each waiting through its own retries.
BREAKER_THRESHOLD = 3

#: Why a fetch failed, for deciding whether the source as a whole is down.
UNAVAILABLE = "unavailable"  # no connection, timeouts, 5xx, 429, 401/403 after retries
PAGE = "page"  # something about this page only: its type, its size, a refused redirect, a 4xx


class FetchError(Exception):
    """A URL could not be fetched; ``str()`` is a short reason for users."""

    def __init__(self, reason: str, kind: str = PAGE) -> None:
        super().__init__(reason)
        self.kind = kind
        #: The URL whose request failed: the one asked for, or a page a redirect led to.
        self.url: str | None = None


@dataclass(frozen=True)
class Fetched:
    """The final response of a fetch: 200 with its body, 304, or 404/410 (gone)."""

    url: str
    """The URL that answered, after redirects (normalised)."""
    status: int
    headers: httpx.Headers
    body: bytes = b""

    @property
    def content_type(self) -> str:
        return media_type(self.headers.get("content-type", ""))

    @property
    def charset(self) -> str | None:
        return charset(self.headers.get("content-type", ""))


def media_type(content_type: str) -> str:
    """``text/HTML; charset=utf-8`` → ``text/html``."""
    return content_type.partition(";")[0].strip().lower()


def charset(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type header, if any."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None


def http_date(value: str | None) -> datetime | None:
    """An HTTP date (``Last-Modified``) as an aware UTC datetime; None if absent or invalid."""
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    when = http_date(value)
    return None if when is None else max(0.0, (when - datetime.now(UTC)).total_seconds())


class HostLimits:
    """One host's limits: a semaphore for requests in flight, and a leaky bucket holding one
    request that drains at ``requests_per_second``, so starts are at least the interval apart."""

    def __init__(self, concurrency: int, requests_per_second: float) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        # A bucket of one, not of requests_per_second: no burst at the start of a run.
        self._pace = AsyncLimiter(1, 1.0 / requests_per_second)
        self.failures_in_a_row = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold a request slot, started no sooner than the interval after the previous start."""
        async with self._slots, self._pace:
            yield


class _Retryable(Exception):
    """An attempt that may succeed if tried again: no connection, a timeout, a 429 or a 5xx."""

    def __init__(self, failure: str, *, connected: bool, wait: float | None = None) -> None:
        super().__init__(failure)
        self.failure = failure
        self.connected = connected
        #: What the response's ``Retry-After`` asked for, in seconds.
        self.wait = wait


class _Backoff(wait_base):
    """``Retry-After`` when the response sent one, else ``backoff_s`` doubling on each retry plus
    a random jitter of up to ``backoff_s`` (so hosts retried together drift apart); either is
    capped at ``max_retry_wait_s``."""

    def __init__(self, settings: FetchSettings) -> None:
        backoff = settings.backoff_s
        self._exponential = wait_exponential(multiplier=backoff) + wait_random(0, backoff)
        self._cap = settings.max_retry_wait_s

    def __call__(self, retry_state: RetryCallState) -> float:
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        asked = failure.wait if isinstance(failure, _Retryable) else None
        return min(self._exponential(retry_state) if asked is None else asked, self._cap)


@dataclass(frozen=True)
class FetchSettings:
    timeout_s: float
    retries: int
    backoff_s: float
    max_retry_wait_s: float
    concurrency_per_host: int
    requests_per_second: float


Accept = Callable[[str], bool]
"""Whether a media type (``text/html``) is wanted; decided before the body is read."""


class Fetcher:
    """GETs over one shared :class:`httpx.AsyncClient`, which it does not own.

    ``secret_headers`` are added to a request only when its URL is on one of ``secret_origins``
    (and the client never follows redirects itself), so they never reach any other origin.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: FetchSettings,
        secret_headers: Mapping[str, str] | None = None,
        secret_origins: frozenset[str] = frozenset(),
    ) -> None:
        self._client = client
        self._settings = settings
        self._secret_headers = dict(secret_headers or {})
        self._secret_origins = secret_origins
        self._hosts: dict[str, HostLimits] = {}

    def limits(self, url: str) -> HostLimits:
        key = origin(url)
        if key not in self._hosts:
            settings = self._settings
            self._hosts[key] = HostLimits(settings.concurrency_per_host, settings.requests_per_second)
        return self._hosts[key]

    async def fetch(
        self,
        url: str,
        *,
        scope: Scope,
        accept: Accept,
        max_bytes: int,
        conditional: Callable[[str], Mapping[str, str]] = lambda url: {},
    ) -> Fetched:
        """GET ``url`` following at most :data:`MAX_REDIRECTS` redirects, each one inside ``scope``.

        ``conditional(url)`` gives the ``If-None-Match``/``If-Modified-Since`` headers for each URL
        requested. Returns a 200 (with the body), a 304, a 404 or a 410; raises :class:`FetchError`.
        """
        current = url
        try:
            for _ in range(MAX_REDIRECTS + 1):
                try:
                    fetched = await self._get(current, dict(conditional(current)), accept, max_bytes)
                    if fetched.status not in REDIRECT_STATUSES:
                        if fetched.status in (200, 203, 304, 404, 410):
                            return fetched
                        raise FetchError(_status(fetched.status), _kind(fetched))
                except FetchError as exc:
                    exc.url = current  # this URL's own response was the problem
                    raise
                current = self._follow(current, fetched, scope)
            raise FetchError(f"more than {MAX_REDIRECTS} redirects")
        except FetchError as exc:
            exc.url = exc.url or url  # a bad redirect chain: the URL asked for is the problem
            raise

    @staticmethod
    def _follow(current: str, fetched: Fetched, scope: Scope) -> str:
        """Where a redirect leads, if it stays inside ``scope``; else FetchError."""
        location = fetched.headers.get("location")
        if not location:
            raise FetchError(f"HTTP {fetched.status} redirect without a Location")
        try:
            target = resolve(current, location)
        except ValueError:
            raise FetchError(f"redirected to an invalid URL {location!r}") from None
        if not scope.allows_redirect(current, target):
            raise FetchError(f"redirected to {target}, outside the allowed hosts and path prefixes")
        logger.debug("%s: redirected to %s", current, target)
        return target

    async def _get(self, url: str, headers: dict[str, str], accept: Accept, max_bytes: int) -> Fetched:
        """One URL, retried on connection errors, timeouts, 429 and 5xx."""
        limits = self.limits(url)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self._settings.retries + 1),
            wait=_Backoff(self._settings),
            before_sleep=lambda state: _log_retry(url, state),
            reraise=True,
        )
        try:
            return await retrying(self._try, url, limits, headers, accept, max_bytes)
        except _Retryable as exc:
            if not exc.connected:
                limits.failures_in_a_row += 1
            attempts = int(retrying.statistics.get("attempt_number", 1))
            raise FetchError(_attempts(exc.failure, attempts), UNAVAILABLE) from None

    async def _try(
        self, url: str, limits: HostLimits, headers: dict[str, str], accept: Accept, max_bytes: int
    ) -> Fetched:
        """One attempt: the response, :class:`_Retryable`, or :class:`FetchError` (not retried)."""
        if limits.failures_in_a_row >= BREAKER_THRESHOLD:
            raise FetchError("host unreachable (its previous pages could not be fetched)", UNAVAILABLE)
        try:
            async with limits.slot():
                fetched = await self._attempt(url, headers, accept, max_bytes)
        except (httpx.TimeoutException, TimeoutError):
            raise _Retryable(f"timed out after {self._settings.timeout_s:g}s", connected=False) from None
        except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
            raise _Retryable(f"connection failed: {_describe(exc)}", connected=False) from None
        except httpx.HTTPError as exc:  # an invalid URL, a bad content encoding, ...
            raise FetchError(f"request failed: {_describe(exc)}") from None
        limits.failures_in_a_row = 0
        if fetched.status == 429 or fetched.status >= 500:
            wait = retry_after(fetched.headers.get("retry-after"))
            raise _Retryable(_status(fetched.status), connected=True, wait=wait)
        return fetched

    async def _attempt(self, url: str, headers: dict[str, str], accept: Accept, max_bytes: int) -> Fetched:
        """One request, within ``timeout_s`` from connecting to the last byte."""
        if self._secret_headers and origin(url) in self._secret_origins:
            headers = {**self._secret_headers, **headers}
        async with asyncio.timeout(self._settings.timeout_s):
            async with self._client.stream("GET", url, headers=headers, follow_redirects=False) as response:
                if response.status_code not in (200, 203):
                    return Fetched(url, response.status_code, response.headers)
                content_type = media_type(response.headers.get("content-type", ""))
                if not accept(content_type):
                    raise FetchError(f"not a web page (content type {content_type or 'missing'})")
                too_large = FetchError(f"larger than {format_size(max_bytes)} limit")
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    raise too_large
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise too_large
                return Fetched(url, response.status_code, response.headers, bytes(body))


def _kind(fetched: Fetched) -> str:
    return UNAVAILABLE if fetched.status in (401, 403, 407) else PAGE


def _status(status: int) -> str:
    """``HTTP 503 Service Unavailable``."""
    return f"HTTP {status} {httpx.codes.get_reason_phrase(status)}".rstrip()


def _attempts(failure: str, attempts: int) -> str:
    return failure if attempts == 1 else f"{failure} (after {attempts} attempts)"


def _log_retry(url: str, state: RetryCallState) -> None:
    failure = state.outcome.exception() if state.outcome else None
    delay = state.next_action.sleep if state.next_action else 0.0
    logger.info("%s: %s; retrying in %.1fs", url, failure, delay)


def _describe(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
