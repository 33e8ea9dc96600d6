"""The web connector against a real HTTP server on 127.0.0.1 (tests/integration/website.py).

The connector is driven directly (its ``documents()`` iterated with asyncio) for each behaviour,
then end to end through ``KnowledgeBase.sync`` with the packaged model.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from strongroom.connectors.api import ConnectorError, Document
from strongroom.connectors.registry import build_connector, connector_class
from strongroom.connectors.testing import ConnectorContract
from strongroom.connectors.web import WebConfig, WebConnector
from strongroom.connectors.web.sitemap import SitemapError, parse_sitemap
from strongroom.connectors.web.urls import Scope, normalise
from tests.integration.website import SECRET, SLOW_SECONDS, T0, Page, Website, default_site, serve
from tests.support import free_port

FAST = {
    "timeout_s": 2.0,
    "retries": 2,
    "backoff_s": 0.01,
    "max_retry_wait_s": 2.0,
    "requests_per_second": 1000.0,
    "concurrency_per_host": 4,
}


@pytest.fixture
def site() -> Iterator[Website]:
    with serve() as website:
        yield website


def connector(site: Website | None = None, *, paths: list[str] = (), **options: Any) -> WebConnector:  # type: ignore[assignment]
    urls = [site.url(p) for p in paths] if site is not None else []
    return WebConnector(WebConfig.model_validate({**FAST, "urls": urls, **options}))


def run(web: WebConnector) -> dict[str, Document]:
    async def collect() -> list[Document]:
        return [document async for document in web.documents()]

    documents = asyncio.run(collect())
    assert len({d.id for d in documents}) == len(documents), "a page was yielded twice"
    return {d.id: d for d in documents}


def skipped(web: WebConnector) -> dict[str, str]:
    return {item.id: item.reason for item in web.skipped}


def again(previous: WebConnector, **options: Any) -> WebConnector:
    """A new connector for the next run, with the previous run's state after a JSON round trip."""
    config = previous.config.model_dump()
    config["headers"] = {k: v.get_secret_value() for k, v in previous.config.headers.items()}
    web = WebConnector(WebConfig.model_validate({**config, **options}))
    web.state = json.loads(json.dumps(previous.state))
    return web


# --- pages into documents -----------------------------------------------------------------------


def test_pages_become_documents_without_navigation_or_scripts(site: Website) -> None:
    web = connector(site, paths=["/", "/docs/a#top", "/docs/hours", "/docs/plain.txt"])
    docs = run(web)
    assert web.skipped == []
    home, refunds = docs[site.url("/")], docs[site.url("/docs/a")]  # the fragment is dropped

    assert home.title == "Acme Outfitters"
    assert "# Welcome to Acme Outfitters" in home.text
    assert "waterproof expedition tents" in home.text
    for noise in ("nav-noise-script", "color: red", "footer-noise", "Refunds", "hidden promo"):
        assert noise not in home.text
    assert home.uri == site.url("/")
    assert home.metadata == {
        "host": site.base.removeprefix("http://"),
        "path": "/",
        "content_type": "text/html",
    }
    assert home.updated_at == T0

    assert refunds.title == "Refund policy"
    assert refunds.text.startswith("# Refund policy")
    assert "## Damaged goods" in refunds.text
    assert "nav-noise-link" not in refunds.text and "trackPage" not in refunds.text

    assert docs[site.url("/docs/hours")].title == "Opening hours"  # no <title>: the first heading
    plain = docs[site.url("/docs/plain.txt")]
    assert plain.metadata["content_type"] == "text/plain"
    assert "two-year warranty" in plain.text and plain.title == "Plain"

    sent = site.hits("/")[0].headers
    assert sent["user-agent"].startswith("Strongroom/")


def test_http_charset_is_honoured(site: Website) -> None:
    docs = run(connector(site, paths=["/docs/latin1"]))
    document = docs[site.url("/docs/latin1")]
    assert document.title == "Café crème"
    assert "Crème brûlée" in document.text


def test_document_id_is_the_normalised_url() -> None:
    assert normalise("HTTP://Example.COM:80/a/b?x=1&y=2#frag") == "http://example.com/a/b?x=1&y=2"
    assert normalise("https://example.com") == "https://example.com/"
    assert normalise("https://example.com:8443/p") == "https://example.com:8443/p"


