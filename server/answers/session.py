"""What each caller has been shown in this server process, for check_answer.

check_answer reports citations the caller never retrieved, and accepts rule decisions as
evidence. Both need a memory of what went out: every tool result passes through the app's
single call path, which hands it to :meth:`SessionMemory.observe` keyed by the caller.
Over stdio the caller is the one connected client; over HTTP it is the authenticated
principal. The memory is bounded (oldest forgotten first) and lives only in memory:
a restart starts a new session.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field

from strongroom.server.rules.results import RuleDecision

MAX_CHUNKS = 20_000
MAX_DECISIONS = 500
MAX_CALLERS = 1_000


@dataclass
class _Session:
    chunks: OrderedDict[str, None] = field(default_factory=OrderedDict)
    decisions: OrderedDict[str, RuleDecision] = field(default_factory=OrderedDict)


class SessionMemory:
    """Per caller: the passage ids and rule decisions returned to them."""

    def __init__(
        self, max_chunks: int = MAX_CHUNKS, max_decisions: int = MAX_DECISIONS, max_callers: int = MAX_CALLERS
    ) -> None:
        self._sessions: OrderedDict[Hashable, _Session] = OrderedDict()
        self._lock = threading.Lock()
        self._max_chunks = max_chunks
        self._max_decisions = max_decisions
        self._max_callers = max_callers

    def observe(self, caller: Hashable, result: object) -> None:
        """Remember what ``result`` showed ``caller`` (search hits, read windows, decisions)."""
        chunk_ids: list[str] = []
        decision = result if isinstance(result, RuleDecision) else None
        hits = getattr(result, "results", None)
        if isinstance(hits, list):
            chunk_ids += [h.id for h in hits if isinstance(getattr(h, "id", None), str)]
        window_ids = getattr(result, "chunk_ids", None)
        if isinstance(window_ids, list):
            chunk_ids += [c for c in window_ids if isinstance(c, str)]
        if decision is not None:
            chunk_ids += decision.citation_chunk_ids()
        if not chunk_ids and decision is None:
            return
        with self._lock:
            session = self._session(caller)
            for cid in chunk_ids:
                session.chunks[cid] = None
                session.chunks.move_to_end(cid)
            while len(session.chunks) > self._max_chunks:
                session.chunks.popitem(last=False)
            if decision is not None:
                session.decisions[decision.decision_id] = decision
                while len(session.decisions) > self._max_decisions:
                    session.decisions.popitem(last=False)

    def retrieved(self, caller: Hashable) -> set[str]:
        with self._lock:
            session = self._sessions.get(caller)
            return set(session.chunks) if session else set()

    def decisions(self, caller: Hashable) -> dict[str, RuleDecision]:
        with self._lock:
            session = self._sessions.get(caller)
            return dict(session.decisions) if session else {}

    def _session(self, caller: Hashable) -> _Session:
        session = self._sessions.get(caller)
        if session is None:
            session = self._sessions[caller] = _Session()
            while len(self._sessions) > self._max_callers:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(caller)
        return session
