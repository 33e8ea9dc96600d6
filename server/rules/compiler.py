"""Compiling a rules file: every expression, name, source and citation checked before serving."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from strongroom.server.rules.engine import (
    CompiledFact,
    CompiledRule,
    CompiledRuleSet,
    CompiledValue,
    cel_name,
)
from strongroom.server.rules.expressions import (
    ENGINE_NAMES,
    HELPER_NAMES,
    RESERVED_NAMES,
    Expression,
    ExpressionError,
    Reads,
    Template,
    compile_expression,
    compile_template,
    library,
)
from strongroom.server.rules.facts import KeyTemplate
from strongroom.server.rules.index import CitationError, RecordIndex, ResolvedCitation, resolve_citation
from strongroom.server.rules.loader import line_of, load_rules_file
from strongroom.server.rules.model import (
    ID,
    NAME,
    TOOL_NAME,
    AnswerPoliciesSpec,
    CitationSpec,
    RuleSetSpec,
    RulesFile,
)
from strongroom.server.rules.params import Parameter, arguments_model, build_parameter
from strongroom.server.rules.policies import AnswerPolicies, compile_policies
from strongroom.server.rules.problems import RuleProblem, RulesError
from strongroom.server.rules.typecheck import DYN, Binding, check_types, declared_type

BUILTIN_TOOLS = frozenset({"search", "read_document", "list_sources", "check_answer"})
CEL_FUNCTIONS = frozenset(
    {
        "size", "has", "int", "uint", "double", "string", "bytes", "bool", "timestamp", "duration",
        "dyn", "type", "matches", "contains", "startsWith", "endsWith", "all", "exists", "exists_one",
        "map", "filter", "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek",
        "getDayOfYear", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip
QUIRKY_FUNCTIONS = {
    "getMonth": "getMonth() counts from 0 (January is 0): use month(t), which counts from 1",
    "getDayOfMonth": "getDayOfMonth() counts from 0: use day(t), which counts from 1",
    "getDayOfWeek": "getDayOfWeek() counts from 0 = Sunday: use weekday(t) (1 = Monday ... 7 = Sunday)",
}


def known_functions() -> frozenset[str]:
    """Every function name an expression may call."""
    return CEL_FUNCTIONS | HELPER_NAMES | frozenset(library())


RECORD_SAMPLE = 25
_T = TypeVar("_T")


@dataclass(frozen=True)
class RuleBook:
    """A compiled rules file: one tool per rule set, plus the answer policies."""

    path: Path | None
    rule_sets: dict[str, CompiledRuleSet]
    policies: AnswerPolicies
    warnings: tuple[RuleProblem, ...] = ()
    digest: str = ""

    @property
    def rule_count(self) -> int:
        return sum(len(rs.rules) for rs in self.rule_sets.values())

    @staticmethod
    def empty() -> RuleBook:
        return RuleBook(None, {}, AnswerPolicies.default())


def load_rulebook(path: Path, index: RecordIndex | None, sources: Sequence[str]) -> RuleBook:
    """Read, validate and compile a rules file; raises RulesError listing every problem.

    ``index`` None skips the checks that need the index (citations, record fields).
    """
    spec, data = load_rules_file(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return Compiler(path, data, index, sources).compile(spec, digest)


@dataclass(frozen=True)
class _Place:
    """Where an expression stands in the rules file (for its problems), and the names it may use."""

    env: Mapping[str, Binding]
    loc: Sequence[str | int]
    rule_set: str
    rule: str
    where: str | None = None


class Compiler:
    def __init__(self, path: Path, data: Any, index: RecordIndex | None, sources: Sequence[str]) -> None:
        self.path = path
        self.data = data
        self.index = index
        self.sources = list(sources)
        self.problems: list[RuleProblem] = []
        self.warnings: list[RuleProblem] = []
        self._fields_cache: dict[str, set[str] | None] = {}

    # -- reporting ----------------------------------------------------------------------------

    def _problem(
        self,
        message: str,
        loc: Sequence[str | int],
        rule_set: str | None = None,
        rule: str | None = None,
        where: str | None = None,
        *,
        warning: bool = False,
    ) -> None:
        problem = RuleProblem(self.path, message, line_of(self.data, loc), rule_set, rule, where)
        (self.warnings if warning else self.problems).append(problem)

    def _report(self, message: str, place: _Place, *, warning: bool = False) -> None:
        self._problem(message, place.loc, place.rule_set, place.rule, place.where, warning=warning)

    # -- the file -----------------------------------------------------------------------------

    def compile(self, spec: RulesFile, digest: str = "") -> RuleBook:
        tz = self._timezone(spec.timezone)
        rule_sets: dict[str, CompiledRuleSet] = {}
        for name, rs_spec in spec.rule_sets.items():
            compiled = self._rule_set(name, rs_spec, tz)
            if compiled is not None:
                rule_sets[name] = compiled
        policies = self._answer_policies(spec.answer_policies)
        if self.problems:
            raise RulesError(sorted(self.problems, key=lambda p: p.line or 0))
        return RuleBook(self.path, rule_sets, policies, tuple(self.warnings), digest)

    def _timezone(self, name: str) -> ZoneInfo:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self._problem(f"unknown time zone {name!r} (use an IANA name like Europe/Paris)", ["timezone"])
            return ZoneInfo("UTC")

    def _answer_policies(self, spec: AnswerPoliciesSpec) -> AnswerPolicies:
        def resolve(citation: CitationSpec, loc: tuple[str | int, ...]) -> dict[str, Any] | None:
            resolved = self._citation(citation, list(loc), None, f"{loc[1]} policy")
            return resolved.citation.model_dump() if resolved else None

        policies, policy_errors = compile_policies(spec, resolve)
        for loc, message in policy_errors:
            kind, index, key = loc
            rule = None
            if isinstance(index, int):
                items = getattr(spec, str(kind))
                rule = f"{kind} policy {items[index].id!r}"
            self._problem(message, ["answer_policies", *[p for p in loc if p is not None]], None, rule, key)
        return policies

    # -- one rule set -------------------------------------------------------------------------

    def _rule_set(self, name: str, spec: RuleSetSpec, tz: ZoneInfo) -> CompiledRuleSet | None:
        before = len(self.problems)
        self._check_tool_name(name)
        self._check_names(name, spec)
        self._check_combine(name)
        # Every name an expression may use, with its declared type (dyn where it is unknown):
        # each expression is type-checked as it compiles, so every type error is reported at once.
        env: dict[str, Binding] = {"today": declared_type("date"), "now": declared_type("datetime")}
        params = self._parameters(name, spec, env)
        facts = [self._fact(name, fname, spec, env) for fname in spec.facts]
        value_reads: dict[str, Reads] = {}
        values = _kept(self._value(name, vname, spec, env, value_reads) for vname in spec.values)
        rules = _kept(self._rule(name, i, spec, env, value_reads) for i in range(len(spec.rules)))
        self._check_facts(name, facts, rules, values)
        if len(self.problems) > before:
            return None
        return CompiledRuleSet(
            name=name,
            title=spec.title or name.replace("_", " ").capitalize(),
            description=spec.description.strip(),
            parameters=params,
            facts=facts,
            values=values,
            rules=rules,
            combine=spec.combine,
            pass_outcome=spec.outcomes.pass_,
            fail_outcome=spec.outcomes.fail,
            not_found_outcome=spec.outcomes.not_found,
            tz=tz,
            arguments_model=arguments_model(name, params, strict=True),
        )

    def _check_tool_name(self, name: str) -> None:
        if not re.fullmatch(TOOL_NAME, name):
            self._problem(
                "a rule set name becomes a tool name: lowercase letters, digits and _, starting with a letter",
                _at(name),
                name,
            )
        elif name in BUILTIN_TOOLS:
            self._problem(f"{name!r} is the name of a built-in tool; choose another", _at(name), name)

    def _check_names(self, name: str, spec: RuleSetSpec) -> None:
        """Parameters, facts and values share one namespace."""
        kinds: dict[str, str] = {}
        for kind, names in (("parameter", spec.parameters), ("fact", spec.facts), ("value", spec.values)):
            for n in names:
                as_cel = cel_name(n) if kind == "value" else n
                problem = _name_problem(kind, n, as_cel, kinds)
                if problem is not None:
                    self._problem(problem, _at(name, f"{kind}s", n), name)
                kinds.setdefault(as_cel, kind)

    def _check_combine(self, name: str) -> None:
        raw_combine = (self.data.get("rule_sets") or {}).get(name, {}).get("combine")
        if raw_combine == "first":
            self._problem(
                "`combine: first` means the first rule that passes decides: write `combine: first_pass` "
                "(or `first_fail` for a screening list where the first failed check decides)",
                _at(name, "combine"),
                name,
                warning=True,
            )

    def _parameters(self, name: str, spec: RuleSetSpec, env: dict[str, Binding]) -> list[Parameter]:
        """The parameters that build, each bound in ``env`` (dyn when it does not)."""
        params: list[Parameter] = []
        for pname, pspec in spec.parameters.items():
            try:
                param = build_parameter(pname, pspec)
            except ValueError as exc:
                loc = _at(name, "parameters", pname, "default")
                self._problem(str(exc), loc, name, where=f"parameter {pname}")
                env[pname] = DYN
                continue
            params.append(param)
            env[pname] = declared_type(pspec.type, nullable=not param.required and param.default is None)
        return params

    # -- facts --------------------------------------------------------------------------------

    def _fact(self, name: str, fname: str, spec: RuleSetSpec, env: dict[str, Binding]) -> CompiledFact:
        """The fact, its record bound in ``env``; reports an unknown source and bad key references."""
        fspec = spec.facts[fname]
        loc, where = _at(name, "facts", fname), f"fact {fname}"
        self._check_source(fspec.source, [*loc, "source"], name, where)
        key = KeyTemplate.parse(fspec.key)
        for message in _key_problems(key, env, spec):
            self._problem(message, [*loc, "key"], name, where=where)
        not_found = KeyTemplate.parse(fspec.not_found) if fspec.not_found else None
        for ref in not_found.references if not_found else ():
            if ref[0] not in spec.parameters:
                self._problem(
                    f"the not_found message may only use parameters, not {'.'.join(ref)!r}",
                    [*loc, "not_found"],
                    name,
                    where=where,
                )
        env[fname] = {
            field: declared_type(f.type, nullable=not f.required) for field, f in fspec.fields.items()
        }
        return CompiledFact(
            name=fname,
            source=fspec.source,
            key=key,
            required=fspec.required,
            fields=dict(fspec.fields),
            not_found=not_found,
            description=fspec.description,
        )

    def _check_source(self, source: str, loc: Sequence[str | int], rule_set: str, where: str) -> None:
        if source not in self.sources:
            configured = ", ".join(self.sources) or "none"
            self._problem(
                f"unknown source {source!r} (configured: {configured}){_hint(source, self.sources)}",
                loc,
                rule_set,
                where=where,
            )

    def _check_facts(
        self, name: str, facts: list[CompiledFact], rules: list[CompiledRule], values: list[CompiledValue]
    ) -> None:
        """The fields each fact's rules read exist; a fact nothing uses is a warning."""
        all_reads = Reads.empty()
        for read in [*(r.reads for r in rules), *(v.reads for v in values)]:
            all_reads = all_reads | read
        keyed = {ref[0] for f in facts for ref in f.key.references}
        for fact in facts:
            self._check_fields(name, fact, all_reads)
            if fact.name not in all_reads.roots and fact.name not in keyed:
                self._problem(
                    f"fact {fact.name!r} is never used", _at(name, "facts", fact.name), name, warning=True
                )

    # -- values and rules ---------------------------------------------------------------------

    def _value(
        self, name: str, vname: str, spec: RuleSetSpec, env: dict[str, Binding], value_reads: dict[str, Reads]
    ) -> CompiledValue | None:
        """The value, bound in ``env`` with its type and in ``value_reads`` with what it reads."""
        vspec = spec.values[vname]
        loc, label = _at(name, "values", vname), f"value {vname}"
        expr = self._expression(vspec.expression, _Place(env, [*loc, "expression"], name, label))
        citation = self._citation(vspec.citation, [*loc, "citation"], name, label)
        env[cel_name(vname)] = DYN if expr is None else check_types(expr.source, env)[0]
        if expr is None:
            return None
        reads = _transitive(expr.reads, value_reads)
        value_reads[cel_name(vname)] = reads
        return CompiledValue(vname, expr, vspec.description, citation, reads)

    def _rule(
        self, name: str, i: int, spec: RuleSetSpec, env: dict[str, Binding], value_reads: dict[str, Reads]
    ) -> CompiledRule | None:
        rspec = spec.rules[i]
        loc, label = _at(name, "rules", i), f"rule {rspec.id!r}"

        def expression(source: str, key: str) -> Expression | None:
            return self._expression(source, _Place(env, [*loc, key], name, label, key))

        def template(source: str, key: str) -> Template | None:
            return self._template(source, _Place(env, [*loc, key], name, label, key))

        expr = expression(rspec.expression, "expression")
        when = expression(rspec.when, "when") if rspec.when is not None else None
        passed = template(rspec.pass_reason, "pass_reason")
        failed = template(rspec.fail_reason, "fail_reason")
        citation = self._citation(rspec.citation, [*loc, "citation"], name, label)
        if rspec.outcome is not None and spec.combine not in ("first_pass", "first_fail"):
            self._problem(
                "`outcome` only applies with `combine: first_pass` or `first_fail` "
                f"(this rule set combines with {spec.combine!r})",
                [*loc, "outcome"],
                name,
                label,
            )
        if expr is None or passed is None or failed is None or (rspec.when is not None and when is None):
            return None
        reads = expr.reads | passed.reads | failed.reads | (when.reads if when else Reads.empty())
        return CompiledRule(
            id=rspec.id,
            description=rspec.description,
            expression=expr,
            when=when,
            pass_reason=passed,
            fail_reason=failed,
            outcome=rspec.outcome,
            citation=citation,
            reads=_transitive(reads, value_reads),
        )

    # -- pieces -------------------------------------------------------------------------------

    def _expression(self, source: str, place: _Place) -> Expression | None:
        """The compiled expression, or None; reports syntax, type and name problems."""
        try:
            expr = compile_expression(source)
        except ExpressionError as exc:
            self._report(str(exc), place)
            return None
        self._types(expr, place)
        return expr if self._names(expr.reads, place) else None

    def _template(self, source: str, place: _Place) -> Template | None:
        try:
            template = compile_template(source)
        except ExpressionError as exc:
            self._report(str(exc), place)
            return None
        for part in template.parts:
            if isinstance(part, Expression):
                self._types(part, place)
        return template if self._names(template.reads, place) else None

    def _types(self, expr: Expression, place: _Place) -> None:
        """Report each operation CEL has no overload for, with the operands' declared types
        (an unknown name is dyn: it never hides the type errors around it)."""
        for problem in check_types(expr.source, place.env)[1]:
            self._report(str(problem), place)

    def _names(self, reads: Reads, place: _Place) -> bool:
        known = set(place.env)
        ok = True
        for root in sorted(reads.roots - known):
            self._report(
                f"unknown name {root!r} (known here: {', '.join(sorted(known))}){_hint(root, sorted(known))}",
                place,
            )
            ok = False
        for fn in sorted(reads.functions - known_functions()):
            hint = _hint(fn, sorted(known_functions()))
            self._report(f"unknown function {fn!r}{hint}", place)
            ok = False
        for fn in sorted(reads.functions & set(QUIRKY_FUNCTIONS)):
            self._report(QUIRKY_FUNCTIONS[fn], place, warning=True)
        return ok

    def _citation(
        self, spec: CitationSpec | None, loc: Sequence[str | int], rule_set: str | None, rule: str
    ) -> ResolvedCitation | None:
        if spec is None or self.index is None:
            return None
        try:
            return resolve_citation(self.index, self.sources, spec.document, spec.heading)
        except CitationError as exc:
            self._problem(str(exc), loc, rule_set, rule, "citation")
            return None

    def _check_fields(self, rule_set: str, fact: CompiledFact, reads: Reads) -> None:
        """Fields the rules read must exist in the source's records (or be declared)."""
        read = reads.fields_of(fact.name)
        if not read or self.index is None or fact.source not in self.sources:
            return
        seen = self._record_fields(fact.source)
        loc = _at(rule_set, "facts", fact.name)
        if seen is None:
            self._problem(
                f"source {fact.source!r} has no records indexed yet (run `strongroom sync`): "
                f"the fields rules read from fact {fact.name!r} cannot be checked",
                loc,
                rule_set,
                warning=True,
            )
            return
        for field_name in sorted(read - seen - set(fact.fields)):
            hint = _hint(field_name, sorted(seen))
            self._problem(
                f"rules read {fact.name}.{field_name}, but no record of source {fact.source!r} has a field "
                f"{field_name!r} (fields: {', '.join(sorted(seen))}){hint}",
                loc,
                rule_set,
            )

    def _record_fields(self, source: str) -> set[str] | None:
        if source not in self._fields_cache:
            assert self.index is not None
            keys = sorted(self.index.document_hashes(source))[:RECORD_SAMPLE]
            fields: set[str] = set()
            found = False
            for key in keys:
                record = self.index.record(source, key)
                if record is not None and record.fields is not None:
                    found = True
                    fields |= set(record.fields)
            self._fields_cache[source] = fields if found else None
        return self._fields_cache[source]