def test_empty_page_and_missing_page(site: Website, caplog: pytest.LogCaptureFixture) -> None:
    web = connector(site, paths=["/docs/a", "/docs/empty", "/nothing-here"])
    with caplog.at_level(logging.WARNING):
        docs = run(web)
    assert list(docs) == [site.url("/docs/a")]
    # An empty page is a bad page; a 404 is a page that is gone: not kept, so a sync deletes it.
    assert skipped(web) == {site.url("/docs/empty"): "no text"}
    assert "/nothing-here: HTTP 404" in caplog.text


# --- sitemaps -----------------------------------------------------------------------------------


def test_sitemap_pages_are_fetched_and_out_of_scope_ones_skipped(site: Website) -> None:
    web = connector(sitemap=site.url("/sitemap.xml"))
    docs = run(web)
    assert set(docs) == {site.url(p) for p in ("/", "/docs/a", "/docs/b", "/docs/plain.txt")}
    assert skipped(web) == {"http://localhost:9/elsewhere": "outside the allowed hosts and path prefixes"}
    # Only the listed pages were requested: links inside pages are not followed.
    assert {hit.path for hit in site.hits()} == {"/sitemap.xml", "/", "/docs/a", "/docs/b", "/docs/plain.txt"}


def test_sitemap_index_and_urls_together_are_deduplicated(site: Website) -> None:
    web = connector(site, paths=["/docs/a", "/docs/hours"], sitemap=site.url("/sitemap-index.xml"))
    docs = run(web)
    assert set(docs) == {site.url(p) for p in ("/docs/a", "/docs/b", "/docs/hours")}
    assert web.skipped == []
    assert len(site.hits("/docs/a")) == 1


def test_allowed_prefixes_limit_the_pages(site: Website) -> None:
    web = connector(sitemap=site.url("/sitemap.xml"), allowed_prefixes=["/docs/"])
    docs = run(web)
    assert set(docs) == {site.url(p) for p in ("/docs/a", "/docs/b", "/docs/plain.txt")}
    assert skipped(web)[site.url("/")] == "outside the allowed hosts and path prefixes"


def test_text_sitemap_and_max_pages(site: Website) -> None:
    web = connector(sitemap=site.url("/sitemap.txt"), max_pages=1)
    docs = run(web)
    assert set(docs) == {site.url("/docs/a")}
    assert skipped(web) == {site.url("/docs/b"): "over the max_pages limit of 1"}
    assert web.skipped and not site.hits("/docs/b")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/no-such-sitemap.xml", "HTTP 404 Not Found"),
        ("/not-a-sitemap.xml", "not a sitemap"),
        ("/sitemap-empty.xml", "lists no pages"),
        ("/down", "HTTP 503 Service Unavailable (after 3 attempts)"),
    ],
)
def test_unreadable_sitemap_fails_the_source(site: Website, path: str, message: str) -> None:
    web = connector(sitemap=site.url(path))
    with pytest.raises(
        ConnectorError, match=r"^sitemap .*" + message.replace("(", r"\(").replace(")", r"\)")
    ):
        run(web)


def test_unreachable_sitemap_fails_the_source() -> None:
    web = connector(sitemap=f"http://127.0.0.1:{free_port()}/sitemap.xml", retries=1)
    with pytest.raises(ConnectorError, match=r"sitemap .*connection failed"):
        run(web)


def test_sitemap_parser_refuses_entities() -> None:
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><urlset><url><loc>&a;</loc></url></urlset>'
    with pytest.raises(SitemapError, match="document type declaration"):
        parse_sitemap(bomb)
    assert parse_sitemap(b"<urlset><url><loc> https://e.com/a </loc></url></urlset>").pages == [
        "https://e.com/a"
    ]


BILLION_LAUGHS = (
    '<?xml version="1.0" encoding="{encoding}"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)).replace("&lol0;", "&lol;")
    + ']>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&lol9;</loc></url></urlset>'
)


