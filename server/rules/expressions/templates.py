"""Reason templates: text with ``{expression}`` placeholders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING

from strongroom.server.rules.expressions.compiling import Expression, ExpressionError, compile_expression
from strongroom.server.rules.expressions.reads import Reads
from strongroom.server.rules.expressions.values import display

if TYPE_CHECKING:
    import cel


@dataclass(frozen=True)
class Template:
    """A text with ``{expression}`` placeholders; ``{{`` and ``}}`` are literal braces."""

    source: str
    parts: tuple[str | Expression, ...]

    @property
    def reads(self) -> Reads:
        reads = Reads.empty()
        for part in self.parts:
            if isinstance(part, Expression):
                reads = reads | part.reads
        return reads

    def render(self, context: cel.Context, tz: tzinfo) -> str:
        out: list[str] = []
        for part in self.parts:
            out.append(part if isinstance(part, str) else display(part.run(context), tz))
        return "".join(out)


def compile_template(source: str) -> Template:
    parts: list[str | Expression] = []
    text: list[str] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if source.startswith("{{", i) or source.startswith("}}", i):
            text.append(ch)
            i += 2
        elif ch == "{":
            end = _placeholder_end(source, i)
            if end < 0:
                raise ExpressionError(f"unclosed '{{' at position {i + 1} (write '{{{{' for a brace)")
            if text:
                parts.append("".join(text))
                text = []
            parts.append(_placeholder(source[i + 1 : end]))
            i = end + 1
        elif ch == "}":
            raise ExpressionError(f"unmatched '}}' at position {i + 1} (write '}}}}' for a brace)")
        else:
            text.append(ch)
            i += 1
    if text:
        parts.append("".join(text))
    return Template(source, tuple(parts))


def _placeholder(source: str) -> Expression:
    try:
        return compile_expression(source)
    except ExpressionError as exc:
        raise ExpressionError(f"placeholder {{{source}}}: {exc}") from None


def _placeholder_end(source: str, start: int) -> int:
    """Index of the ``}`` closing the placeholder at ``start`` (skipping strings and maps)."""
    depth = 0
    quote: str | None = None
    i = start
    while i < len(source):
        ch = source[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1
