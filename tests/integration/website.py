"""A small real website for the web connector's tests: a threaded ``http.server`` on 127.0.0.1.

It serves pages with navigation and script noise, sitemaps, ETag/Last-Modified validators with
``304 Not Modified``, and misbehaving routes (flaky, rate-limited, redirecting, oversized, binary,
slow, protected). Every request is logged, and the number of requests being handled at once is
tracked, so tests can check what a client sent and how politely.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BIG_BYTES = 300_000
# Far beyond any timeout a test sets, so a loaded machine cannot blur "timed out" into "answered".
SLOW_SECONDS = 10.0
SECRET = "Bearer s3cret-t0ken"
T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)

HOME = """<!doctype html>
<html><head><title>Acme Outfitters</title>
<script>var tracking = "nav-noise-script";</script><style>body { color: red }</style></head>
<body>
<header><a href="/">Acme</a> <nav><a href="/docs/a">Refunds</a> <a href="/docs/b">Shipping</a></nav></header>
<main>
<h1>Welcome to Acme Outfitters</h1>
<p>We sell waterproof expedition tents, titanium cookware and merino base layers.</p>
<div style="display: none">hidden promo text</div>
</main>
<footer>Copyright Acme footer-noise</footer>
</body></html>
"""

REFUNDS = """<!doctype html>
<html><head><title>Refund policy</title><script>trackPage("refund")</script></head>
<body><nav>Home | Docs | nav-noise-link</nav>
<article>
<h1>Refund policy</h1>
<p>Unused kayak paddles may be returned within 45 days for a full refund.</p>
<h2>Damaged goods</h2>
<p>Send a photo of the damaged item and we post a replacement the same day.</p>
</article></body></html>
"""

SHIPPING = """<!doctype html>
<html><head><title>Shipping</title></head>
<body><h1>Shipping times</h1>
<p>Orders placed before noon leave the Rotterdam warehouse by courier the same afternoon.</p>
</body></html>
"""

TARGET = """<html><head><title>Moved here</title></head>
<body><h1>Redirect target</h1><p>The lighthouse catalogue now lives at this address.</p></body></html>"""

NO_TITLE = """<html><body><h2>Opening hours</h2>
<p>The showroom is open from nine to five on weekdays.</p></body></html>"""

PLAIN = "Warranty terms\n\nEvery stove carries a two-year warranty against manufacturing defects.\n"


@dataclass
class Page:
    """A page the site serves: its body and which validators it sends."""

    body: bytes
    content_type: str = "text/html; charset=utf-8"
    modified: datetime = T0
    etag: bool = True
    last_modified: bool = True

    @property
    def etag_value(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'


@dataclass(frozen=True)
class Hit:
    """One request as the server saw it."""

    path: str
    headers: dict[str, str]
    """Header names lower-cased."""
    started: float
    """time.monotonic() when the handler began (the same clock as the client in these tests)."""


@dataclass
class Website:
    """The site's content and its request log; :func:`serve` runs it."""

    pages: dict[str, Page] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds each page takes to produce, so concurrent requests overlap."""
    base: str = ""
    broken: set[str] = field(default_factory=set)
    """Paths that answer 503 Service Unavailable for now."""
    redirects: dict[str, str] = field(default_factory=dict)
    """Paths that answer 302 Found to the given Location."""
    sitemaps: dict[str, list[str]] = field(default_factory=dict)
    """Paths that serve a ``<urlset>`` of the given URLs."""
    log: list[Hit] = field(default_factory=list)
    max_active: int = 0
    _active: int = 0
    _counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return self.base + path

    def set_page(self, path: str, html: str, *, when: datetime | None = None, **options: Any) -> None:
        """Create or change a page; a change gets a new ETag and, by default, a later Last-Modified."""
        previous = self.pages.get(path)
        modified = when or (previous.modified + timedelta(days=1) if previous else T0)
        self.pages[path] = Page(html.encode("utf-8"), modified=modified, **options)

    def hits(self, path: str | None = None) -> list[Hit]:
        with self._lock:
            return [hit for hit in self.log if path is None or hit.path == path]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()
            self.max_active = 0

    # -- request bookkeeping (called from handler threads) --

    def _enter(self, path: str, headers: dict[str, str]) -> int:
        with self._lock:
            self.log.append(Hit(path, headers, time.monotonic()))
            self._counts[path] += 1
            self._active += 1
            self.max_active = max(self.max_active, self._active)
            return self._counts[path]

    def _leave(self) -> None:
        with self._lock:
            self._active -= 1


def default_site() -> Website:
    site = Website()
    site.set_page("/", HOME)
    site.set_page("/docs/a", REFUNDS)
    site.set_page("/docs/b", SHIPPING)
    site.set_page("/docs/target", TARGET)
    site.set_page("/docs/hours", NO_TITLE, etag=False)  # Last-Modified only
    site.pages["/docs/plain.txt"] = Page(PLAIN.encode(), content_type="text/plain; charset=utf-8")
    site.pages["/docs/latin1"] = Page(
        "<html><body><h1>Caf\xe9 cr\xe8me</h1><p>Cr\xe8me br\xfbl\xe9e served daily.</p></body></html>".encode(
            "latin-1"
        ),
        content_type="text/html; charset=ISO-8859-1",
    )
    site.pages["/docs/empty"] = Page(b"<html><body><script>only()</script></body></html>")
    for n in range(12):
        site.set_page(f"/many/{n}", f"<h1>Page {n}</h1><p>Numbered page {n} of the concurrency set.</p>")
    return site


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        site = self.server.site
        path = self.path.split("?", 1)[0]
        count = site._enter(path, {k.lower(): v for k, v in self.headers.items()})
        try:
            if site.delay:
                time.sleep(site.delay)
            respond = self._route(path, count)
        finally:
            site._leave()  # before the response is sent: the client cannot have moved on yet
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            respond()  # the client may give up early (an oversized or slow page)

    def _route(self, path: str, count: int) -> Any:
        """The responder for ``path``, requested ``count`` times so far (this request included)."""
        site = self.server.site
        if path in site.broken:
            return lambda: self._send(503, {}, b"broken for now")
        if path in site.pages:
            return lambda: self._page(site.pages[path])
        if path in site.redirects:
            return lambda: self._send(302, {"Location": site.redirects[path]}, b"")
        if path in site.sitemaps:
            return lambda: self._xml(_urlset(site.sitemaps[path]))
        routes = {**self._sitemap_routes(site.base), **self._misbehaving_routes(count)}
        return routes.get(path, lambda: self._send(404, {"Content-Type": "text/html"}, b"<h1>Not found</h1>"))

    def _sitemap_routes(self, base: str) -> dict[str, Callable[[], None]]:
        locs = ["/", "/docs/a", "/docs/b", "/docs/plain.txt"]
        urls = [base + loc for loc in locs] + ["http://localhost:9/elsewhere"]
        return {
            "/sitemap.xml": lambda: self._xml(_urlset(urls)),
            "/sitemap-index.xml": lambda: self._xml(
                _index([base + "/sitemaps/one.xml", "/sitemaps/two.xml"])
            ),
            "/sitemaps/one.xml": lambda: self._xml(_urlset([base + "/docs/a"])),
            "/sitemaps/two.xml": lambda: self._xml(_urlset([base + "/docs/b", base + "/docs/a#dup"])),
            "/sitemap-empty.xml": lambda: self._xml(_urlset([])),
            "/sitemap.txt": lambda: self._send(
                200, {"Content-Type": "text/plain"}, f"{base}/docs/a\n{base}/docs/b\n".encode()
            ),
            "/not-a-sitemap.xml": lambda: self._send(
                200, {"Content-Type": "text/html"}, b"<html><body>oops</body></html>"
            ),
        }

    def _misbehaving_routes(self, count: int) -> dict[str, Callable[[], None]]:
        return {
            "/flaky": self._flaky(count),  # 503 twice, then the page
            "/down": lambda: self._send(503, {}, b"down"),
            "/busy": self._busy(count),  # 429 with Retry-After once, then the page
            "/moved": lambda: self._send(301, {"Location": "/docs/target"}, b""),
            "/away": lambda: self._send(
                302, {"Location": f"http://localhost:{self.server.port}/docs/a"}, b""
            ),
            "/loop": lambda: self._send(302, {"Location": f"/loop?n={count}"}, b""),
            "/big": self._big,  # no Content-Length: the cap must hold while streaming
            "/big-declared": lambda: self._send(
                200, {"Content-Type": "text/html"}, b"<p>" + b"x" * BIG_BYTES + b"</p>"
            ),
            "/report.pdf": lambda: self._send(
                200, {"Content-Type": "application/pdf"}, b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
            ),
            "/slow": self._slow,
            "/private": self._private,
        }

    def _flaky(self, count: int) -> Callable[[], None]:
        if count <= 2:
            return lambda: self._send(503, {}, b"try later")
        return lambda: self._page(Page(b"<title>Flaky</title><p>Third time lucky: the flaky page.</p>"))

    def _busy(self, count: int) -> Callable[[], None]:
        if count == 1:
            return lambda: self._send(429, {"Retry-After": "1"}, b"slow down")
        return lambda: self._page(Page(b"<title>Busy</title><p>Patience rewarded on the busy page.</p>"))

    def _private(self) -> None:
        if self.headers.get("Authorization") != SECRET:
            self._send(401, {}, b"who are you")
        else:
            self._page(Page(b"<title>Private</title><p>Staff-only price list for tents.</p>"))

    def _page(self, page: Page) -> None:
        validators = {}
        if page.etag:
            validators["ETag"] = page.etag_value
        if page.last_modified:
            validators["Last-Modified"] = format_datetime(page.modified, usegmt=True)
        if self._not_modified(page):
            self._send(304, validators, b"")
        else:
            self._send(200, {"Content-Type": page.content_type, **validators}, page.body)

    def _not_modified(self, page: Page) -> bool:
        if_none_match = self.headers.get("If-None-Match")
        if page.etag and if_none_match is not None:
            return page.etag_value in [tag.strip() for tag in if_none_match.split(",")]
        since = self.headers.get("If-Modified-Since")
        if page.last_modified and since:
            try:
                return parsedate_to_datetime(since) >= page.modified
            except (TypeError, ValueError):
                return False
        return False

    def _xml(self, text: str) -> None:
        self._send(200, {"Content-Type": "application/xml"}, text.encode())

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _big(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        chunk = b"<p>" + b"y" * 16_000 + b"</p>\n"
        for _ in range(BIG_BYTES // len(chunk) + 1):
            self.wfile.write(chunk)
            self.wfile.flush()

    def _slow(self) -> None:
        time.sleep(SLOW_SECONDS)
        self._send(200, {"Content-Type": "text/html"}, b"<p>Finally, the slow page.</p>")


def _urlset(urls: list[str]) -> str:
    entries = "".join(f"<url><loc>{url}</loc><lastmod>2024-05-01</lastmod></url>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</urlset>'
    )


def _index(urls: list[str]) -> str:
    entries = "".join(f"<sitemap><loc>{url}</loc></sitemap>" for url in urls)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{entries}</sitemapindex>'
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, site: Website) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.site = site
        self.port = int(self.server_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up early is expected here


@contextmanager
def serve(site: Website | None = None) -> Iterator[Website]:
    """Run ``site`` (the default site if None) on a free port of 127.0.0.1; yields it with ``base`` set."""
    site = site or default_site()
    server = _Server(site)
    site.base = f"http://127.0.0.1:{server.port}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
