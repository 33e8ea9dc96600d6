"""A static type check of rule expressions against the declared parameter and field types.

The CEL binding has no checker, and at run time a type error names neither operand. This
module parses an expression (the CEL grammar minus message construction) and infers the type
of every node from the declared types, so ``rules check`` reports, before serving, the rule and
the operand types of every operation CEL has no overload for (``int - double``, a date compared
with a string, ...) and of every equality that cannot hold (a date ``==`` a string, which CEL
evaluates to false without complaint). A name or field of unknown type is ``dyn`` and never an
error; an expression this parser does not understand is left to the run time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

from strongroom.server.rules.expressions import MACROS, NAMESPACES, Token, tokens

Type = frozenset[str]  # a union of CEL type names; {"dyn"} is unknown
Record = dict[str, Type]  # a fact: its fields' types (an unlisted field is dyn)
Binding = Union[Type, Record]  # noqa: UP007 - an alias evaluated at run time


def t(*names: str) -> Type:
    return frozenset(names)


DYN, INT, UINT, DOUBLE, BOOL = t("dyn"), t("int"), t("uint"), t("double"), t("bool")
STRING, NULL, TIMESTAMP, DURATION, LIST, MAP = (
    t("string"), t("null"), t("timestamp"), t("duration"), t("list"), t("map"),
)  # fmt: skip
NUMERIC = frozenset({"int", "uint", "double"})

_SAME = {(n, n): n for n in ("int", "uint", "double")}
ARITHMETIC: dict[str, dict[tuple[str, str], str]] = {
    "+": {
        **_SAME, ("string", "string"): "string", ("bytes", "bytes"): "bytes", ("list", "list"): "list",
        ("timestamp", "duration"): "timestamp", ("duration", "timestamp"): "timestamp",
        ("duration", "duration"): "duration",
    },
    "-": {
        **_SAME, ("timestamp", "timestamp"): "duration", ("timestamp", "duration"): "timestamp",
        ("duration", "duration"): "duration",
    },
    "*": dict(_SAME),
    "/": dict(_SAME),
    "%": {("int", "int"): "int", ("uint", "uint"): "uint"},
}  # fmt: skip
ORDERED = {("string", "string"), ("bytes", "bytes"), ("bool", "bool"), ("timestamp", "timestamp")} | {
    ("duration", "duration")
}

_STAMP_HELPERS = {"days_between", "days_since", "add_days", "add_months", "add_years", "year"} | {
    "month",
    "day",
    "weekday",
}
FUNCTIONS: dict[str, Type] = {
    "size": INT, "int": INT, "uint": UINT, "double": DOUBLE, "string": STRING, "bytes": t("bytes"),
    "bool": BOOL, "timestamp": TIMESTAMP, "duration": DURATION, "type": STRING, "has": BOOL,
    "matches": BOOL, "contains": BOOL, "startsWith": BOOL, "endsWith": BOOL, "all": BOOL,
    "exists": BOOL, "exists_one": BOOL, "map": LIST, "filter": LIST, "getFullYear": INT,
    "getMonth": INT, "getDate": INT, "getDayOfMonth": INT, "getDayOfWeek": INT, "getDayOfYear": INT,
    "getHours": INT, "getMinutes": INT, "getSeconds": INT, "getMilliseconds": INT,
    "date": TIMESTAMP, "days": DURATION, "days_between": INT, "days_since": INT, "add_days": TIMESTAMP,
    "add_months": TIMESTAMP, "add_years": TIMESTAMP, "year": INT, "month": INT, "day": INT,
    "weekday": INT, "lowerAscii": STRING, "upperAscii": STRING, "replace": STRING, "trim": STRING,
    "substring": STRING, "charAt": STRING, "join": STRING, "quote": STRING, "indexOf": INT,
    "lastIndexOf": INT, "split": LIST, "math.round": DOUBLE, "math.ceil": DOUBLE,
    "math.floor": DOUBLE, "math.trunc": DOUBLE, "math.sqrt": DOUBLE, "math.isNaN": BOOL,
    "math.isInf": BOOL, "math.isFinite": BOOL,
}  # fmt: skip
_ARG_PRESERVING = {"math.abs", "math.sign", "coalesce", "dyn"}
_TIMESTAMP_METHODS = {name for name in FUNCTIONS if name.startswith("get")}


def show(typ: Type) -> str:
    """``int``, ``int or double``, ``dyn``."""
    names = sorted(typ - {"null"}) or ["null"]
    return " or ".join(names)


@dataclass(frozen=True)
class TypeProblem:
    """An operation with no overload for the operands' types."""

    text: str  # the operation as written
    message: str

    def __str__(self) -> str:
        return f"type error in `{self.text}`: {self.message}"


