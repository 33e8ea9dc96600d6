"""Evaluating a compiled rule set: parameters → rules → a decision, then the output values.

Everything a rule reads is computed when the rule first runs: a fact's record is looked up,
its declared cells typed, a value computed. So a rule a ``first_pass``/``first_fail`` decision
does not reach reads nothing: its missing record does not make the case ``not_found``, and its
bad cell is no error. Values no rule reads are the rule set's output, computed after the
decision; one that cannot be computed carries its error and the decision stands.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from typing import Any

from pydantic import BaseModel

from strongroom.server.errors import StrongroomError
from strongroom.server.models import ComputedValue, RuleCitation, RuleDecision, RuleResult
from strongroom.server.rules.expressions import Expression, HelperError, Reads, Scope, Template
from strongroom.server.rules.expressions.values import (
    cel_type,
    date_timestamp,
    display,
    fact_json,
    floating,
    to_cel,
    to_json,
)
from strongroom.server.rules.facts import FieldTypeError, KeyTemplate, coerce, is_empty
from strongroom.server.rules.index import RecordIndex, ResolvedCitation
from strongroom.server.rules.model import Combine, FieldSpec
from strongroom.server.rules.params import Parameter, check_arguments

Clock = Callable[[], datetime]
Visible = Callable[[str], bool]  # may the caller see this source?


def system_clock() -> datetime:
    return datetime.now(UTC)


def _see_everything(_source: str) -> bool:
    return True


class RuleEvaluationError(StrongroomError):
    """A rule could not be evaluated; the message names the rule set, the rule and the field."""


class _NotFound(Exception):
    """A required fact's record does not exist (``key`` None: its key refers to a missing value)."""

    def __init__(self, fact: CompiledFact, key: str | None) -> None:
        super().__init__(fact.name)
        self.fact = fact
        self.key = key


@dataclass(frozen=True)
class CompiledFact:
    name: str
    source: str
    key: KeyTemplate
    required: bool
    fields: dict[str, FieldSpec]
    not_found: KeyTemplate | None
    description: str = ""


@dataclass(frozen=True)
class CompiledValue:
    name: str  # as declared (may hold `-`); expressions call it by its cel_name
    expression: Expression
    description: str
    citation: ResolvedCitation | None
    reads: Reads

    @property
    def cel_name(self) -> str:
        return self.name.replace("-", "_")


def cel_name(name: str) -> str:
    """How an expression refers to a value: ``premium-paid-up`` is ``premium_paid_up``."""
    return name.replace("-", "_")


@dataclass(frozen=True)
class CompiledRule:
    id: str
    description: str
    expression: Expression
    when: Expression | None
    pass_reason: Template
    fail_reason: Template
    outcome: str | None
    citation: ResolvedCitation | None
    reads: Reads