@pytest.mark.parametrize("bomb", ["billion laughs", "billion laughs in UTF-16", "external entity"])
def test_a_hostile_sitemap_is_refused_and_nothing_it_names_is_fetched(site: Website, bomb: str) -> None:
    """Sitemaps are untrusted XML: entities are never expanded and external ones never fetched,
    in whatever encoding the document declares; the source fails with the reason."""
    if bomb == "external entity":
        body = (
            f'<?xml version="1.0"?>\n<!DOCTYPE urlset [<!ENTITY page SYSTEM "{site.url("/docs/b")}">]>\n'
            f"<urlset><url><loc>{site.url('/docs/a')}</loc><lastmod>&page;</lastmod></url></urlset>"
        ).encode()
    elif bomb.endswith("UTF-16"):
        body = BILLION_LAUGHS.format(encoding="UTF-16").encode("utf-16-le")  # no BOM: starts with "<"
    else:
        body = BILLION_LAUGHS.format(encoding="UTF-8").encode()
    site.pages["/hostile.xml"] = Page(body, content_type="application/xml")
    with pytest.raises(ConnectorError) as raised:
        run(connector(sitemap=site.url("/hostile.xml")))
    assert str(raised.value) == (
        f"sitemap {site.url('/hostile.xml')}: an XML document type declaration is not allowed in a sitemap"
    )
    assert [hit.path for hit in site.hits()] == ["/hostile.xml"]


# --- retries, redirects, limits -----------------------------------------------------------------


def test_503_is_retried_with_backoff(site: Website) -> None:
    web = connector(site, paths=["/flaky"], backoff_s=0.05)
    docs = run(web)
    assert "Third time lucky" in docs[site.url("/flaky")].text
    hits = site.hits("/flaky")
    assert len(hits) == 3
    assert hits[1].started - hits[0].started >= 0.045  # backoff_s
    assert hits[2].started - hits[1].started >= 0.095  # doubled


def test_retries_give_up_with_a_reason(site: Website) -> None:
    web = connector(site, paths=["/docs/a", "/down"], retries=1)
    docs = run(web)
    assert set(docs) == {site.url("/docs/a")}
    assert skipped(web) == {site.url("/down"): "HTTP 503 Service Unavailable (after 2 attempts)"}
    assert len(site.hits("/down")) == 2


def test_429_honours_retry_after(site: Website) -> None:
    web = connector(site, paths=["/busy"], backoff_s=0.01)
    docs = run(web)
    assert site.url("/busy") in docs
    first, second = site.hits("/busy")
    assert second.started - first.started >= 0.95  # Retry-After: 1, not the 0.01 s backoff


def test_retry_after_is_capped(site: Website) -> None:
    web = connector(site, paths=["/busy"], max_retry_wait_s=0.1)
    assert site.url("/busy") in run(web)
    first, retry = site.hits("/busy")
    assert retry.started - first.started < 0.9  # Retry-After says 1 s; the cap is 0.1 s


def test_redirect_inside_scope_is_followed(site: Website) -> None:
    web = connector(site, paths=["/moved"])
    docs = run(web)
    target = docs[site.url("/docs/target")]  # the page's own address is its id
    assert target.uri == site.url("/docs/target") and "lighthouse catalogue" in target.text
    assert [hit.path for hit in site.hits()] == ["/moved", "/docs/target"]


def test_redirect_to_another_host_is_refused(site: Website) -> None:
    web = connector(site, paths=["/away", "/loop"])
    assert run(web) == {}
    reasons = skipped(web)
    assert reasons[site.url("/away")].startswith("redirected to http://localhost:")
    assert "outside the allowed hosts" in reasons[site.url("/away")]
    assert reasons[site.url("/loop")] == "more than 5 redirects"
    assert len(site.hits("/loop")) == 6
    # localhost is the same server under another name: it was never asked.
    assert all(hit.headers["host"].startswith("127.0.0.1") for hit in site.hits())


def test_oversized_pages_are_skipped(site: Website) -> None:
    web = connector(site, paths=["/big", "/big-declared", "/docs/a"], max_bytes=100_000)
    docs = run(web)
    assert set(docs) == {site.url("/docs/a")}
    assert skipped(web) == {
        site.url("/big"): "larger than 97.7 KiB limit",
        site.url("/big-declared"): "larger than 97.7 KiB limit",
    }


