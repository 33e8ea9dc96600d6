"""The rules file, as pydantic models: shape and local consistency only.

Whether expressions compile, names resolve, sources exist and citations point at indexed
documents is the compiler's job (:mod:`strongroom.server.rules.compiler`), which reports
problems in the same form.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

NAME = r"^[a-z_][a-z0-9_]{0,63}$"
ID = r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$"  # rule, value and policy ids: `premium-paid-up`
TOOL_NAME = r"^[a-z][a-z0-9_]{0,63}$"
OUTCOME = r"^[a-z][a-z0-9_]{0,63}$"

ParamType = Literal["string", "integer", "number", "boolean", "date", "enum"]
FieldType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
Combine = Literal["all", "any", "first_pass", "first_fail"]
COMBINE_ALIASES: dict[str, Combine] = {"first": "first_pass"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _type_shorthand(value: Any) -> Any:
    """``order_id: string`` means ``order_id: {type: string}``."""
    return {"type": value} if isinstance(value, str) else value


def _expression_shorthand(value: Any) -> Any:
    """``window: "30"`` means ``window: {expression: "30"}``."""
    return {"expression": value} if isinstance(value, str) else value


def _citation_shorthand(value: Any) -> Any:
    """``"handbook/refund-policy.md#Return windows"`` means ``{document: ..., heading: ...}``."""
    if isinstance(value, str):
        document, _, heading = value.partition("#")
        return {"document": document.strip(), "heading": heading.strip() or None}
    return value


def _quoted_template(value: Any) -> Any:
    if isinstance(value, dict):
        raise ValueError(
            'YAML read this as a mapping: put text with {placeholders} in quotes, e.g. "{order_id}"'
        )
    return value


class CitationSpec(_Strict):
    """A document of an indexed source, or a heading inside it."""

    document: str = Field(min_length=1, description="Document id (source/path) as search returns it.")
    heading: str | None = Field(default=None, description="A heading in the document, numbering optional.")


Citation = Annotated[CitationSpec, BeforeValidator(_citation_shorthand)]
Text = Annotated[str, BeforeValidator(_quoted_template)]


class ParameterSpec(_Strict):
    """One typed input of a rule-set tool."""

    type: ParamType
    description: str = ""
    default: Any = None
    required: bool | None = Field(default=None, description="Default: required unless a default is given.")
    values: list[str] | None = Field(default=None, description="The allowed values of an enum.")
    min: float | None = None
    max: float | None = None
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=1)
    pattern: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> ParameterSpec:
        self._check_enum()
        self._check_bounds()
        self._check_text()
        if self.required and self.has_default:
            raise ValueError("a parameter with a `default` cannot also be `required: true`")
        return self

    def _check_enum(self) -> None:
        if self.type == "enum":
            if not self.values:
                raise ValueError("an enum needs `values`, a non-empty list of strings")
            if len(set(self.values)) != len(self.values):
                raise ValueError("enum `values` must be distinct")
        elif self.values is not None:
            raise ValueError(f"`values` only applies to type enum, not {self.type}")

    def _check_bounds(self) -> None:
        if (self.min is not None or self.max is not None) and self.type not in ("integer", "number"):
            raise ValueError(f"`min`/`max` only apply to integer and number, not {self.type}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"`min` ({self.min:g}) is greater than `max` ({self.max:g})")

    def _check_text(self) -> None:
        string_only = (self.min_length, self.max_length, self.pattern)
        if any(v is not None for v in string_only) and self.type != "string":
            raise ValueError(f"`min_length`/`max_length`/`pattern` only apply to string, not {self.type}")
        if self.pattern is not None:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"`pattern` is not a valid regular expression: {exc}") from None

    @property
    def has_default(self) -> bool:
        return "default" in self.model_fields_set

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else not self.has_default


class FieldSpec(_Strict):
    """A record column's declared type; ``total: number`` is short for ``{type: number}``."""

    type: FieldType
    required: bool = Field(
        default=False, description="An empty cell is an evaluation error (default: it is null)."
    )
    lenient: bool = Field(
        default=False, description="Booleans only: also read yes/no, y/n, t/f and 1/0 (default: true/false)."
    )

    @model_validator(mode="after")
    def _lenient_booleans_only(self) -> FieldSpec:
        if self.lenient and self.type != "boolean":
            raise ValueError(f"`lenient` only applies to type boolean, not {self.type}")
        return self


class FactSpec(_Strict):
    """A record looked up by key in an indexed source (a ``sql`` or ``records`` source)."""

    source: str = Field(min_length=1)
    key: Text = Field(
        min_length=1, description='Template of the key, e.g. "{order_id}" or "{order.customer_id}".'
    )
    description: str = ""
    required: bool = Field(default=True, description="A missing record gives the not_found outcome.")
    fields: dict[str, Annotated[FieldSpec, BeforeValidator(_type_shorthand)]] = Field(
        default_factory=dict,
        description="Declared field types: values are converted (or refused) before rules run.",
    )
    not_found: Text | None = Field(default=None, description="Message when the record does not exist.")


