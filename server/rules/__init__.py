"""Business rules: a declarative rules file compiled into typed decision tools.

``load_rulebook`` reads, validates and compiles a rules file (CEL expressions, names,
sources, citations); each :class:`CompiledRuleSet` decides with reasons and citations.
"""

from strongroom.server.models import ComputedValue, RuleCitation, RuleDecision, RuleResult
from strongroom.server.rules.compiler import RuleBook, load_rulebook
from strongroom.server.rules.engine import Clock, CompiledRuleSet, RuleEvaluationError, system_clock
from strongroom.server.rules.problems import RuleProblem, RulesError

__all__ = [
    "Clock",
    "CompiledRuleSet",
    "ComputedValue",
    "RuleBook",
    "RuleCitation",
    "RuleDecision",
    "RuleEvaluationError",
    "RuleProblem",
    "RuleResult",
    "RulesError",
    "load_rulebook",
    "system_clock",
]