def test_binary_content_type_is_skipped(site: Website) -> None:
    web = connector(site, paths=["/report.pdf", "/docs/a"])
    assert set(run(web)) == {site.url("/docs/a")}
    assert skipped(web) == {site.url("/report.pdf"): "not a web page (content type application/pdf)"}


def test_slow_page_times_out(site: Website) -> None:
    web = connector(site, paths=["/slow", "/docs/a"], timeout_s=0.3, retries=1)
    started = time.monotonic()
    docs = run(web)
    assert time.monotonic() - started < SLOW_SECONDS
    assert set(docs) == {site.url("/docs/a")}
    assert skipped(web) == {site.url("/slow"): "timed out after 0.3s (after 2 attempts)"}
    assert len(site.hits("/slow")) == 2


def test_concurrency_per_host_is_never_exceeded() -> None:
    site = default_site()
    site.delay = 0.1
    with serve(site):
        web = connector(site, paths=[f"/many/{n}" for n in range(12)], concurrency_per_host=2)
        started = time.monotonic()
        docs = run(web)
        elapsed = time.monotonic() - started
    assert len(docs) == 12
    assert site.max_active == 2  # in parallel, but never more than the limit
    assert elapsed >= 0.55  # 12 pages of 0.1 s, two at a time


def test_requests_per_second_spaces_request_starts(site: Website) -> None:
    web = connector(site, paths=[f"/many/{n}" for n in range(6)], requests_per_second=10.0)
    run(web)
    starts = sorted(hit.started for hit in site.hits())
    # Seen by the server, a start can lag its request by a few tens of milliseconds on a busy
    # machine, shortening one gap and lengthening the next: compare starts two apart (0.2 s
    # when spaced, about 0 in a burst) and the whole span (0.5 s).
    two_apart = [b - a for a, b in zip(starts, starts[2:], strict=False)]
    assert len(starts) == 6 and min(two_apart) >= 0.13 and starts[-1] - starts[0] >= 0.4, starts


def test_every_url_failing_to_connect_fails_the_source() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    web = WebConnector(WebConfig.model_validate({**FAST, "urls": [f"{base}/a", f"{base}/b"], "retries": 1}))
    with pytest.raises(
        ConnectorError, match=r"no page could be fetched \(2 of 2 failed\); .*connection failed"
    ):
        run(web)


def test_many_unreachable_pages_fail_fast() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    urls = [f"{base}/{n}" for n in range(30)]
    web = WebConnector(WebConfig.model_validate({**FAST, "urls": urls, "retries": 2, "backoff_s": 0.2}))
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="30 of 30 failed"):
        run(web)
    assert time.monotonic() - started < 5  # not 30 pages x 0.6 s of backoff


# --- auth headers -------------------------------------------------------------------------------


def test_secret_headers_are_sent_and_never_shown(site: Website, caplog: pytest.LogCaptureFixture) -> None:
    web = connector(site, paths=["/private"], headers={"Authorization": SECRET})
    with caplog.at_level(logging.DEBUG):
        docs = run(web)
    assert "Staff-only price list" in docs[site.url("/private")].text
    assert site.hits("/private")[0].headers["authorization"] == SECRET
    assert SECRET not in caplog.text
    assert SECRET not in repr(web.config) and SECRET not in str(web.config.model_dump())

    denied = connector(site, paths=["/private", "/docs/a"])
    assert set(run(denied)) == {site.url("/docs/a")}
    assert skipped(denied) == {site.url("/private"): "HTTP 401 Unauthorized"}


