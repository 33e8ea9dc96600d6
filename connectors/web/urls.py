"""URLs: validation, the normalised form that is a page's document id, and the allowed scope."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urljoin, urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class UrlError(ValueError):
    """Not an absolute http(s) URL that the connector can fetch; the message says why."""


def _split(url: str) -> tuple[SplitResult, str, int]:
    """The parts of an absolute http(s) URL, its lower-case host name and its effective port."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise UrlError(f"{url!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UrlError(f"{url!r} is not an http or https URL")
    if not parts.hostname:
        raise UrlError(f"{url!r} has no host")
    if parts.username is not None or parts.password is not None:
        raise UrlError(f"{url!r} has credentials in it; put them in `headers` (e.g. Authorization)")
    return parts, parts.hostname.lower(), port if port is not None else DEFAULT_PORTS[scheme]


def check_url(url: str) -> str:
    """``url`` stripped, if it is an absolute http(s) URL without credentials; else UrlError."""
    _split(url)
    return url.strip()


def normalise(url: str) -> str:
    """The document id of a page: scheme, host and port lower-cased and the default port dropped,
    the path (``/`` if empty) and the query kept as they are, the fragment dropped.

    ``HTTP://Example.com:80/a?b=1#top`` → ``http://example.com/a?b=1``.
    """
    parts, host, port = _split(url)
    scheme = parts.scheme.lower()
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal
    if port != DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def resolve(base: str, reference: str) -> str:
    """``reference`` (a redirect's Location, a sitemap's ``<loc>``) made absolute and normalised."""
    return normalise(urljoin(base, reference.strip()))


def origin(url: str) -> str:
    """``scheme://host:port`` of an absolute URL, the port always explicit (``https://a.com:443``).

    The unit of scope, of where secret headers may go, and of per-host limits.
    """
    parts, host, port = _split(url)
    netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal
    return f"{parts.scheme.lower()}://{netloc}:{port}"


def url_path(url: str) -> str:
    """The path of an absolute URL, ``/`` if empty."""
    return urlsplit(url).path or "/"


@dataclass(frozen=True)
class Scope:
    """Which URLs the connector may fetch: allowed origins (see :func:`origin`) and path prefixes."""

    origins: frozenset[str]
    prefixes: tuple[str, ...]

    @classmethod
    def of(cls, origins: Iterable[str], prefixes: Iterable[str]) -> Scope:
        return cls(frozenset(origins), tuple(prefixes))

    def allows(self, url: str) -> bool:
        """Whether ``url`` (absolute) is on an allowed origin under an allowed path prefix."""
        try:
            return origin(url) in self.origins and url_path(url).startswith(self.prefixes)
        except UrlError:
            return False

    def allows_redirect(self, source: str, target: str) -> bool:
        """A redirect stays in scope and never downgrades https to http."""
        downgrade = source.lower().startswith("https:") and not target.lower().startswith("https:")
        return not downgrade and self.allows(target)
