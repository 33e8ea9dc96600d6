"""Compiling a rules file: every expression, name, source and citation checked before serving."""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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
from strongroom.server.rules.model import ID, NAME, TOOL_NAME, CitationSpec, RuleSetSpec, RulesFile
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

    # -- the file -----------------------------------------------------------------------------

    def compile(self, spec: RulesFile, digest: str = "") -> RuleBook:
        try:
            tz = ZoneInfo(spec.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            self._problem(
                f"unknown time zone {spec.timezone!r} (use an IANA name like Europe/Paris)", ["timezone"]
            )
            tz = ZoneInfo("UTC")
        rule_sets: dict[str, CompiledRuleSet] = {}
        for name, rs_spec in spec.rule_sets.items():
            compiled = self._rule_set(name, rs_spec, tz)
            if compiled is not None:
                rule_sets[name] = compiled

        def resolve(citation: CitationSpec, loc: tuple[str | int, ...]) -> dict[str, Any] | None:
            resolved = self._citation(citation, list(loc), None, f"{loc[1]} policy")
            return resolved.citation.model_dump() if resolved else None

        policies, policy_errors = compile_policies(spec.answer_policies, resolve)
        for loc, message in policy_errors:
            kind, index, key = loc
            rule = None
            if isinstance(index, int):
                items = getattr(spec.answer_policies, str(kind))
                rule = f"{kind} policy {items[index].id!r}"
            self._problem(message, ["answer_policies", *[p for p in loc if p is not None]], None, rule, key)
        if self.problems:
            raise RulesError(sorted(self.problems, key=lambda p: p.line or 0))
        return RuleBook(self.path, rule_sets, policies, tuple(self.warnings), digest)

    # -- one rule set -------------------------------------------------------------------------

    def _rule_set(self, name: str, spec: RuleSetSpec, tz: ZoneInfo) -> CompiledRuleSet | None:
        before = len(self.problems)
        base: list[str | int] = ["rule_sets", name]
        if not re.fullmatch(TOOL_NAME, name):
            self._problem(
                "a rule set name becomes a tool name: lowercase letters, digits and _, starting with a letter",
                base,
                name,
            )
        elif name in BUILTIN_TOOLS:
            self._problem(f"{name!r} is the name of a built-in tool; choose another", base, name)

        # names: parameters, facts, values share one namespace
        kinds: dict[str, str] = {}
        for kind, names in (("parameter", spec.parameters), ("fact", spec.facts), ("value", spec.values)):
            section = f"{kind}s"
            for n in names:
                loc = [*base, section, n]
                as_cel = cel_name(n) if kind == "value" else n
                if not re.fullmatch(ID if kind == "value" else NAME, n):
                    allowed = (
                        "letters, digits, _ and -" if kind == "value" else "lowercase letters, digits and _"
                    )
                    self._problem(f"{kind} name {n!r}: use {allowed}", loc, name)
                elif as_cel in RESERVED_NAMES:
                    self._problem(f"{kind} name {n!r} is reserved (a CEL keyword or helper)", loc, name)
                elif as_cel in kinds:
                    self._problem(f"{kind} name {n!r} is already used by a {kinds[as_cel]}", loc, name)
                kinds.setdefault(as_cel, kind)

        raw_combine = (self.data.get("rule_sets") or {}).get(name, {}).get("combine")
        if raw_combine == "first":
            self._problem(
                "`combine: first` means the first rule that passes decides: write `combine: first_pass` "
                "(or `first_fail` for a screening list where the first failed check decides)",
                [*base, "combine"],
                name,
                warning=True,
            )
        # Every name an expression may use, with its declared type (dyn where it is unknown):
        # each expression is type-checked as it compiles, so every type error is reported at once.
        env: dict[str, Binding] = {"today": declared_type("date"), "now": declared_type("datetime")}
        params: list[Parameter] = []
        for pname, pspec in spec.parameters.items():
            try:
                param = build_parameter(pname, pspec)
            except ValueError as exc:
                self._problem(
                    str(exc), [*base, "parameters", pname, "default"], name, where=f"parameter {pname}"
                )
                env[pname] = DYN
                continue
            params.append(param)
            env[pname] = declared_type(pspec.type, nullable=not param.required and param.default is None)

        facts: list[CompiledFact] = []
        for fname, fspec in spec.facts.items():
            loc = [*base, "facts", fname]
            if fspec.source not in self.sources:
                close = difflib.get_close_matches(fspec.source, self.sources, 1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                configured = ", ".join(self.sources) or "none"
                self._problem(
                    f"unknown source {fspec.source!r} (configured: {configured}){hint}",
                    [*loc, "source"],
                    name,
                    where=f"fact {fname}",
                )
            key = KeyTemplate.parse(fspec.key)
            if not key.references:
                self._problem(
                    'the key has no {placeholder}: write e.g. key: "{order_id}"',
                    [*loc, "key"],
                    name,
                    where=f"fact {fname}",
                )
            for ref in key.references:
                if ref[0] not in env or ref[0] in ENGINE_NAMES:
                    self._problem(
                        f"the key refers to {'.'.join(ref)!r}, which is not a parameter or an earlier fact",
                        [*loc, "key"],
                        name,
                        where=f"fact {fname}",
                    )
                elif ref[0] in spec.parameters and len(ref) > 1:
                    self._problem(
                        f"parameter {ref[0]!r} has no fields", [*loc, "key"], name, where=f"fact {fname}"
                    )
            not_found = KeyTemplate.parse(fspec.not_found) if fspec.not_found else None
            for ref in not_found.references if not_found else ():
                if ref[0] not in spec.parameters:
                    self._problem(
                        f"the not_found message may only use parameters, not {'.'.join(ref)!r}",
                        [*loc, "not_found"],
                        name,
                        where=f"fact {fname}",
                    )
            facts.append(
                CompiledFact(
                    name=fname,
                    source=fspec.source,
                    key=key,
                    required=fspec.required,
                    fields=dict(fspec.fields),
                    not_found=not_found,
                    description=fspec.description,
                )
            )
            env[fname] = {
                field: declared_type(f.type, nullable=not f.required) for field, f in fspec.fields.items()
            }

        value_reads: dict[str, Reads] = {}
        values: list[CompiledValue] = []
        for vname, vspec in spec.values.items():
            loc = [*base, "values", vname]
            expr = self._expression(vspec.expression, env, [*loc, "expression"], name, f"value {vname}")
            citation = self._citation(vspec.citation, [*loc, "citation"], name, f"value {vname}")
            env[cel_name(vname)] = DYN if expr is None else check_types(expr.source, env)[0]
            if expr is not None:
                reads = _transitive(expr.reads, value_reads)
                value_reads[cel_name(vname)] = reads
                values.append(CompiledValue(vname, expr, vspec.description, citation, reads))

        rules: list[CompiledRule] = []
        for i, rspec in enumerate(spec.rules):
            loc = [*base, "rules", i]
            label = f"rule {rspec.id!r}"
            expr = self._expression(rspec.expression, env, [*loc, "expression"], name, label, "expression")
            when = (
                self._expression(rspec.when, env, [*loc, "when"], name, label, "when")
                if rspec.when is not None
                else None
            )
            passed = self._template(rspec.pass_reason, env, [*loc, "pass_reason"], name, label, "pass_reason")
            failed = self._template(rspec.fail_reason, env, [*loc, "fail_reason"], name, label, "fail_reason")
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
                continue
            reads = expr.reads | passed.reads | failed.reads | (when.reads if when else Reads.empty())
            rules.append(
                CompiledRule(
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
            )

        all_reads = Reads.empty()
        for r in rules:
            all_reads = all_reads | r.reads
        for v in values:
            all_reads = all_reads | v.reads
        for fact in facts:
            self._check_fields(name, fact, all_reads, base)
            used = fact.name in all_reads.roots or any(
                ref[0] == fact.name for f in facts for ref in f.key.references
            )
            if not used:
                self._problem(
                    f"fact {fact.name!r} is never used", [*base, "facts", fact.name], name, warning=True
                )

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

    # -- pieces -------------------------------------------------------------------------------

    def _expression(
        self,
        source: str,
        env: Mapping[str, Binding],
        loc: Sequence[str | int],
        rule_set: str,
        rule: str,
        where: str | None = None,
    ) -> Expression | None:
        """The compiled expression, or None; reports syntax, type and name problems."""
        try:
            expr = compile_expression(source)
        except ExpressionError as exc:
            self._problem(str(exc), loc, rule_set, rule, where)
            return None
        self._types(expr, env, loc, rule_set, rule, where)
        return expr if self._names(expr.reads, env, loc, rule_set, rule, where) else None

    def _template(
        self,
        source: str,
        env: Mapping[str, Binding],
        loc: Sequence[str | int],
        rule_set: str,
        rule: str,
        where: str,
    ) -> Template | None:
        try:
            template = compile_template(source)
        except ExpressionError as exc:
            self._problem(str(exc), loc, rule_set, rule, where)
            return None
        for part in template.parts:
            if isinstance(part, Expression):
                self._types(part, env, loc, rule_set, rule, where)
        return template if self._names(template.reads, env, loc, rule_set, rule, where) else None

    def _types(
        self,
        expr: Expression,
        env: Mapping[str, Binding],
        loc: Sequence[str | int],
        rule_set: str,
        rule: str,
        where: str | None,
    ) -> None:
        """Report each operation CEL has no overload for, with the operands' declared types
        (an unknown name is dyn: it never hides the type errors around it)."""
        for problem in check_types(expr.source, env)[1]:
            self._problem(str(problem), loc, rule_set, rule, where)

    def _names(
        self,
        reads: Reads,
        env: Mapping[str, Binding],
        loc: Sequence[str | int],
        rule_set: str,
        rule: str,
        where: str | None,
    ) -> bool:
        known = set(env)
        ok = True
        for root in sorted(reads.roots - known):
            close = difflib.get_close_matches(root, sorted(known), 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self._problem(
                f"unknown name {root!r} (known here: {', '.join(sorted(known))}){hint}",
                loc,
                rule_set,
                rule,
                where,
            )
            ok = False
        for fn in sorted(reads.functions - known_functions()):
            close = difflib.get_close_matches(fn, sorted(known_functions()), 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            self._problem(f"unknown function {fn!r}{hint}", loc, rule_set, rule, where)
            ok = False
        for fn in sorted(reads.functions & set(QUIRKY_FUNCTIONS)):
            self._problem(QUIRKY_FUNCTIONS[fn], loc, rule_set, rule, where, warning=True)
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

    def _check_fields(self, rule_set: str, fact: CompiledFact, reads: Reads, base: list[str | int]) -> None:
        """Fields the rules read must exist in the source's records (or be declared)."""
        read = reads.fields_of(fact.name)
        if not read or self.index is None or fact.source not in self.sources:
            return
        seen = self._record_fields(fact.source)
        loc = [*base, "facts", fact.name]
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
            close = difflib.get_close_matches(field_name, sorted(seen), 1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
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