def test_another_port_of_the_same_host_is_out_of_scope(site: Website) -> None:
    """Scope is scheme, host and port: no redirect, sitemap entry or secret header reaches another port."""
    with serve(default_site()) as other:  # also 127.0.0.1, on another port
        site.redirects["/to-other-port"] = other.url("/docs/b")
        site.redirects["/sitemap-moved.xml"] = other.url("/sitemap.xml")
        site.sitemaps["/two-ports.xml"] = [site.url("/docs/a"), other.url("/docs/b")]
        secret = {"Authorization": SECRET}
        web = connector(site, paths=["/to-other-port"], sitemap=site.url("/two-ports.xml"), headers=secret)
        assert set(run(web)) == {site.url("/docs/a")}
        reasons = skipped(web)
        assert reasons[other.url("/docs/b")] == "outside the allowed hosts and path prefixes"
        assert reasons[site.url("/to-other-port")].startswith(
            f"redirected to {other.url('/docs/b')}, outside"
        )
        with pytest.raises(ConnectorError, match="outside the allowed hosts"):
            run(connector(sitemap=site.url("/sitemap-moved.xml"), headers=secret))
        assert other.hits() == []
        assert all(hit.headers["authorization"] == SECRET for hit in site.hits())

        # Listed as an allowed origin, the other port is in scope and gets the headers.
        ports = [site.base.rsplit(":", 1)[1], other.base.rsplit(":", 1)[1]]
        allowed = connector(
            site, paths=["/to-other-port"], headers=secret, allowed_hosts=[f"127.0.0.1:{p}" for p in ports]
        )
        assert set(run(allowed)) == {other.url("/docs/b")}
        assert other.hits("/docs/b")[0].headers["authorization"] == SECRET


def test_scope_normalises_default_ports_and_keeps_the_scheme() -> None:
    seeds = Scope.of(WebConfig(urls=["https://Example.com/a"]).origins(), ["/"])
    assert seeds.allows("https://example.com:443/b") and seeds.allows("HTTPS://EXAMPLE.COM/c")
    assert not seeds.allows("https://example.com:8443/b")
    assert not seeds.allows("http://example.com/b")  # another scheme is another origin
    configured = WebConfig(
        urls=["https://example.com/"],
        allowed_hosts=["example.com", "wiki.example.com:8080", "https://cdn.example.com:443/"],
    )
    scope = Scope.of(configured.origins(), ["/"])
    assert scope.allows("http://example.com/x") and scope.allows("https://example.com:443/x")
    assert not scope.allows("https://example.com:8443/x")
    assert scope.allows("http://wiki.example.com:8080/") and not scope.allows("http://wiki.example.com/")
    assert scope.allows("https://cdn.example.com/") and not scope.allows("http://cdn.example.com/")


# --- conditional requests -----------------------------------------------------------------------


def test_conditional_requests_report_304_pages_unchanged(site: Website) -> None:
    paths = ["/", "/docs/a", "/docs/hours", "/moved", "/docs/latin1"]
    first = connector(site, paths=paths)
    assert len(run(first)) == 5
    site.clear_log()

    second = again(first)
    assert run(second) == {}
    assert second.kept == {
        site.url(p) for p in ["/", "/docs/a", "/docs/hours", "/docs/target", "/docs/latin1"]
    }
    assert second.skipped == []
    a = site.hits("/docs/a")[0].headers
    assert a["if-none-match"] == site.pages["/docs/a"].etag_value
    assert a["if-modified-since"] == "Wed, 01 May 2024 09:30:00 GMT"
    hours = site.hits("/docs/hours")[0].headers  # Last-Modified only
    assert "if-none-match" not in hours and hours["if-modified-since"] == "Wed, 01 May 2024 09:30:00 GMT"
    assert "if-none-match" not in site.hits("/moved")[0].headers  # validators belong to the target
    assert "if-none-match" in site.hits("/docs/target")[0].headers

    # A 304 keeps the validators for the run after.
    site.clear_log()
    third = again(second)
    assert run(third) == {} and len(third.kept) == 5
    assert "if-none-match" in site.hits("/docs/a")[0].headers

    site.set_page(
        "/docs/a", "<title>Refund policy</title><h1>Refund policy</h1><p>Refunds within 90 days.</p>"
    )
    fourth = again(third)
    docs = run(fourth)
    assert set(docs) == {site.url("/docs/a")}
    assert "90 days" in docs[site.url("/docs/a")].text
    assert docs[site.url("/docs/a")].updated_at == datetime(2024, 5, 2, 9, 30, tzinfo=UTC)
    assert len(fourth.kept) == 4