def _transitive(reads: Reads, value_reads: dict[str, Reads]) -> Reads:
    """What an expression reads, including through the values it uses."""
    out = reads
    for root in reads.roots:
        if root in value_reads:
            out = out | value_reads[root]
    return out


def _at(rule_set: str, *path: str | int) -> list[str | int]:
    """Where in the rules file: ``rule_sets.<rule_set>.<path...>``."""
    return ["rule_sets", rule_set, *path]


def _hint(word: str, candidates: Sequence[str]) -> str:
    """``; did you mean 'x'?`` for the closest candidate, or nothing."""
    close = difflib.get_close_matches(word, candidates, 1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _kept(items: Iterable[_T | None]) -> list[_T]:
    """The items that compiled (the others reported their problems)."""
    return [item for item in items if item is not None]


def _name_problem(kind: str, name: str, as_cel: str, taken: Mapping[str, str]) -> str | None:
    """What is wrong with a parameter, fact or value name, given the names ``taken`` before it."""
    if not re.fullmatch(ID if kind == "value" else NAME, name):
        allowed = "letters, digits, _ and -" if kind == "value" else "lowercase letters, digits and _"
        return f"{kind} name {name!r}: use {allowed}"
    if as_cel in RESERVED_NAMES:
        return f"{kind} name {name!r} is reserved (a CEL keyword or helper)"
    if as_cel in taken:
        return f"{kind} name {name!r} is already used by a {taken[as_cel]}"
    return None


def _key_problems(key: KeyTemplate, env: Mapping[str, Binding], spec: RuleSetSpec) -> Iterator[str]:
    """A fact's key must refer to parameters or earlier facts, and to parameters without fields."""
    if not key.references:
        yield 'the key has no {placeholder}: write e.g. key: "{order_id}"'
    for ref in key.references:
        if ref[0] not in env or ref[0] in ENGINE_NAMES:
            yield f"the key refers to {'.'.join(ref)!r}, which is not a parameter or an earlier fact"
        elif ref[0] in spec.parameters and len(ref) > 1:
            yield f"parameter {ref[0]!r} has no fields"