class ValueSpec(_Strict):
    """A named value computed from the facts; usable in rules and reasons, and returned."""

    expression: str = Field(min_length=1)
    description: str = ""
    citation: Citation | None = None


class RuleSpec(_Strict):
    id: str = Field(pattern=ID)
    description: str = ""
    expression: str = Field(min_length=1, description="CEL; must be true for the rule to pass.")
    when: str | None = Field(default=None, description="CEL; the rule applies only when this is true.")
    pass_reason: Text = Field(min_length=1)
    fail_reason: Text = Field(min_length=1)
    outcome: str | None = Field(
        default=None,
        pattern=OUTCOME,
        description="With combine first_pass (first_fail), the decision when this rule passes (fails).",
    )
    citation: Citation | None = None


class Outcomes(_Strict):
    pass_: str = Field(default="approved", alias="pass", pattern=OUTCOME)
    fail: str = Field(default="denied", pattern=OUTCOME)
    not_found: str = Field(default="not_found", pattern=OUTCOME)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RuleSetSpec(_Strict):
    """One rule set: becomes one MCP tool."""

    title: str | None = None
    description: str = Field(min_length=1)
    parameters: dict[str, Annotated[ParameterSpec, BeforeValidator(_type_shorthand)]] = Field(
        default_factory=dict
    )
    facts: dict[str, FactSpec] = Field(default_factory=dict)
    values: dict[str, Annotated[ValueSpec, BeforeValidator(_expression_shorthand)]] = Field(
        default_factory=dict
    )
    combine: Combine = "all"
    outcomes: Outcomes = Outcomes()
    rules: list[RuleSpec] = Field(min_length=1)

    @field_validator("combine", mode="before")
    @classmethod
    def _combine_alias(cls, value: Any) -> Any:
        return COMBINE_ALIASES.get(value, value) if isinstance(value, str) else value

    @field_validator("rules")
    @classmethod
    def _unique_ids(cls, rules: list[RuleSpec]) -> list[RuleSpec]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return rules


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Patterns = Annotated[list[str], BeforeValidator(_one_or_many), Field(min_length=1)]


class ForbiddenPattern(_Strict):
    """Text that must never appear in an answer: any of its patterns."""

    id: str = Field(pattern=ID)
    pattern: Patterns = Field(description="A regex, or a list of them: any match is a violation.")
    message: str = Field(min_length=1)
    ignore_case: bool = True
    citation: Citation | None = None


class RequiredStatement(_Strict):
    """When an answer mentions a topic, it must also say one of these things."""

    id: str = Field(pattern=ID)
    when: Patterns = Field(description="Regexes; the policy applies when all of them match.")
    require_any: Patterns = Field(description="Regexes; at least one must match.")
    message: str = Field(min_length=1)
    ignore_case: bool = True
    citation: Citation | None = None


PersonalDataKind = Literal["email", "phone", "card"]
ALL_PERSONAL_DATA: tuple[PersonalDataKind, ...] = ("email", "phone", "card")


class PersonalDataPattern(_Strict):
    """An organisation's own kind of personal data (policy numbers, staff ids ...)."""

    id: str = Field(pattern=ID)
    pattern: Patterns = Field(description="A regex, or a list of them.")
    message: str | None = Field(default=None, description="Default: names the id.")
    ignore_case: bool = False
    citation: Citation | None = None


class PersonalDataPolicy(_Strict):
    """Personal data that must not appear in an answer."""

    detect: list[PersonalDataKind] = Field(default_factory=lambda: list(ALL_PERSONAL_DATA))
    patterns: list[PersonalDataPattern] = Field(
        default_factory=list, description="Custom detectors beside email, phone and card."
    )
    allow: list[str] = Field(
        default_factory=list, description="Regexes of allowed matches (e.g. the company's public addresses)."
    )


class AnswerPoliciesSpec(_Strict):
    forbidden: list[ForbiddenPattern] = Field(default_factory=list)
    required: list[RequiredStatement] = Field(default_factory=list)
    personal_data: PersonalDataPolicy = PersonalDataPolicy()


class RulesFile(_Strict):
    """The whole rules file."""

    version: Literal[1] = 1
    timezone: str = Field(default="UTC", description="Business time zone: what `today` means.")
    rule_sets: dict[str, RuleSetSpec] = Field(default_factory=dict)
    answer_policies: AnswerPoliciesSpec = AnswerPoliciesSpec()
