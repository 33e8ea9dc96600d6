"""The rules of a configuration: loaded at start, reloaded when the file or the index changes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

from strongroom.server.errors import InvalidArgument
from strongroom.server.models import RuleDecision
from strongroom.server.rules.compiler import RuleBook, load_rulebook
from strongroom.server.rules.engine import Clock, CompiledRuleSet, Visible, system_clock
from strongroom.server.rules.index import RecordIndex
from strongroom.server.rules.problems import RulesError
from strongroom.server.settings import Settings

log = logging.getLogger("strongroom.rules")


@dataclass(frozen=True)
class Reloaded:
    """The outcome of a reload: the new book, or why the old one stays."""

    book: RuleBook
    tools_changed: bool
    error: RulesError | None = None


class Rules:
    """The current :class:`RuleBook` for a configuration, and decisions from it."""

    def __init__(self, settings: Settings, index: RecordIndex, clock: Clock | None = None) -> None:
        self.settings = settings
        self.index = index
        self.path = settings.resolve(settings.rules.file) if settings.rules.file else None
        self._clock = clock
        self._fingerprint: tuple[Any, ...] | None = None
        self.book = RuleBook.empty()

    @property
    def sources(self) -> list[str]:
        return [s.name for s in self.settings.all_sources()]

    def load(self) -> RuleBook:
        """Compile the configured rules file (none configured: no rule tools). Raises RulesError."""
        fingerprint = self.fingerprint()
        if self.path is not None:
            self.book = load_rulebook(self.path, self.index, self.sources)
            for warning in self.book.warnings:
                log.warning("%s", warning)
        self._fingerprint = fingerprint
        return self.book

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes when the rules file or the index changes (citations may move)."""
        if self.path is None:
            return ()
        try:
            file_part: tuple[Any, ...] = (hashlib.sha256(self.path.read_bytes()).hexdigest(),)
        except OSError:
            file_part = ("missing",)
        return (file_part, self.index.index_version())

    def reload_if_changed(self) -> Reloaded | None:
        """Recompile if something changed; a broken file keeps the current rules."""
        if self.path is None:
            return None
        fingerprint = self.fingerprint()
        if fingerprint == self._fingerprint:
            return None
        self._fingerprint = fingerprint
        old = self.book
        try:
            new = load_rulebook(self.path, self.index, self.sources)
        except RulesError as exc:
            return Reloaded(old, False, exc)
        if (
            new.digest == old.digest
            and _definitions(new) == _definitions(old)
            and not _citations_moved(old, new)
        ):
            self.book = new
            return None
        self.book = new
        return Reloaded(new, _definitions(new) != _definitions(old))

    def rule_set(self, name: str) -> CompiledRuleSet:
        rule_set = self.book.rule_sets.get(name)
        if rule_set is None:
            known = ", ".join(self.book.rule_sets) or "none"
            raise InvalidArgument(f"no rule set {name!r} (rule sets: {known})")
        return rule_set

    def decide(self, name: str, arguments: Mapping[str, Any], visible: Visible | None = None) -> RuleDecision:
        """Evaluate rule set ``name`` for validated arguments."""
        rule_set = self.rule_set(name)
        clock = self._clock or self._pinned_clock(rule_set) or system_clock
        if visible is None:
            return rule_set.evaluate(arguments, self.index, clock=clock)
        return rule_set.evaluate(arguments, self.index, clock=clock, visible=visible)

    def _pinned_clock(self, rule_set: CompiledRuleSet) -> Clock | None:
        today = self.settings.rules.today
        if today is None:
            return None
        moment = datetime.combine(today, time(12, 0), tzinfo=rule_set.tz)
        return lambda: moment


def _definitions(book: RuleBook) -> tuple[Any, ...]:
    return tuple(rs.tool_definition() for rs in book.rule_sets.values())


def _citations_moved(old: RuleBook, new: RuleBook) -> bool:
    def cites(book: RuleBook) -> list[Any]:
        out: list[Any] = []
        for rs in book.rule_sets.values():
            out += [r.citation.citation if r.citation else None for r in rs.rules]
            out += [v.citation.citation if v.citation else None for v in rs.values]
        return out

    return cites(old) != cites(new)
