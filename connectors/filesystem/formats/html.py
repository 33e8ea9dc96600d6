"""HTML pages: the readable content as ``#`` headings and paragraphs."""

from __future__ import annotations

import re

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
_HEADING_LEVELS = {f"h{level}": level for level in range(1, 7)}
# Classes that frameworks and themes use to hide text from sight (screen-reader-only or not shown).
_HIDING_CLASSES = frozenset(
    {"sr-only", "visually-hidden", "visuallyhidden", "screen-reader-text", "screen-reader-only"}
    | {"d-none", "hidden", "invisible"}
)
_LENGTH = re.compile(r"^(?P<number>[-+]?(?:\d+\.?\d*|\.\d+))(?P<unit>[a-z%]*)$")
_OFF_SCREEN_PX = 500.0  # "left:-9999px" and the like put text far outside any viewport
_PX_PER_UNIT = {"": 1.0, "px": 1.0, "pt": 4 / 3, "em": 16.0, "rem": 16.0, "ch": 8.0, "vw": 10.0, "vh": 10.0}
_END_BLOCK = object()


def parse(data: bytes, encoding: str | None = None) -> Parsed:
    """An HTML page; its ``<title>``, if any, becomes the title.

    ``encoding`` is a known character set (an HTTP ``charset``) that overrides the page's own
    ``<meta charset>``; without it the encoding is sniffed from the bytes.
    """
    soup = BeautifulSoup(data, "html.parser", from_encoding=encoding)
    title = collapse_whitespace(soup.title.get_text()) if soup.title else ""
    return Parsed(title=title or None, text=tidy("\n\n".join(_render(soup))))


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


def _render(soup: BeautifulSoup) -> list[str]:
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


def _hidden(tag: Tag) -> bool:
    """Dropped elements and those a reader never sees (text hidden from sight is not the page's):
    the ``hidden`` attribute, ``aria-hidden="true"``, hiding classes and inline styles."""
    if tag.name in _DROPPED or tag.has_attr("hidden"):
        return True
    if str(tag.get("aria-hidden", "")).strip().lower() == "true":
        return True
    if any(str(name).lower() in _HIDING_CLASSES for name in tag.get_attribute_list("class") if name):
        return True
    style = tag.get("style")
    return isinstance(style, str) and _style_hides(style)


def _style_hides(style: str) -> bool:
    """Whether an inline style makes its text invisible: not displayed, transparent, zero-sized,
    clipped away or positioned far off screen."""
    rules: dict[str, str] = {}
    for declaration in style.lower().split(";"):
        name, _, value = declaration.partition(":")
        rules[name.strip()] = " ".join(value.replace("!important", "").split())
    if rules.get("display") == "none" or rules.get("visibility") in ("hidden", "collapse"):
        return True
    if _px(rules.get("opacity")) == 0 or _px(rules.get("font-size")) == 0:
        return True
    if rules.get("position") in ("absolute", "fixed") and any(
        (px := _px(rules.get(side))) is not None and px <= -_OFF_SCREEN_PX for side in ("left", "top")
    ):
        return True
    indent = _px(rules.get("text-indent"))
    if indent is not None and indent <= -_OFF_SCREEN_PX:
        return True
    if _clipped(rules.get("clip", ""), rules.get("clip-path", "")):
        return True
    tiny = any(
        (px := _px(rules.get(size))) is not None and px <= 1 for size in ("width", "height", "max-height")
    )
    return tiny and rules.get("overflow") in ("hidden", "clip")


def _clipped(clip: str, clip_path: str) -> bool:
    """``clip: rect(0 0 0 0)`` (any all-tiny rect), ``clip-path: inset(50%)`` or a zero circle."""
    if clip.startswith("rect("):
        sides = [_px(v) for v in re.split(r"[\s,]+", clip[5:].rstrip(")").strip())]
        if sides and all(px is not None and abs(px) <= 1 for px in sides):
            return True
    if clip_path.startswith("inset("):
        amount = clip_path[6:].rstrip(")").split()
        if amount and amount[0].endswith("%") and (_px(amount[0]) or 0) >= 50:
            return True
    return clip_path.startswith(("circle(0", "ellipse(0"))


def _px(value: str | None) -> float | None:
    """A CSS number or length in pixels (a percentage or bare number as written), else None."""
    match = _LENGTH.match(value or "")
    if match is None:
        return None
    unit = match["unit"]
    scale = 1.0 if unit == "%" else _PX_PER_UNIT.get(unit)
    return None if scale is None else float(match["number"]) * scale
