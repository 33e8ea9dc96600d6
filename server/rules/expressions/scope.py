"""The variables and functions of one evaluation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from strongroom.server.rules.expressions.helpers import functions_for
from strongroom.server.rules.expressions.loading import load_cel

if TYPE_CHECKING:
    import cel


@dataclass
class Scope:
    """The variables of one evaluation, grown as facts and values are computed."""

    tz: tzinfo
    today: datetime
    now: datetime
    variables: dict[str, Any] = field(default_factory=dict)
    context: cel.Context = field(init=False)

    def __post_init__(self) -> None:
        load_cel()
        import cel

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