@dataclass
class _Run:
    """The state of one evaluation."""

    scope: Scope
    moment: datetime
    index: RecordIndex
    arguments: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)  # fact looked up -> its fields (or None)
    bad: dict[str, dict[str, str]] = field(default_factory=dict)  # fact -> cell -> why it did not convert
    values: dict[str, Any] = field(default_factory=dict)  # value name -> its CEL result
    used: set[Reads] = field(default_factory=set)  # what the evaluated expressions read
    record_docs: dict[str, tuple[str, str]] = field(default_factory=dict)  # document id, source
    keys: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CompiledRuleSet:
    """One rule set, ready to decide."""

    name: str
    title: str
    description: str
    parameters: list[Parameter]
    facts: list[CompiledFact]
    values: list[CompiledValue]
    rules: list[CompiledRule]
    combine: Combine
    pass_outcome: str
    fail_outcome: str
    not_found_outcome: str
    tz: tzinfo
    arguments_model: type[BaseModel]  # strict: what a tool call may pass

    # -- describing the tool ------------------------------------------------------------------

    def tool_description(self) -> str:
        outcomes = sorted(
            {self.pass_outcome, self.fail_outcome, self.not_found_outcome}
            | {r.outcome for r in self.rules if r.outcome}
        )
        how = {
            "all": "every rule must pass",
            "any": "one passing rule is enough",
            "first_pass": "rules are tried in order and the first that passes decides",
            "first_fail": "rules are checked in order and the first that fails decides",
        }[self.combine]
        return (
            f"{self.description}\n\nDecides by the organisation's rules ({how}); returns `decision` "
            f"(one of: {', '.join(outcomes)}), each rule's reason and policy citation, and the facts "
            "used. Report the decision as given; cite `decision_id` in check_answer for claims about it."
        )

    def tool_definition(self) -> tuple[Any, ...]:
        """What a client sees of this tool (to tell whether a reload changed it)."""
        params = tuple((p.name, repr(p.annotation), repr(p.default)) for p in self.parameters)
        return (self.name, self.title, self.tool_description(), params)

    def input_schema(self) -> dict[str, Any]:
        """The tool's JSON input schema: what :meth:`check_arguments` accepts (but for ``1.0`` as an
        integer, which JSON Schema cannot refuse: see :mod:`.params`)."""
        return self.arguments_model.model_json_schema()

    def check_arguments(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Arguments validated strictly; InvalidArgument names each bad or unknown one."""
        return check_arguments(self.name, self.arguments_model, self.parameters, raw)

    # -- evaluating ---------------------------------------------------------------------------

    def evaluate(
        self,
        arguments: Mapping[str, Any],
        index: RecordIndex,
        *,
        clock: Clock = system_clock,
        visible: Visible = _see_everything,
    ) -> RuleDecision:
        """Decide for validated ``arguments``. Raises RuleEvaluationError naming rule and field."""
        moment = clock()
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        local = moment.astimezone(self.tz)
        scope = Scope(self.tz, date_timestamp(local.date()), floating(moment, self.tz))
        run = _Run(scope, moment, index)
        for p in self.parameters:
            value = arguments.get(p.name, None if p.required else p.default)
            run.arguments[p.name] = value
            number = p.spec.type == "number" and isinstance(value, int) and not isinstance(value, bool)
            scope.set(p.name, to_cel(float(value) if number else value, self.tz))

        try:
            results, decision, deciding = self._decide(run, visible)
        except _NotFound as missing:
            return self._not_found(missing.fact, missing.key, run)
        values = self._outputs(run, visible)
        used = Reads.empty()
        for reads in run.used:
            used = used | reads
        facts, withheld = self._facts_used(run, used, visible)
        decision_model = RuleDecision(
            decision_id=f"decision:{self.name}:{uuid.uuid4().hex[:12]}",
            rule_set=self.name,
            decision=decision,
            summary=self._summary(decision, results, deciding),
            decided_by=deciding[0].id if deciding and self.combine.startswith("first") else None,
            rules=results,
            values=values,
            facts=facts,
            withheld_facts=withheld,
            evaluated_at=moment,
        )
        # Every record looked up counts as exposure (and is audited), shown in facts or not; the
        # passages it cites are handed out by id, with none of their text.
        cited = {
            c.citation.chunk_id: c
            for c in [*(r.citation for r in self.rules), *(v.citation for v in self.values)]
            if c is not None and c.citation.chunk_id and visible(c.source)
        }
        decision_model.disclose(
            [
                (doc_id, source, _record_chunk(index, doc_id), len(str(facts.get(name, ""))))
                for name, (doc_id, source) in run.record_docs.items()
            ]
            + [(c.citation.document_id, c.source, chunk, 0) for chunk, c in cited.items()]
        )
        return decision_model

    def _outputs(self, run: _Run, visible: Visible) -> list[ComputedValue]:
        """The values the decision computed, and the rule set's output: the values no rule reads.
        An output that cannot be computed (a bad cell, a missing record) carries its error."""
        read_by_rules = Reads.empty()
        for rule in self.rules:
            read_by_rules = read_by_rules | rule.reads
        errors: dict[str, str] = {}
        for v in self.values:
            if v.cel_name in read_by_rules.roots:
                continue
            try:
                self._value(v, run, f"value {v.name!r}")
            except RuleEvaluationError as exc:
                errors[v.name] = str(exc)
            except _NotFound as missing:
                message = self._missing(missing.fact, missing.key, run)
                errors[v.name] = f"{self.name}: value {v.name!r} could not be evaluated: {message}"
        return [
            ComputedValue(
                name=v.name,
                value=_scalar(to_json(run.values[v.name], self.tz)) if v.name in run.values else None,
                error=errors.get(v.name),
                description=v.description,
                citation=_visible_citation(v.citation, visible),
            )
            for v in self.values
            if v.name in run.values or v.name in errors
        ]

    def _load_fact(self, fact: CompiledFact, run: _Run) -> None:
        """Look up a fact's record (after the facts its key refers to), once; raises _NotFound
        when a required one does not exist."""
        if fact.name in run.records:
            return
        for ref in fact.key.references:
            earlier = next((f for f in self.facts if f.name == ref[0]), None)
            if earlier is not None:
                self._load_fact(earlier, run)
        lookup = {**run.arguments, **run.records}
        key = fact.key.render(lookup)
        record = run.index.record(fact.source, key) if key is not None else None
        if record is None or record.fields is None:
            if fact.required:
                raise _NotFound(fact, key)
            run.records[fact.name] = None
            run.scope.set(fact.name, None)
            return
        run.record_docs[fact.name] = (record.id, record.source)
        run.keys[fact.name] = key or ""
        # Every declared cell is typed now, but a bad one fails only an expression that reads it.
        fields = dict(record.fields)
        bad: dict[str, str] = {}
        for name in fact.fields:
            try:
                fields[name] = self._cell(fact, name, fields.get(name), run)
            except FieldTypeError as exc:
                bad[name] = str(exc)
                fields.pop(name, None)
        run.records[fact.name] = fields
        run.bad[fact.name] = bad
        run.scope.set(fact.name, to_cel(fields, self.tz))

    def _cell(self, fact: CompiledFact, name: str, value: Any, run: _Run) -> Any:
        spec = fact.fields[name]
        where = f"{fact.source} record {run.keys.get(fact.name, '')!r}"
        if spec.required and is_empty(value):
            raise FieldTypeError(
                f"{fact.name}.{name} is required but empty in {where}. Fill in the record, or drop "
                "`required: true` to read an empty cell as null."
            )
        try:
            return coerce(value, spec)
        except FieldTypeError as exc:
            raise FieldTypeError(
                f"{fact.name}.{name} in {where} is declared {spec.type} but holds something else: {exc}. "
                "Fix the record or the declared type."
            ) from None

    def _check_cells(self, reads: Reads, run: _Run, who: str) -> None:
        """A declared cell that did not convert fails the first expression that reads it."""
        for fact, bad in run.bad.items():
            if not bad or fact not in reads.roots:
                continue
            read = set(bad) if (fact,) in reads.paths else reads.fields_of(fact) & set(bad)
            if read:
                raise RuleEvaluationError(f"{self.name}: {who} could not be evaluated: {bad[min(read)]}")

    def _value(self, v: CompiledValue, run: _Run, who: str) -> Any:
        """A value, computed the first time an expression needs it."""
        if v.name not in run.values:
            label = f"value {v.name!r}"
            result = self._run(
                v.expression, run, label if who.startswith("value") else f"{label} (for {who})"
            )
            run.values[v.name] = result
            run.scope.set(v.cel_name, result)
        return run.values[v.name]

    def _missing(self, fact: CompiledFact, key: str | None, run: _Run) -> str:
        if fact.not_found is not None:
            return fact.not_found.render(run.arguments) or fact.not_found.source
        if key is None:
            return f"No {fact.name} to look up: its key {fact.key.source!r} refers to a missing value."
        return f"No {fact.name} with key {key!r} in source {fact.source!r}."

    def _not_found(self, fact: CompiledFact, key: str | None, run: _Run) -> RuleDecision:
        message = self._missing(fact, key, run)
        shown = {
            p.name: _param_json(run.arguments.get(p.name))
            for p in self.parameters
            if p.name in _key_params(fact)
        }
        return RuleDecision(
            decision_id=f"decision:{self.name}:{uuid.uuid4().hex[:12]}",
            rule_set=self.name,
            decision=self.not_found_outcome,
            summary=f"{self.not_found_outcome}: {message}",
            rules=[
                RuleResult(
                    id=r.id, description=r.description, passed=None, reason="not evaluated: " + message
                )
                for r in self.rules
            ],
            facts=shown,
            evaluated_at=run.moment,
        )

    def _decide(self, run: _Run, visible: Visible) -> tuple[list[RuleResult], str, list[RuleResult]]:
        results: list[RuleResult] = []
        deciding: list[RuleResult] = []
        decision: str | None = None
        for rule in self.rules:
            citation = _visible_citation(rule.citation, visible)
            if decision is not None:
                results.append(
                    RuleResult(
                        id=rule.id,
                        description=rule.description,
                        passed=None,
                        reason="not reached: an earlier rule decided",
                        citation=citation,
                    )
                )
                continue
            if rule.when is not None:
                applies = self._run(rule.when, run, f"rule {rule.id!r} (when)")
                if not isinstance(applies, bool):
                    raise self._not_boolean(rule.id, "when", applies)
                if not applies:
                    results.append(
                        RuleResult(
                            id=rule.id,
                            description=rule.description,
                            passed=None,
                            reason=f"does not apply ({rule.when.source} is false)",
                            citation=citation,
                        )
                    )
                    continue
            passed = self._run(rule.expression, run, f"rule {rule.id!r}")
            if not isinstance(passed, bool):
                raise self._not_boolean(rule.id, "expression", passed)
            template = rule.pass_reason if passed else rule.fail_reason
            reason = self._render(template, run, rule)
            result = RuleResult(
                id=rule.id, description=rule.description, passed=passed, reason=reason, citation=citation
            )
            results.append(result)
            if (self.combine, passed) in (("first_pass", True), ("first_fail", False)):
                decision = rule.outcome or (self.pass_outcome if passed else self.fail_outcome)
                deciding = [result]
        applied = [r for r in results if r.passed is not None]
        if self.combine == "all":
            failed = [r for r in applied if not r.passed]
            return results, self.fail_outcome if failed else self.pass_outcome, failed or applied
        if self.combine == "any":
            winners = [r for r in applied if r.passed]
            return results, self.pass_outcome if winners else self.fail_outcome, winners[:1] or applied
        otherwise = self.fail_outcome if self.combine == "first_pass" else self.pass_outcome
        return results, decision or otherwise, deciding

    def _summary(self, decision: str, results: list[RuleResult], deciding: list[RuleResult]) -> str:
        applied = [r for r in results if r.passed is not None]
        if not applied:
            return f"{decision}: no rule applied."
        if self.combine == "all":
            failed = [r for r in deciding if r.passed is False]
            if not failed:
                return f"{decision}: all {len(applied)} applicable rules passed."
            return f"{decision}: {' '.join(_sentence(r.reason) for r in failed)}"
        if self.combine == "any" and not (deciding and deciding[0].passed):
            deciding = []
        if deciding:
            return f"{decision}: {_sentence(deciding[0].reason)}"
        if self.combine == "first_fail":
            return f"{decision}: all {len(applied)} applicable rules passed."
        return f"{decision}: none of the {len(applied)} applicable rules passed."

    def _prepare(self, reads: Reads, run: _Run, what: str) -> None:
        """Look up the facts, compute the values and type the record fields an expression reads."""
        if reads in run.used:
            return  # this expression's facts, values and cells are ready already
        for fact in self.facts:
            if fact.name in reads.roots:
                self._load_fact(fact, run)
        for v in self.values:
            if v.cel_name in reads.roots:
                self._value(v, run, what)
        self._check_cells(reads, run, what)
        run.used.add(reads)

    def _run(self, expr: Expression, run: _Run, what: str) -> Any:
        self._prepare(expr.reads, run, what)
        try:
            return expr.run(run.scope.context)
        except Exception as exc:  # CEL raises plain TypeError/KeyError/RuntimeError/ValueError
            raise RuleEvaluationError(self._explain(exc, expr, run, what, expr.reads)) from None

    def _render(self, template: Template, run: _Run, rule: CompiledRule) -> str:
        self._prepare(template.reads, run, f"the reason of rule {rule.id!r}")
        try:
            return template.render(run.scope.context, self.tz)
        except Exception as exc:
            expr = next((p for p in template.parts if isinstance(p, Expression)), None)
            if expr is None:
                raise
            raise RuleEvaluationError(
                self._explain(exc, expr, run, f"the reason of rule {rule.id!r}", template.reads)
            ) from None

    def _not_boolean(self, rule_id: str, part: str, value: Any) -> RuleEvaluationError:
        return RuleEvaluationError(
            f"{self.name}: rule {rule_id!r}: its {part} must be true or false, but gave "
            f"{display(value, self.tz)} ({cel_type(value)})"
        )

    def _explain(self, exc: Exception, expr: Expression, run: _Run, what: str, reads: Reads) -> str:
        """Which rule, which field, what went wrong: from CEL's terse exceptions."""
        head = f"{self.name}: {what} could not be evaluated"
        paths = sorted(p for p in reads.paths if p[0] in run.records or p[0] in run.arguments or len(p) > 1)
        observed = []
        suspects = []
        for path in paths:
            found, value = run.scope.lookup(path)
            dotted = ".".join(path)
            if not found:
                if path[0] in run.records and len(path) == 2:
                    suspects.append(f"{dotted} is missing from {self._record_label(path[0], run)}")
                continue
            kind = cel_type(value)
            observed.append(f"{dotted} = {_short(value, self.tz)} ({kind})")
            if value is None:
                suspects.append(f"{dotted} is empty (null)")
            elif isinstance(value, str) and path[0] in run.records and _looks_typed(value):
                fact = path[0]
                suspects.append(
                    f"{dotted} is the text {value!r}, not a {_looks_typed(value)}: declare "
                    f"`fields: {{{path[1]}: {_looks_typed(value)}}}` on fact {fact!r} or fix the record"
                )
        if isinstance(exc, KeyError):
            key = str(exc.args[0]) if exc.args else "?"
            holders = [".".join(p) for p in paths if p[-1] == key]
            where = holders[0] if holders else key
            problem = f"field {where} does not exist" + (
                f" in {self._record_label(holders[0].split('.')[0], run)}" if holders else ""
            )
            return f"{head}: {problem}. Use has({where}) in the rule if the field is optional."
        if isinstance(exc, HelperError) or (isinstance(exc, RuntimeError) and "Python function" in str(exc)):
            problem = str(exc).split("failed: ")[-1].split(". Check function")[0]
            problem = re.sub(r"^\w+Error: ", "", problem)
        elif isinstance(exc, TypeError):
            problem = "the values have types that cannot be combined or compared this way"
        elif isinstance(exc, ZeroDivisionError):
            problem = "division by zero"
        else:
            problem = str(exc).split("\n")[0]
        detail = f"; {'; '.join(suspects)}" if suspects else ""
        seen = f" (it reads {', '.join(observed)})" if observed and not suspects else ""
        return f"{head}: {problem}{detail}{seen}. Expression: {expr.source}"

    def _record_label(self, fact: str, run: _Run) -> str:
        spec = next((f for f in self.facts if f.name == fact), None)
        key = run.keys.get(fact)
        return f"{spec.source} record {key!r}" if spec and key is not None else f"fact {fact!r}"

    def _facts_used(self, run: _Run, used: Reads, visible: Visible) -> tuple[dict[str, Any], list[str]]:
        facts: dict[str, Any] = {}
        withheld: list[str] = []
        looked_up = [f for f in self.facts if f.name in run.records]
        for p in self.parameters:
            if p.name in used.roots or any(p.name in _key_params(f) for f in looked_up):
                facts[p.name] = _param_json(run.arguments.get(p.name))
        for fact in self.facts:
            if fact.name not in used.roots:
                continue
            record = run.records.get(fact.name)
            doc = run.record_docs.get(fact.name)
            if doc is not None and not visible(doc[1]):
                withheld.append(fact.name)
                continue
            if record is None:
                facts[fact.name] = None
                continue
            fields = sorted(used.fields_of(fact.name))
            facts[fact.name] = {f: fact_json(record.get(f)) for f in fields if f in record}
        for name in ("today", "now"):
            if name in used.roots:
                facts[name] = to_json(run.scope.variables[name], self.tz)
        return facts, withheld


def _record_chunk(index: RecordIndex, document_id: str) -> str:
    ids = index.chunk_ids(document_id)
    return ids[0] if ids else document_id


def _key_params(fact: CompiledFact) -> set[str]:
    return {ref[0] for ref in fact.key.references}


def _visible_citation(citation: ResolvedCitation | None, visible: Visible) -> RuleCitation | None:
    if citation is None or not visible(citation.source):
        return None
    return citation.citation


def _param_json(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return value


def _scalar(value: Any) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _short(value: Any, tz: tzinfo) -> str:
    shown = repr(value) if isinstance(value, str) else display(value, tz)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _looks_typed(text: str) -> str | None:
    """'date' or 'number' when a text field looks like one (a CSV cell left untyped)."""
    stripped = text.strip()
    try:
        date.fromisoformat(stripped[:10])
        return "date"
    except ValueError:
        pass
    try:
        float(stripped.replace(",", "").lstrip("$"))
        return "number"
    except ValueError:
        pass
    if stripped.lower() in ("true", "false", "yes", "no"):
        return "boolean"
    return None


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
