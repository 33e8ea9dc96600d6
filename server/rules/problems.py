"""Problems found in a rules file, each naming the file, line, rule set and rule."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from strongroom.server.errors import StrongroomError


@dataclass(frozen=True)
class RuleProblem:
    """One thing wrong with a rules file."""

    file: Path
    message: str
    line: int | None = None
    rule_set: str | None = None
    rule: str | None = None
    where: str | None = None  # the key inside the rule or rule set, e.g. "expression"

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}" if self.line else str(self.file)
        scope = []
        if self.rule_set:
            scope.append(f"rule set {self.rule_set!r}")
        if self.rule:
            scope.append(self.rule)
        if self.where:
            scope.append(self.where)
        return f"{place}: {', '.join(scope) + ': ' if scope else ''}{self.message}"


class RulesError(StrongroomError):
    """A rules file cannot be used; carries every problem found."""

    def __init__(self, problems: Sequence[RuleProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self.one_line())

    def report(self) -> str:
        """Every problem, one per line."""
        return "\n".join(str(p) for p in self.problems)

    def one_line(self) -> str:
        """A single line for a start-up refusal: the first problem and how many more."""
        first = str(self.problems[0]) if self.problems else "invalid rules file"
        more = len(self.problems) - 1
        hint = " (run `strongroom rules check` for the full list)" if more else ""
        return f"{first}{f'; and {more} more problem' + ('s' if more > 1 else '') if more else ''}{hint}"
