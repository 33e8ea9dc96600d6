"""HTML pages: the readable content as ``#`` headings and paragraphs."""

from __future__ import annotations

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PreformattedString, Tag

from .base import Parsed, collapse_whitespace, tidy

# Elements whose content is not the page's own readable text.
_DROPPED = frozenset(
    {"aside", "canvas", "footer", "head", "header", "iframe", "nav", "noscript", "object", "script"}
    | {"style", "svg", "template"}
)
_BLOCKS = frozenset(
    {"address", "article", "blockquote", "body", "caption", "dd", "details", "div", "dl", "dt"}
    | {"fieldset", "figcaption", "figure", "form", "hr", "html", "legend", "li", "main", "ol", "p"}
    | {"section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "ul"}
)
# Page chrome of generated manuals, by structure: DocBook (navheader, navfooter, toc, breadcrumbs),
# Sphinx (sidebar, related links, footer, permalink marks, theme menus) and ARIA landmarks.
_CHROME_CLASSES = frozenset(
    {
        "navheader",
        "navfooter",
        "toc",
        "toctree-wrapper",
        "breadcrumbs",
        "breadcrumb",
        "sphinxsidebar",
        "related",
    }
    | {"footer", "headerlink", "mobile-nav", "menu-wrapper", "inline-search", "skip-link"}
    | {"version_switcher_placeholder", "language_switcher_placeholder", "navbar", "sidebar"}
)
_CHROME_ROLES = frozenset({"navigation", "search", "banner", "contentinfo", "complementary"})
# Where a page's own content is, most specific first; without one, the whole body.
_MAIN = ("main", '[role="main"]', "div.body", "div.book, div.chapter, div.sect1, div.section, div.refentry")
_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}
_END_BLOCK = object()


def parse(data: bytes, encoding: str | None = None) -> Parsed:
    """An HTML page; its ``<title>``, if any, becomes the title.

    ``encoding`` is a known character set (an HTTP ``charset``) that overrides the page's own
    ``<meta charset>``; without it the encoding is sniffed from the bytes.
    """
    soup = BeautifulSoup(data, "html.parser", from_encoding=encoding)
    title = collapse_whitespace(soup.title.get_text()) if soup.title else ""
    return Parsed(title=title or None, text=tidy("\n\n".join(_render(_main_content(soup)))))


def _main_content(soup: BeautifulSoup) -> Tag:
    """The page's main content element, if it marks one, else the whole page; chrome removed."""
    for chrome in soup.find_all(_is_chrome):
        chrome.decompose()
    for selector in _MAIN:
        found = soup.select_one(selector)
        if found is not None and found.get_text(strip=True):
            return found
    return soup


class _Blocks:
    """Collects inline text into paragraphs (one per block element)."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.prefix = ""
        self._lines: list[list[str]] = [[]]

    def write(self, text: str) -> None:
        self._lines[-1].append(text)

    def line_break(self) -> None:
        self._lines.append([])

    def end_block(self) -> None:
        lines = (collapse_whitespace("".join(parts)) for parts in self._lines)
        block = "\n".join(line for line in lines if line)
        if block:
            self.blocks.append(self.prefix + block)
        self.prefix = ""
        self._lines = [[]]

    def add(self, block: str) -> None:
        self.end_block()
        if block:
            self.blocks.append(block)


def _render(soup: Tag) -> list[str]:
    """Walk the tree in document order (iteratively: deep markup must not hit the recursion limit)."""
    out = _Blocks()
    stack: list[object] = [soup]
    while stack:
        node = stack.pop()
        if node is _END_BLOCK:
            out.end_block()
        elif isinstance(node, NavigableString):
            if not isinstance(node, PreformattedString):  # comments, doctype, CDATA
                out.write(str(node))
        elif isinstance(node, Tag) and not _hidden(node):
            stack.extend(_visit(node, out))
    out.end_block()
    return out.blocks


def _visit(tag: Tag, out: _Blocks) -> list[object]:
    """Render ``tag`` if it is a leaf block; else return what to walk next, last first."""
    name = tag.name
    if name in _HEADING_LEVELS:
        text = collapse_whitespace(tag.get_text())
        out.add(f"{'#' * _HEADING_LEVELS[name]} {text}" if text else "")
    elif name == "pre":
        out.add(tidy(tag.get_text()))
    elif name == "tr":
        cells = (
            collapse_whitespace(cell.get_text(" ")) for cell in tag.find_all(["td", "th"], recursive=False)
        )
        out.add(" | ".join(cell for cell in cells if cell))
    elif name == "br":
        out.line_break()
    elif name in _BLOCKS:
        out.end_block()
        if name == "li":
            out.prefix = "- "
        return [_END_BLOCK, *reversed(tag.contents)]
    else:
        return list(reversed(tag.contents))
    return []


def _is_chrome(tag: Tag) -> bool:
    return tag.get("role") in _CHROME_ROLES or not _CHROME_CLASSES.isdisjoint(tag.get_attribute_list("class"))


def _hidden(tag: Tag) -> bool:
    """Dropped elements and those marked hidden (text a reader never sees is not the page's)."""
    if tag.name in _DROPPED or tag.has_attr("hidden") or tag.get("aria-hidden") == "true":
        return True
    style = tag.get("style")
    if not isinstance(style, str):
        return False
    style = style.replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style
