"""Settings of a ``connector = "web"`` source."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from ..api import Config
from .urls import DEFAULT_PORTS, UrlError, check_url, origin

MiB = 1024 * 1024


def _default_user_agent() -> str:
    try:
        return f"Strongroom/{version('strongroom')}"
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "Strongroom"


class WebConfig(Config):
    """Settings of a ``connector = "web"`` source: pages fetched over HTTP(S)."""

    urls: list[str] = Field(
        default_factory=list,
        description="Pages to index (http or https). Only these and the sitemap's pages are fetched: "
        "links inside pages are not followed.",
    )
    sitemap: str | None = Field(
        default=None,
        description="URL of a sitemap.xml (or a sitemap index, or a plain-text list of URLs) whose "
        "pages are indexed too. If it cannot be read, the run fails and nothing is deleted.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Origins that pages may be fetched from and redirected to, and that get the "
        "`headers`: `https://example.com:8443` (one scheme and port), `example.com` (http on 80 and "
        "https on 443) or `example.com:8080` (that port). Default: the origins of `urls` and `sitemap`.",
    )
    allowed_prefixes: list[str] = Field(
        default_factory=lambda: ["/"],
        description="URL path prefixes that pages may have, e.g. `/docs/`; other pages and redirects "
        "to them are skipped.",
    )
    max_pages: int = Field(
        default=1000, gt=0, description="At most this many pages per run; the rest are skipped."
    )
    max_bytes: int = Field(
        default=5 * MiB,
        gt=0,
        description="A page larger than this many bytes (after decompression) is skipped (default 5 MiB).",
    )
    max_text_chars: int = Field(
        default=2_000_000,
        gt=0,
        description="A page whose extracted text is longer than this many characters is skipped.",
    )
    parse_timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds one page may take to parse (default 30); parsing runs in a worker process "
        "that is stopped, and the page skipped, when it takes longer.",
    )
    timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Seconds allowed for one request, from connecting to the last byte of the page.",
    )
    retries: int = Field(
        default=3,
        ge=0,
        description="Retries of a request that failed to connect, timed out, or got HTTP 429 or 5xx.",
    )
    backoff_s: float = Field(
        default=0.5,
        ge=0,
        description="Wait before the first retry; it doubles on each further retry, plus a random "
        "jitter of up to `backoff_s`. A `Retry-After` header (in seconds or as a date) is honoured instead.",
    )
    max_retry_wait_s: float = Field(
        default=30.0, ge=0, description="Cap on any wait between retries, `Retry-After` included."
    )
    concurrency_per_host: int = Field(
        default=2, ge=1, description="At most this many requests in flight to one host."
    )
    requests_per_second: float = Field(
        default=2.0, gt=0, description="At most this many requests started per second to one host."
    )
    user_agent: str = Field(
        default_factory=_default_user_agent,
        min_length=1,
        description="The User-Agent header sent with every request.",
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Extra request headers, e.g. `Authorization`, sent only to the allowed origins and "
        "the sitemap's; secret, never logged.",
    )

    @field_validator("urls")
    @classmethod
    def _check_urls(cls, urls: list[str]) -> list[str]:
        try:
            return [check_url(url) for url in urls]
        except UrlError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("sitemap")
    @classmethod
    def _check_sitemap(cls, sitemap: str | None) -> str | None:
        try:
            return None if sitemap is None else check_url(sitemap)
        except UrlError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("allowed_hosts")
    @classmethod
    def _check_hosts(cls, hosts: list[str]) -> list[str]:
        checked = []
        for host in hosts:
            host = host.strip().lower()
            try:
                _host_origins(host)
            except UrlError:
                raise ValueError(
                    f"{host!r} is not an origin (write `https://example.com`, `example.com` or `example.com:8080`)"
                ) from None
            checked.append(host)
        return checked

    @field_validator("allowed_prefixes")
    @classmethod
    def _check_prefixes(cls, prefixes: list[str]) -> list[str]:
        for prefix in prefixes:
            if not prefix.startswith("/"):
                raise ValueError(f"path prefix {prefix!r} must start with '/'")
        return prefixes

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, headers: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, value in headers.items():
            if not name or any(c in name for c in " \t\r\n:") or not name.isascii():
                raise ValueError(f"{name!r} is not a valid header name")
            if any(c in value.get_secret_value() for c in "\r\n"):
                raise ValueError(f"the value of header {name!r} contains a line break")
        return headers

    @model_validator(mode="after")
    def _something_to_fetch(self) -> Self:
        if not self.urls and self.sitemap is None:
            raise ValueError("set `urls`, `sitemap` or both")
        return self

    def origins(self) -> list[str]:
        """The allowed origins (``scheme://host:port``): as configured, else those of ``urls`` and ``sitemap``."""
        if self.allowed_hosts:
            return sorted({o for host in self.allowed_hosts for o in _host_origins(host)})
        seeds = [*self.urls, *([self.sitemap] if self.sitemap else [])]
        return sorted({origin(url) for url in seeds})


def _host_origins(entry: str) -> list[str]:
    """The origins an ``allowed_hosts`` entry stands for; UrlError if it is not one."""
    if "://" in entry:
        rest = entry.partition("://")[2]
        if rest.rstrip("/").count("/") or "?" in rest or "#" in rest:
            raise UrlError(f"{entry!r} has a path")
        return [origin(entry)]
    if any(c in entry for c in "/?#@") or not entry:
        raise UrlError(f"{entry!r} is not a host")
    return [origin(f"{scheme}://{entry}") for scheme in DEFAULT_PORTS]