def test_a_failing_page_keeps_its_validators_and_a_gone_page_loses_them(site: Website) -> None:
    first = connector(site, paths=["/docs/a", "/docs/b", "/moved"])
    run(first)
    site.broken = {"/docs/a", "/docs/target"}
    del site.pages["/docs/b"]

    second = again(first, retries=0)
    assert run(second) == {}
    # The skipped items name the documents they concern, so a sync keeps their indexed versions;
    # a failure behind a known redirect is reported under the redirect's target.
    assert skipped(second) == {
        site.url("/docs/a"): "HTTP 503 Service Unavailable",
        site.url("/docs/target"): "HTTP 503 Service Unavailable",
    }
    assert set(second.state["pages"]) == {site.url("/docs/a"), site.url("/docs/target")}
    assert second.state["redirects"] == {site.url("/moved"): site.url("/docs/target")}

    site.broken = set()
    site.clear_log()
    third = again(second)
    assert run(third) == {}
    assert third.kept == {site.url("/docs/a"), site.url("/docs/target")}
    assert "if-none-match" in site.hits("/docs/a")[0].headers


def test_garbage_state_is_ignored(site: Website) -> None:
    web = connector(site, paths=["/docs/a"])
    web.state = {"version": 1, "pages": {"x": 3, site.url("/docs/a"): {"etag": 7}}, "redirects": []}
    assert set(run(web)) == {site.url("/docs/a")}
    assert "if-none-match" not in site.hits("/docs/a")[0].headers


# --- configuration ------------------------------------------------------------------------------


def test_registered_and_configured(tmp_path: Path) -> None:
    assert connector_class("web") is WebConnector
    web = build_connector(
        "web", {"urls": ["https://Docs.Example.com/a"], "sitemap": "https://cdn.example.net/s.xml"}, tmp_path
    )
    assert isinstance(web, WebConnector)
    assert web.config.origins() == ["https://cdn.example.net:443", "https://docs.example.com:443"]
    assert web.config.user_agent.startswith("Strongroom/")
    assert asyncio.run(web.estimated_count()) is None
    only_urls = build_connector("web", {"urls": ["https://e.com/a", "https://e.com/a#x"]}, tmp_path)
    assert asyncio.run(only_urls.estimated_count()) == 1
    for field_name, field in WebConfig.model_fields.items():
        assert field.description, field_name


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "set `urls`, `sitemap` or both"),
        ({"urls": ["ftp://example.com/a"]}, "urls: .*not an http or https URL"),
        ({"urls": ["https://user:pw@example.com/"]}, "credentials"),
        ({"sitemap": "/sitemap.xml"}, "sitemap: .*not an http or https URL"),
        ({"urls": ["https://e.com/"], "allowed_prefixes": ["docs"]}, "must start with '/'"),
        ({"urls": ["https://e.com/"], "headers": {"X-Key": "a\r\nb"}}, "line break"),
        ({"urls": ["https://e.com/"], "crawl": True}, "crawl: unknown key"),
        ({"urls": ["https://e.com/"], "allowed_hosts": ["https://e.com/docs"]}, "not an origin"),
        ({"urls": ["https://e.com/"], "max_pages": 0}, "max_pages"),
    ],
)
def test_bad_settings_are_named(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConnectorError, match=message):
        build_connector("web", options, tmp_path)


class TestWebContract(ConnectorContract):
    """The contract every connector passes (strongroom.connectors.testing), against the test site."""

    connector_class = WebConnector

    def config(self, site: Website) -> dict[str, Any]:
        return {**FAST, "sitemap": site.url("/sitemap.xml")}

    def broken_config(self) -> dict[str, Any]:
        return {**FAST, "urls": [f"http://127.0.0.1:{free_port()}/"], "retries": 0}


# --- end to end through KnowledgeBase.sync ------------------------------------------------------