class _Unparsed(Exception):
    """Syntax this checker does not model: skip the static check."""


@dataclass(frozen=True)
class _Node:
    type: Type
    start: int
    end: int
    record: Record | None = None  # a fact, so that `.field` has a type


class _Checker:
    def __init__(self, source: str, env: Mapping[str, Binding]) -> None:
        self.source = source
        self.toks = tokens(source)
        self.i = 0
        self.scopes: list[set[str]] = []
        self.env = env
        self.problems: list[TypeProblem] = []

    # -- tokens -------------------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def at(self, *texts: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind in ("op", "ident") and tok.text in texts

    def take(self, text: str | None = None) -> Token:
        tok = self.peek()
        if tok is None or (text is not None and tok.text != text):
            raise _Unparsed
        self.i += 1
        return tok

    def end_of(self, tok: Token) -> int:
        return tok.start + len(tok.text)

    def node(self, typ: Type, start: int, end: int) -> _Node:
        return _Node(typ, start, end)

    def problem(self, start: int, end: int, message: str) -> None:
        self.problems.append(TypeProblem(self.source[start:end], message))

    # -- grammar ------------------------------------------------------------------------------

    def expression(self) -> _Node:
        cond = self.binary(0)
        if not self.at("?"):
            return cond
        self.take("?")
        yes = self.expression()
        self.take(":")
        no = self.expression()
        self.expect_bool(cond, "the condition of `? :`")
        return self.node(yes.type | no.type, cond.start, no.end)

    LEVELS: tuple[tuple[str, ...], ...] = (
        ("||",),
        ("&&",),
        ("<", "<=", ">", ">=", "==", "!=", "in"),
        ("+", "-"),
        ("*", "/", "%"),
    )

    def binary(self, level: int) -> _Node:
        if level == len(self.LEVELS):
            return self.unary()
        left = self.binary(level + 1)
        while self.at(*self.LEVELS[level]):
            op = self.take().text
            right = self.binary(level + 1)
            left = self.node(self.combine(op, left, right), left.start, right.end)
        return left

    def unary(self) -> _Node:
        if self.at("!", "-"):
            tok = self.take()
            operand = self.unary()
            if tok.text == "!":
                self.expect_bool(operand, "`!`")
                return self.node(BOOL, tok.start, operand.end)
            bad = operand.type - NUMERIC - {"duration", "dyn", "null"}
            if bad or "uint" in operand.type:
                self.problem(tok.start, operand.end, f"`-` is not defined for {show(operand.type)}")
            return self.node(operand.type - {"uint"} or DYN, tok.start, operand.end)
        return self.member(self.primary())

    def member(self, target: _Node, namespace: str | None = None) -> _Node:
        while True:
            if self.at("."):
                self.take(".")
                name = self.take()
                if self.at("("):
                    called = f"{namespace}.{name.text}" if namespace else name.text
                    target = self.call(called, target if namespace is None else None, target.start)
                elif target.record is not None:
                    field = target.record.get(name.text, DYN)
                    target = self.node(field, target.start, self.end_of(name))
                else:
                    target = self.node(DYN, target.start, self.end_of(name))
                namespace = None
            elif self.at("["):
                self.take("[")
                self.expression()
                close = self.take("]")
                target = self.node(DYN, target.start, self.end_of(close))
            else:
                return target

    def primary(self) -> _Node:
        tok = self.take()
        if tok.kind in ("number", "string"):
            return self.constant(tok)
        if tok.text == "(":
            inner = self.expression()
            close = self.take(")")
            return self.node(inner.type, tok.start, self.end_of(close))
        if tok.text in ("[", "{"):
            return self.literal(tok)
        if tok.kind != "ident":
            raise _Unparsed
        return self.name(tok)

    def constant(self, tok: Token) -> _Node:
        """A number or string literal: ``1`` is int, ``1.0`` and ``1e3`` double, ``1u`` uint."""
        end = self.end_of(tok)
        if tok.kind == "string":
            return self.node(t("bytes") if tok.text[:2].lower() in ("b'", 'b"') else STRING, tok.start, end)
        text = tok.text.lower()
        if text.endswith("u"):
            return self.node(UINT, tok.start, end)
        is_double = not text.startswith("0x") and any(c in text for c in ".e")
        return self.node(DOUBLE if is_double else INT, tok.start, end)

    def name(self, tok: Token) -> _Node:
        """A name: a literal, a call, a namespace, a macro's variable or a declared variable."""
        end = self.end_of(tok)
        if tok.text in ("true", "false"):
            return self.node(BOOL, tok.start, end)
        if tok.text == "null":
            return self.node(NULL, tok.start, end)
        if self.at("("):
            return self.call(tok.text, None, tok.start)
        if tok.text in NAMESPACES and self.at(".") and tok.text not in self.env:
            return self.member(self.node(DYN, tok.start, end), namespace=tok.text)
        if any(tok.text in scope for scope in self.scopes):
            return self.node(DYN, tok.start, end)
        bound = self.env.get(tok.text, DYN)
        if isinstance(bound, dict):
            return _Node(MAP, tok.start, end, bound)
        return self.node(bound, tok.start, end)

    def literal(self, open_: Token) -> _Node:
        close = "]" if open_.text == "[" else "}"
        while not self.at(close):
            self.expression()
            if close == "}":
                self.take(":")
                self.expression()
            if not self.at(close):
                self.take(",")
        end = self.take(close)
        return self.node(LIST if close == "]" else MAP, open_.start, self.end_of(end))

    def call(self, name: str, receiver: _Node | None, start: int) -> _Node:
        self.take("(")
        args: list[_Node] = []
        bound: set[str] = set()
        if name.split(".")[-1] in MACROS and receiver is not None:
            var, comma = self.peek(), self.peek(1)
            if var is not None and var.kind == "ident" and comma is not None and comma.text == ",":
                bound = {var.text}
        self.scopes.append(bound)
        try:
            while not self.at(")"):
                args.append(self.expression())
                if not self.at(")"):
                    self.take(",")
        finally:
            self.scopes.pop()
        close = self.take(")")
        end = self.end_of(close)
        if name == "has":
            return self.node(BOOL, start, end)
        self.check_call(name, receiver, args, start, end)
        if name in _ARG_PRESERVING:
            kinds = frozenset().union(*(a.type for a in args)) if args else DYN
            return self.node(kinds - {"null"} if name == "coalesce" else kinds, start, end)
        return self.node(FUNCTIONS.get(name, DYN), start, end)

    # -- typing -------------------------------------------------------------------------------

    def check_call(self, name: str, receiver: _Node | None, args: list[_Node], start: int, end: int) -> None:
        if name in _STAMP_HELPERS and args:
            self.expect(args[0], {"timestamp"}, f"{name}() needs a date")
        if name == "days_between" and len(args) > 1:
            self.expect(args[1], {"timestamp"}, "days_between() needs a date")
        if name in ("add_days", "add_months", "add_years", "days"):
            count = args[1] if name != "days" and len(args) > 1 else args[0] if args else None
            if count is not None:
                self.expect(count, {"int", "double"}, f"{name}() needs a whole number")
        if name in _TIMESTAMP_METHODS and receiver is not None:
            self.expect(receiver, {"timestamp"}, f"{name}() is a method of a date or timestamp")

    def expect(self, node: _Node, allowed: set[str], message: str) -> None:
        actual = node.type - {"null"}
        if actual and "dyn" not in actual and not actual & allowed:
            self.problem(node.start, node.end, f"{message}, got {show(node.type)}")

    def expect_bool(self, node: _Node, what: str) -> None:
        self.expect(node, {"bool"}, f"{what} needs true or false")

    def combine(self, op: str, left: _Node, right: _Node) -> Type:
        if op in ("==", "!="):
            self.expect_comparable(op, left, right)
            return BOOL
        if op in ("&&", "||"):
            self.expect_bool(left, f"`{op}`")
            self.expect_bool(right, f"`{op}`")
            return BOOL
        if op == "in":
            self.expect(right, {"list", "map"}, "`in` needs a list or a map on its right")
            return BOOL
        lefts, rights = left.type - {"null"}, right.type - {"null"}
        if "dyn" in lefts or "dyn" in rights or not lefts or not rights:
            return DYN if op in ARITHMETIC else BOOL
        results, failed = _overloads(op, lefts, rights)
        if failed:
            self.problem(left.start, right.end, self.no_overload(op, left.type, right.type, failed))
        return frozenset(results) or DYN

    def expect_comparable(self, op: str, left: _Node, right: _Node) -> None:
        """CEL evaluates ``==`` across types (a date against a string) without an error, and it is
        never true: report it when no pair of the operands' types can be equal (null aside)."""
        lefts, rights = left.type - {"null"}, right.type - {"null"}
        if not lefts or not rights or "dyn" in lefts | rights:
            return
        if any(a == b or {a, b} <= NUMERIC for a in lefts for b in rights):
            return
        always = "false" if op == "==" else "true"
        hint = (
            ": write the date as date('YYYY-MM-DD')"
            if {"timestamp", "string"} <= lefts | rights
            else ": convert one side, e.g. with string(...), int(...) or double(...)"
        )
        message = f"`{op}` compares {show(left.type)} with {show(right.type)}, so it is always {always}"
        self.problem(left.start, right.end, message + hint)

    def no_overload(self, op: str, left: Type, right: Type, failed: list[tuple[str, str]]) -> str:
        message = f"`{op}` is not defined for {show(left)} and {show(right)}"
        if len(left - {"null"}) > 1 or len(right - {"null"}) > 1:
            pairs = ", ".join(f"{a} {op} {b}" for a, b in failed)
            message += f" (no overload for {pairs})"
        if any({a, b} <= NUMERIC for a, b in failed):
            message += (
                ": CEL does not mix int and double in arithmetic; write 1.0 for a double literal, "
                "or convert with double(...) or int(...)"
            )
        return message


