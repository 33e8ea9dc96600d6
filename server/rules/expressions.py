"""The CEL layer: compile rule expressions, find what they read, and type values for CEL.

The operator writing rules should not meet CEL's quirks (see ``../shared/notes/cel.md``), so
everything that enters an expression goes through :func:`to_cel` and every expression through
:func:`compile_expression`:

- Numbers are CEL's own: expressions are compiled as written, and values are typed by their
  declared types (``integer`` is int, ``number`` is double, in every row); int and double
  compare with each other but do not mix in arithmetic, which :mod:`.typecheck` reports
  before serving. Helpers that count (``days_between``, ``year``, ...) return int.
- Dates are timestamps at 00:00 UTC. Date-times are converted to the rules' business time zone
  and carried as that wall-clock time tagged UTC ("floating" local time), so ``today``,
  dates and date-times compare and subtract without time-zone surprises.
- Helpers cover what CEL lacks: ``days(n)``, ``days_between(a, b)``, ``days_since(t)``,
  ``add_days``/``add_months``/``add_years``, ``date('2025-02-01')``, 1-based ``year``/
  ``month``/``day``/``weekday``, and ``coalesce(a, b)``.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

import cel
from cel.stdlib import EXTENSIONS

# -- tokens ---------------------------------------------------------------------------------

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


# -- what an expression reads ---------------------------------------------------------------


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
    roots: set[str] = set()
    paths: set[tuple[str, ...]] = set()
    bound: set[str] = set()
    functions: set[str] = set()
    for i, tok in enumerate(toks):
        # `xs.exists(e, ...)`: `e` is bound by the macro, not a variable.
        if (
            tok.kind == "ident"
            and tok.text in MACROS
            and i > 0
            and toks[i - 1].text == "."
            and _text(toks, i + 1) == "("
            and _kind(toks, i + 2) == "ident"
            and _text(toks, i + 3) == ","
        ):
            bound.add(toks[i + 2].text)
    i = 0
    while i < len(toks):
        tok = toks[i]
        if tok.kind != "ident" or (i > 0 and toks[i - 1].text == "."):
            i += 1
            continue
        chain = [tok.text]
        j = i + 1
        while True:
            if _text(toks, j) == "." and _kind(toks, j + 1) == "ident":
                chain.append(toks[j + 1].text)
                j += 2
            elif (
                _text(toks, j) == "["
                and _kind(toks, j + 1) == "string"
                and _text(toks, j + 2) == "]"
                and _plain_string(toks[j + 1].text) is not None
            ):
                chain.append(_plain_string(toks[j + 1].text) or "")
                j += 3
            else:
                break
        if _text(toks, j) == "(":  # the last name is called: a function or a method
            called = chain.pop()
            if len(chain) == 1 and chain[0] in NAMESPACES:
                functions.add(f"{chain[0]}.{called}")  # math.round(...)
                chain = []
            else:
                functions.add(called)  # days(...) or a method: order.items.exists(...)
        if chain and chain[0] not in CEL_RESERVED:
            roots.add(chain[0])
            paths.add(tuple(chain))
        i = j
    roots -= bound
    paths = {p for p in paths if p[0] not in bound}
    return Reads(frozenset(roots), frozenset(paths), frozenset(bound), frozenset(functions))


def _text(toks: Sequence[Token], i: int) -> str | None:
    return toks[i].text if 0 <= i < len(toks) else None


def _kind(toks: Sequence[Token], i: int) -> str | None:
    return toks[i].kind if 0 <= i < len(toks) else None


def _plain_string(literal: str) -> str | None:
    m = re.fullmatch(r"'([A-Za-z0-9_]*)'|\"([A-Za-z0-9_]*)\"", literal)
    return None if m is None else (m.group(1) if m.group(1) is not None else m.group(2))


# -- compiling ------------------------------------------------------------------------------


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


# -- templates: "{expr}" placeholders in reasons --------------------------------------------


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
            try:
                parts.append(compile_expression(source[i + 1 : end]))
            except ExpressionError as exc:
                raise ExpressionError(f"placeholder {{{source[i + 1 : end]}}}: {exc}") from None
            i = end + 1
        elif ch == "}":
            raise ExpressionError(f"unmatched '}}' at position {i + 1} (write '}}}}' for a brace)")
        else:
            text.append(ch)
            i += 1
    if text:
        parts.append("".join(text))
    return Template(source, tuple(parts))


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


# -- values into CEL and back ----------------------------------------------------------------


def date_timestamp(d: date) -> datetime:
    """A date as CEL carries it: a timestamp at 00:00 UTC."""
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def floating(dt: datetime, tz: tzinfo) -> datetime:
    """A date-time as the business's wall-clock time, tagged UTC (naive ones are taken as local)."""
    local = dt.astimezone(tz) if dt.tzinfo is not None else dt
    return local.replace(tzinfo=UTC)


def to_cel(value: Any, tz: tzinfo) -> Any:
    """A Python value as CEL takes it: ints stay int, floats and decimals are double."""
    if value is None or isinstance(value, bool | str | bytes):
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return floating(value, tz)
    if isinstance(value, date):
        return date_timestamp(value)
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value
    if isinstance(value, Mapping):
        return {str(k): to_cel(v, tz) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_cel(v, tz) for v in value]
    return str(value)