@pytest.mark.model
def test_sync_adds_keeps_updates_and_deletes_pages(
    site: Website,
    tmp_path: Path,
    embedder: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from strongroom.server.app import build_app
    from strongroom.server.settings import load_settings

    for key in list(os.environ):
        if key.startswith("STRONGROOM_"):
            monkeypatch.delenv(key)
    config = tmp_path / "strongroom.toml"
    config.write_text(
        '[store]\npath = ".strongroom"\n\n'
        '[[sources]]\nname = "site"\nconnector = "web"\n'
        f'sitemap = "{site.url("/sitemap.xml")}"\n'
        f'urls = ["{site.url("/moved")}"]\n'
        "timeout_s = 2\nbackoff_s = 0.01\nrequests_per_second = 200\n",
        encoding="utf-8",
    )
    embedded: list[str] = []
    original = embedder.embed

    def counting_embed(texts: list[str]) -> list[list[float]]:
        embedded.extend(texts)
        return original(texts)  # type: ignore[no-any-return]

    monkeypatch.setattr(embedder, "embed", counting_embed)
    monkeypatch.setattr(embedder, "embed_query", lambda text: original([text])[0])

    def page(path: str) -> str:
        return f"site/{site.url(path)}"

    kb = build_app(load_settings(config), embedder=embedder).knowledge
    try:
        first = kb.sync().sources[0]
        assert (first.added, first.updated, first.unchanged, first.deleted, first.error) == (5, 0, 0, 0, None)
        assert [(f.id, f.reason) for f in first.skipped] == [
            ("http://localhost:9/elsewhere", "outside the allowed hosts and path prefixes")
        ]
        assert embedded and first.chunks == len(embedded)
        chunks_before = kb.catalog.counts()
        found = kb.search("can I return kayak paddles for a refund?", k=3).results
        assert found[0].document_id == page("/docs/a")
        assert found[0].uri == site.url("/docs/a") and "45 days" in found[0].text
        assert kb.search("lighthouse catalogue address", k=1).results[0].document_id == page("/docs/target")

        site.clear_log()
        embedded.clear()
        second = kb.sync().sources[0]
        assert (second.added, second.updated, second.unchanged, second.deleted) == (0, 0, 5, 0)
        assert embedded == [] and kb.catalog.counts() == chunks_before
        for path in ("/", "/docs/a", "/docs/b", "/docs/plain.txt", "/docs/target"):
            (hit,) = site.hits(path)
            assert "if-none-match" in hit.headers and "if-modified-since" in hit.headers
        assert kb.search("kayak paddles refund", k=1).results[0].document_id == page("/docs/a")

        site.set_page("/docs/a", "<title>Refund policy</title><h1>Refunds</h1><p>Canoe paddles: 90 days.</p>")
        del site.pages["/docs/b"]
        embedded.clear()
        third = kb.sync().sources[0]
        assert (third.added, third.updated, third.unchanged, third.deleted) == (0, 1, 3, 1)
        assert embedded and third.chunks == len(embedded)
        refund = kb.catalog.document(page("/docs/a"))
        assert refund is not None and "Canoe paddles" in refund.text and "kayak" not in refund.text
        assert kb.catalog.document(page("/docs/b")) is None
        assert kb.search("canoe paddles returns", k=1).results[0].document_id == page("/docs/a")

        site.broken = {"/docs/target"}
        fourth = kb.sync().sources[0]
        assert (fourth.added, fourth.updated, fourth.unchanged, fourth.deleted) == (0, 0, 3, 0)
        assert ("http://" + site.base.removeprefix("http://") + "/docs/target") in {
            f.id for f in fourth.skipped
        }
        assert kb.catalog.document(page("/docs/target")) is not None  # kept while it is failing
    finally:
        kb.close()


def test_a_page_that_parses_too_long_or_expands_too_far_is_skipped_and_the_rest_indexed(
    site: Website,
) -> None:
    """Pages are untrusted input: deeply nested HTML that keeps the parser busy is stopped at
    parse_timeout, text over max_text_chars is refused, and the other pages are indexed."""
    site.pages["/nested"] = Page(b"<html><body>" + b"<div><span>x" * 200_000 + b"</body></html>")
    site.pages["/long"] = Page(b"<html><body><p>" + b"word " * 40_000 + b"</p></body></html>")
    web = connector(site, paths=["/nested", "/long", "/docs/a"], parse_timeout=1.0, max_text_chars=100_000)
    started = time.monotonic()
    docs = run(web)
    assert list(docs) == [site.url("/docs/a")]
    reasons = skipped(web)
    assert "took longer than the 1 s limit (parse_timeout)" in reasons[site.url("/nested")]
    assert "over the 100,000 limit (max_text_chars)" in reasons[site.url("/long")]
    assert time.monotonic() - started < 30  # bounded: the nested page alone parses for far longer
