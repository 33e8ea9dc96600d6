"""What an expression reads: its root variables, the field paths under them, the functions it calls."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from strongroom.server.rules.expressions.lexer import CEL_RESERVED, MACROS, NAMESPACES, Token, tokens


@dataclass(frozen=True)
class Reads:
    """Names an expression uses: root variables, field paths under them, functions called."""

    roots: frozenset[str]
    paths: frozenset[tuple[str, ...]]
    bound: frozenset[str]
    functions: frozenset[str]

    @staticmethod
    def empty() -> Reads:
        return Reads(frozenset(), frozenset(), frozenset(), frozenset())

    def __or__(self, other: Reads) -> Reads:
        return Reads(
            self.roots | other.roots,
            self.paths | other.paths,
            self.bound | other.bound,
            self.functions | other.functions,
        )

    def fields_of(self, root: str) -> set[str]:
        """Top-level fields read under ``root`` (``order.address.city`` gives ``address``)."""
        return {p[1] for p in self.paths if p[0] == root and len(p) > 1}


def analyse(source: str) -> Reads:
    """Find the variables, field paths and functions an expression refers to."""
    toks = tokens(source)
    bound = _macro_variables(toks)
    roots: set[str] = set()
    paths: set[tuple[str, ...]] = set()
    functions: set[str] = set()
    i = 0
    while i < len(toks):
        if toks[i].kind != "ident" or _text(toks, i - 1) == ".":
            i += 1
            continue
        chain, i = _chain(toks, i)
        if _text(toks, i) == "(":  # the last name is called: a function or a method
            chain, called = _split_call(chain)
            functions.add(called)
        if chain and chain[0] not in CEL_RESERVED:
            roots.add(chain[0])
            paths.add(tuple(chain))
    roots -= bound
    paths = {p for p in paths if p[0] not in bound}
    return Reads(frozenset(roots), frozenset(paths), frozenset(bound), frozenset(functions))


def _macro_variables(toks: Sequence[Token]) -> set[str]:
    """In ``xs.exists(e, ...)``, ``e`` is bound by the macro, not a variable."""
    return {
        toks[i + 2].text
        for i, tok in enumerate(toks)
        if tok.kind == "ident"
        and tok.text in MACROS
        and _text(toks, i - 1) == "."
        and _text(toks, i + 1) == "("
        and _kind(toks, i + 2) == "ident"
        and _text(toks, i + 3) == ","
    }


def _chain(toks: Sequence[Token], i: int) -> tuple[list[str], int]:
    """The dotted path starting at the name ``toks[i]`` (``a.b['c']``) and the index after it."""
    chain = [toks[i].text]
    j = i + 1
    while True:
        if _text(toks, j) == "." and _kind(toks, j + 1) == "ident":
            chain.append(toks[j + 1].text)
            j += 2
        elif _text(toks, j) == "[" and _text(toks, j + 2) == "]" and _key(toks[j + 1]) is not None:
            chain.append(_key(toks[j + 1]) or "")
            j += 3
        else:
            return chain, j


def _split_call(chain: list[str]) -> tuple[list[str], str]:
    """A called chain's receiver path and the function: ``days(...)``, ``order.items.exists(...)``,
    or ``math.round(...)``, whose namespace is part of the function's name."""
    *receiver, called = chain
    if len(receiver) == 1 and receiver[0] in NAMESPACES:
        return [], f"{receiver[0]}.{called}"
    return receiver, called


def _key(tok: Token) -> str | None:
    """The name in a ``['name']`` subscript: a plain string literal, else None."""
    return _plain_string(tok.text) if tok.kind == "string" else None


def _text(toks: Sequence[Token], i: int) -> str | None:
    return toks[i].text if 0 <= i < len(toks) else None


def _kind(toks: Sequence[Token], i: int) -> str | None:
    return toks[i].kind if 0 <= i < len(toks) else None


def _plain_string(literal: str) -> str | None:
    m = re.fullmatch(r"'([A-Za-z0-9_]*)'|\"([A-Za-z0-9_]*)\"", literal)
    return None if m is None else (m.group(1) if m.group(1) is not None else m.group(2))