def cel_type(value: Any) -> str:
    """The CEL type name of a converted value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date" if _is_midnight(value) else "timestamp"
    if isinstance(value, timedelta):
        return "duration"
    if isinstance(value, Mapping):
        return "map"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _is_midnight(value: datetime) -> bool:
    return value.hour == value.minute == value.second == value.microsecond == 0


def to_json(value: Any, tz: tzinfo) -> Any:
    """A CEL result as JSON: dates as ``YYYY-MM-DD``, whole numbers as integers, durations in days."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value) and value == int(value) and abs(value) < 2**53:
            return int(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if _is_midnight(value):
            return value.date().isoformat()
        return value.replace(tzinfo=tz).isoformat() if tz is not UTC else value.isoformat()
    if isinstance(value, timedelta):
        return to_json(value.total_seconds() / 86400, tz)
    if isinstance(value, Mapping):
        return {str(k): to_json(v, tz) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v, tz) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def fact_json(value: Any) -> Any:
    """A record field as JSON, from its original Python type."""
    if value is None or isinstance(value, bool | str | int | float):
        return value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): fact_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [fact_json(v) for v in value]
    return str(value)


def display(value: Any, tz: tzinfo) -> str:
    """A value as it reads inside a sentence: ``30``, ``12.5``, ``2025-03-01``, ``yes``."""
    shown = to_json(value, tz)
    if isinstance(shown, bool):
        return "yes" if shown else "no"
    if shown is None:
        return "none"
    if isinstance(shown, float):
        return f"{shown:.2f}".rstrip("0").rstrip(".")
    if isinstance(shown, list):
        return ", ".join(display(v, tz) for v in value)
    return str(shown)


# -- helper functions -----------------------------------------------------------------------


class HelperError(ValueError):
    """A helper function got an argument it cannot use."""


def _whole(n: Any, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | float) or n != int(n):
        raise HelperError(f"{name}() needs a whole number, got {n!r}")
    return int(n)


def _stamp(t: Any, name: str) -> datetime:
    if not isinstance(t, datetime):
        kind = "null" if t is None else type(t).__name__
        raise HelperError(f"{name}() needs a date, got {kind} {t!r}")
    return t


def _add_months(t: datetime, months: int) -> datetime:
    total = t.month - 1 + months
    year, month = t.year + total // 12, total % 12 + 1
    day = min(t.day, calendar.monthrange(year, month)[1])
    return t.replace(year=year, month=month, day=day)


def parse_date(text: str) -> date:
    """``YYYY-MM-DD`` (or an ISO date-time, whose date is taken)."""
    try:
        return date.fromisoformat(text.strip()[:10])
    except ValueError:
        raise HelperError(f"{text!r} is not a date (write YYYY-MM-DD)") from None


def _date(value: Any) -> datetime:
    if isinstance(value, datetime):
        return date_timestamp(value.date())
    if isinstance(value, str):
        return date_timestamp(parse_date(value))
    raise HelperError(f"date() needs a string like '2025-02-01', got {value!r}")


STATIC_HELPERS: dict[str, Callable[..., Any]] = {
    "date": _date,
    "days": lambda n: timedelta(days=_whole(n, "days")),
    "days_between": lambda a, b: (_stamp(b, "days_between").date() - _stamp(a, "days_between").date()).days,
    "add_days": lambda t, n: _stamp(t, "add_days") + timedelta(days=_whole(n, "add_days")),
    "add_months": lambda t, n: _add_months(_stamp(t, "add_months"), _whole(n, "add_months")),
    "add_years": lambda t, n: _add_months(_stamp(t, "add_years"), 12 * _whole(n, "add_years")),
    "year": lambda t: _stamp(t, "year").year,
    "month": lambda t: _stamp(t, "month").month,
    "day": lambda t: _stamp(t, "day").day,
    "weekday": lambda t: _stamp(t, "weekday").isoweekday(),
    "coalesce": lambda *values: next((v for v in values if v is not None), None),
}
CLOCK_HELPERS = ("days_since",)
LIBRARY: dict[str, Callable[..., Any]] = {**EXTENSIONS["strings"], **EXTENSIONS["math"]}
HELPER_NAMES = frozenset(STATIC_HELPERS) | frozenset(CLOCK_HELPERS)
ENGINE_NAMES = frozenset({"now", "today"})
RESERVED_NAMES = CEL_RESERVED | HELPER_NAMES | ENGINE_NAMES | NAMESPACES


def functions_for(today: datetime) -> dict[str, Callable[..., Any]]:
    """Every function an expression may call, with ``today`` bound for ``days_since``."""

    def days_since(t: Any) -> int:
        return (today.date() - _stamp(t, "days_since").date()).days

    return {**LIBRARY, **STATIC_HELPERS, "days_since": days_since}


@dataclass
class Scope:
    """The variables of one evaluation, grown as facts and values are computed."""

    tz: tzinfo
    today: datetime
    now: datetime
    variables: dict[str, Any] = field(default_factory=dict)
    context: cel.Context = field(init=False)

    def __post_init__(self) -> None:
        self.context = cel.Context({"now": self.now, "today": self.today}, functions_for(self.today))
        self.variables.update(now=self.now, today=self.today)

    def set(self, name: str, value: Any) -> None:
        self.variables[name] = value
        self.context.add_variable(name, value)

    def lookup(self, path: Sequence[str]) -> tuple[bool, Any]:
        """(found, value) of a dotted path in the current variables."""
        value: Any = self.variables
        for part in path:
            if not isinstance(value, Mapping) or part not in value:
                return False, None
            value = value[part]
        return True, value
