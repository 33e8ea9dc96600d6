"""Compiling an expression with CEL, with CEL's syntax errors made readable."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strongroom.server.rules.expressions.loading import load_cel
from strongroom.server.rules.expressions.reads import Reads, analyse

if TYPE_CHECKING:  # CEL loads with the first rules file, not on the MCP handshake path
    import cel


class ExpressionError(ValueError):
    """An expression does not parse; the message is CEL's, with the position."""


@dataclass(frozen=True)
class Expression:
    """A compiled expression and what it reads."""

    source: str
    program: cel.Program
    reads: Reads

    def run(self, context: cel.Context) -> Any:
        return self.program.execute(context)


def compile_expression(source: str) -> Expression:
    """Compile ``source`` (raising ExpressionError with CEL's message on a syntax error)."""
    if not source.strip():
        raise ExpressionError("the expression is empty")
    load_cel()
    import cel

    try:
        program = cel.compile(source)
    except ValueError as exc:
        raise ExpressionError(_parse_message(str(exc))) from None
    return Expression(source, program, analyse(source))


def _parse_message(message: str) -> str:
    # "Failed to parse expression '...': ERROR: <input>:1:6: Syntax error: ...\n| src\n| ....^"
    m = re.search(r"ERROR: <input>:(\d+):(\d+): (.*)", message, re.DOTALL)
    if not m:
        return message
    detail = re.sub(r"^Syntax error:\s*", "", m.group(3).split("\n| ")[0].strip())
    detail = re.sub(r" expecting \{.*\}$", "", detail)  # ANTLR's list of every token it could take
    detail = detail.replace("mismatched input '<EOF>'", "the expression ends too early")
    return f"syntax error at column {m.group(2)}: {detail}"