def _overloads(op: str, lefts: Type, rights: Type) -> tuple[set[str], list[tuple[str, str]]]:
    """The result types of ``op`` over each pair of operand types, and the pairs it has none for."""
    results: set[str] = set()
    failed: list[tuple[str, str]] = []
    for a in sorted(lefts):
        for b in sorted(rights):
            if op in ARITHMETIC:
                result = ARITHMETIC[op].get((a, b))
            else:
                ordered = (a in NUMERIC and b in NUMERIC) or (a, b) in ORDERED
                result = "bool" if ordered else None
            if result is None:
                failed.append((a, b))
            else:
                results.add(result)
    return results, failed


def check_types(source: str, env: Mapping[str, Binding]) -> tuple[Type, list[TypeProblem]]:
    """The expression's type and the type problems in it (none if it cannot be modelled)."""
    checker = _Checker(source, env)
    try:
        node = checker.expression()
        if checker.peek() is not None:
            raise _Unparsed
    except _Unparsed:
        return DYN, []
    return node.type, checker.problems


_DECLARED = {
    "string": STRING, "enum": STRING, "integer": INT, "number": DOUBLE, "boolean": BOOL,
    "date": TIMESTAMP, "datetime": TIMESTAMP,
}  # fmt: skip


def declared_type(kind: str, nullable: bool = False) -> Type:
    """The CEL type of a declared parameter or field type (``number`` is double)."""
    base = _DECLARED[kind]
    return base | NULL if nullable else base
