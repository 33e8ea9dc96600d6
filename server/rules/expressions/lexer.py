"""CEL tokens, and the names CEL itself gives meaning to."""

from __future__ import annotations

import re
from dataclasses import dataclass

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+|//[^\n]*)
  | (?P<string>(?:[rR][bB]?|[bB][rR]?)?(?:'''.*?'''|\"\"\".*?\"\"\"|'(?:\\.|[^'\\\n])*'|"(?:\\.|[^"\\\n])*"))
  | (?P<number>0[xX][0-9a-fA-F]+[uU]?|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?[uU]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>==|!=|<=|>=|&&|\|\||[-+*/%!<>?:.,\[\](){}])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
NAMESPACES = frozenset({"math", "strings"})
CEL_RESERVED = frozenset(
    {
        "true", "false", "null", "in", "as", "break", "const", "continue", "else", "for",
        "function", "if", "import", "let", "loop", "package", "namespace", "return", "var",
        "void", "while",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int


def tokens(source: str) -> list[Token]:
    """CEL tokens without whitespace and comments (strings kept whole)."""
    out: list[Token] = []
    for m in _TOKEN.finditer(source):
        kind = m.lastgroup or "other"
        if kind != "ws":
            out.append(Token(kind, m.group(), m.start()))
    return out
