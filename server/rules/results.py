"""What a rule-set tool returns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, PrivateAttr

from strongroom.server.models import Served

JsonValue = str | int | float | bool | None


class RuleCitation(BaseModel):
    """The policy text a rule rests on, resolved in the index."""

    document_id: str = Field(description="Pass to read_document.")
    title: str
    uri: str
    heading: str | None = Field(default=None, description="The section the rule cites, if any.")
    offset: int | None = Field(
        default=None, description="Where that section starts: pass as read_document's offset."
    )
    chunk_id: str | None = Field(
        default=None, description="The passage id of that section; cite it in check_answer."
    )


class RuleResult(BaseModel):
    id: str
    description: str = ""
    passed: bool | None = Field(description="null when the rule did not apply or was not reached.")
    reason: str
    citation: RuleCitation | None = None


class ComputedValue(BaseModel):
    name: str
    value: JsonValue = Field(description="Dates as YYYY-MM-DD; durations in days.")
    description: str = ""
    citation: RuleCitation | None = None


class RuleDecision(BaseModel):
    """A decision with its reasons; cite ``decision_id`` in check_answer for claims about it."""

    decision_id: str = Field(description="Cite it in check_answer alongside passage ids.")
    rule_set: str
    decision: str = Field(description="The outcome, e.g. approved, denied or not_found.")
    summary: str = Field(description="One sentence: the decision and the rule(s) that settled it.")
    decided_by: str | None = Field(
        default=None,
        description="With combine first_pass/first_fail: the rule that decided (null: none did).",
    )
    rules: list[RuleResult] = Field(description="Every rule, in order, with its reason and citation.")
    values: list[ComputedValue] = Field(default_factory=list, description="Values the rules computed.")
    facts: dict[str, Any] = Field(
        default_factory=dict,
        description="The facts used: parameters and only the record fields the rules read.",
    )
    withheld_facts: list[str] = Field(
        default_factory=list, description="Facts used but not shown: records the caller may not see."
    )
    evaluated_at: datetime
    _disclosed: list[Served] = PrivateAttr(default_factory=list)

    def disclose(self, records: list[tuple[str, str, str, int]]) -> None:
        """Note the records whose fields this decision shows: (document id, source, chunk id, chars)."""
        self._disclosed = [Served(chunk, doc, source, chars) for doc, source, chunk, chars in records]

    def exposure(self) -> list[Served]:
        """What this result hands out, for the guard's budgets: the record fields it shows."""
        return list(self._disclosed)

    def evidence(self) -> list[str]:
        """Statements this decision supports, for check_answer."""
        lines = [self.summary]
        lines += [r.reason for r in self.rules if r.passed is not None]
        for v in self.values:
            label = v.description or v.name.replace("_", " ")
            lines.append(f"{label}: {v.value}")
        for name, fact in self.facts.items():
            if isinstance(fact, dict):
                lines += [f"{name} {key.replace('_', ' ')}: {value}" for key, value in fact.items()]
            else:
                lines.append(f"{name.replace('_', ' ')}: {fact}")
        return lines

    def citation_chunk_ids(self) -> list[str]:
        ids = [r.citation.chunk_id for r in self.rules if r.citation and r.citation.chunk_id]
        ids += [v.citation.chunk_id for v in self.values if v.citation and v.citation.chunk_id]
        return list(dict.fromkeys(ids))
