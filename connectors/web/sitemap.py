"""Sitemaps (sitemaps.org): ``<urlset>``, ``<sitemapindex>`` and plain-text lists of URLs."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException, DTDForbidden

_BOM = b"\xef\xbb\xbf"


class SitemapError(Exception):
    """The sitemap cannot be read; the message says why."""


@dataclass
class Sitemap:
    """What one sitemap file lists: pages, and for a sitemap index, further sitemaps."""

    pages: list[str] = field(default_factory=list)
    sitemaps: list[str] = field(default_factory=list)


def parse_sitemap(data: bytes) -> Sitemap:
    """The ``<loc>`` values of a sitemap or a sitemap index, or the lines of a text sitemap.

    Values are returned as written (stripped); resolving and checking them is the caller's job.
    The XML is untrusted: it is parsed with defusedxml, which refuses a document type declaration
    in any encoding (sitemaps have none, and entities are an XML bomb's fuse and an external
    reference's way in), so no entity is ever expanded or fetched.
    """
    content = data.removeprefix(_BOM).lstrip()
    if not content.startswith(b"<"):
        text = content.decode("utf-8", errors="replace")
        return Sitemap(pages=[line.strip() for line in text.splitlines() if line.strip()])
    try:
        root = SafeET.fromstring(content, forbid_dtd=True)
    except DTDForbidden:
        raise SitemapError("an XML document type declaration is not allowed in a sitemap") from None
    except DefusedXmlException as exc:  # entities or external references: a DTD is refused first
        raise SitemapError(f"unsafe XML refused ({type(exc).__name__})") from None
    except ET.ParseError as exc:
        raise SitemapError(f"invalid XML: {exc}") from None
    kind = _local(root.tag)
    entries = [_loc(entry) for entry in root if _local(entry.tag) in ("url", "sitemap")]
    locs = [loc for loc in entries if loc]
    if kind == "urlset":
        return Sitemap(pages=locs)
    if kind == "sitemapindex":
        return Sitemap(sitemaps=locs)
    raise SitemapError(f"not a sitemap (its root element is <{kind}>, not <urlset> or <sitemapindex>)")


def _local(tag: str) -> str:
    """An element's name without its namespace: ``{http://...}loc`` → ``loc``."""
    return tag.rpartition("}")[2]


def _loc(entry: ET.Element) -> str:
    for child in entry:
        if _local(child.tag) == "loc":
            return (child.text or "").strip()
    return ""
