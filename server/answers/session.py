"""The rule decisions each caller was given in this server process, for check_answer.

check_answer accepts rule decisions as evidence, so it needs a memory of the decisions that
went out: every tool result passes through the app's single call path, which hands it to
:meth:`SessionMemory.observe` keyed by the caller. (Which passages a caller was shown is the
guard's exposure ledger's business, not this memory's.) Over stdio the caller is the one
connected client; over HTTP it is the authenticated principal. The memory is bounded (oldest
forgotten first) and lives only in memory: a restart starts a new session.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable

from strongroom.server.models import RuleDecision

MAX_DECISIONS = 500
MAX_CALLERS = 1_000


class SessionMemory:
    """Per caller: the rule decisions returned to them."""

    def __init__(self, max_decisions: int = MAX_DECISIONS, max_callers: int = MAX_CALLERS) -> None:
        self._sessions: OrderedDict[Hashable, OrderedDict[str, RuleDecision]] = OrderedDict()
        self._lock = threading.Lock()
        self._max_decisions = max_decisions
        self._max_callers = max_callers

    def observe(self, caller: Hashable, result: object) -> None:
        """Remember ``result`` if it is a rule decision given to ``caller``."""
        if not isinstance(result, RuleDecision):
            return
        with self._lock:
            decisions = self._sessions.get(caller)
            if decisions is None:
                decisions = self._sessions[caller] = OrderedDict()
                while len(self._sessions) > self._max_callers:
                    self._sessions.popitem(last=False)
            else:
                self._sessions.move_to_end(caller)
            decisions[result.decision_id] = result
            while len(decisions) > self._max_decisions:
                decisions.popitem(last=False)

    def decisions(self, caller: Hashable) -> dict[str, RuleDecision]:
        with self._lock:
            return dict(self._sessions.get(caller, {}))
