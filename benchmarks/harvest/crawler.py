"""Coverage-maximising crawlers over MCP, after the published RAG-extraction attacks.

The crawler knows nothing of the corpus at the start but a generic dictionary. Each step it
picks the action it expects to return the most passages it does not have yet:

- ``search`` at the largest ``k`` the tool allows, with terms taken from the passages it has
  received and not yet queried, rarest first (entity names, codes, unusual words open new
  neighbourhoods), mixed with random dictionary words to jump elsewhere;
- ``read_document`` on documents it has seen one passage of that have more (a hit under a
  section heading, or past the first passage), and on the next window of long documents.

An epsilon-greedy choice between these arms, rewarded by new passages per call, keeps it on
whichever pays best. It never waits longer than the rate limit asks (a fake clock moving 1 s a
call, and the refusal's retry-after when one comes).

Variants:

- ``greedy``: the above, one identity.
- ``diluting``: also knows how the novelty check works (its refusal says so) and, once refused
  for it, pads its calls with repeats of earlier queries (nothing new, novelty 0) to keep its
  mean novelty under the limit: the strongest single identity, it is stopped by the budgets.
- ``many identities``: the diluting crawler rotating over many principals that share what
  they get: the collective pool stops them together.
- ``slow``: the diluting crawler, one call every few minutes, honouring every refusal's retry-after (and
  the time a budget frees) over a simulated day.
"""

from __future__ import annotations

import random
import re
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mcp import Client

from benchmarks.harvest.common import Reply, Rig, audit_summary, call, limit_named
from strongroom.server.stopwords import STOPWORDS

_TERM = re.compile(r"[A-Za-z][A-Za-z0-9-]{2,}")
_FREES = re.compile(r"frees from (\d{4}-\d\d-\d\d \d\d:\d\d) UTC")

DICTIONARY = [
    "account",
    "action",
    "address",
    "agreement",
    "alarm",
    "amount",
    "analysis",
    "annual",
    "application",
    "approval",
    "archive",
    "asset",
    "audit",
    "backup",
    "balance",
    "battery",
    "billing",
    "board",
    "budget",
    "cable",
    "calibration",
    "capacity",
    "certificate",
    "change",
    "channel",
    "charge",
    "claim",
    "cleaning",
    "client",
    "code",
    "commissioning",
    "complaint",
    "compliance",
    "configuration",
    "contact",
    "contract",
    "control",
    "cost",
    "credit",
    "customer",
    "damage",
    "data",
    "database",
    "deadline",
    "delivery",
    "deployment",
    "design",
    "device",
    "discount",
    "dispute",
    "document",
    "drive",
    "electrode",
    "email",
    "employee",
    "energy",
    "engineer",
    "equipment",
    "error",
    "escalation",
    "expense",
    "export",
    "failure",
    "fault",
    "filter",
    "finance",
    "firmware",
    "flow",
    "forecast",
    "gateway",
    "hardware",
    "health",
    "holiday",
    "hotel",
    "incident",
    "installation",
    "insurance",
    "inventory",
    "invoice",
    "laptop",
    "lease",
    "licence",
    "limit",
    "loan",
    "login",
    "maintenance",
    "manager",
    "manual",
    "margin",
    "meeting",
    "memory",
    "meter",
    "migration",
    "mobile",
    "monitoring",
    "network",
    "notice",
    "office",
    "order",
    "outage",
    "overtime",
    "password",
    "payment",
    "pension",
    "permit",
    "pipeline",
    "plan",
    "plant",
    "portal",
    "power",
    "pressure",
    "price",
    "priority",
    "privacy",
    "probe",
    "procedure",
    "product",
    "project",
    "proposal",
    "pump",
    "purchase",
    "quality",
    "quotation",
    "reading",
    "refund",
    "region",
    "register",
    "release",
    "renewal",
    "repair",
    "report",
    "request",
    "retention",
    "review",
    "risk",
    "roadmap",
    "rota",
    "safety",
    "salary",
    "sample",
    "schedule",
    "security",
    "sensor",
    "server",
    "service",
    "setpoint",
    "shipment",
    "signal",
    "site",
    "software",
    "spare",
    "staff",
    "standard",
    "storage",
    "strategy",
    "supplier",
    "support",
    "survey",
    "system",
    "target",
    "tariff",
    "tax",
    "team",
    "temperature",
    "tender",
    "termination",
    "test",
    "threshold",
    "ticket",
    "timeline",
    "training",
    "travel",
    "turbidity",
    "upgrade",
    "uptime",
    "valve",
    "vendor",
    "version",
    "visit",
    "voltage",
    "warehouse",
    "warranty",
    "water",
    "website",
    "workflow",
]


@dataclass
class Identity:
    """One principal the crawler calls as, with what it has been given (for its own novelty)."""

    name: str
    client: Client
    received: set[str] = field(default_factory=set)
    novelty: deque[float] = field(default_factory=lambda: deque(maxlen=50))
    repeatable: list[str] = field(default_factory=list)  # queries whose results it already has
    exhausted: bool = False  # refused by a budget: no point calling as it again


@dataclass
class CrawlResult:
    variant: str
    identities: int
    corpus_passages: int
    calls: int = 0
    refused: int = 0
    first_refusal_call: int | None = None
    first_refusal_limit: str | None = None
    first_refusal_text: str | None = None
    passages_at_first_refusal: int = 0
    share_at_first_refusal: float = 0.0
    stop_call: int | None = None
    stop_limit: str | None = None
    passages_at_stop: int = 0
    calls_after_stop: int = 0
    passages_after_stop: int = 0
    grew_after_stop: int = 0
    final_passages: int = 0
    final_share: float = 0.0
    max_passages_one_identity: int = 0
    refusals_by_limit: dict[str, int] = field(default_factory=dict)
    refusal_texts: dict[str, str] = field(default_factory=dict)
    simulated_hours: float = 0.0
    growth: list[tuple[int, int]] = field(default_factory=list)  # (call, passages obtained)
    audit: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["growth"] = self.growth[:: max(1, len(self.growth) // 40)] + self.growth[-1:]
        return out


class Crawler:
    ARMS = ("rare_terms", "rare_pair", "dictionary", "read")

    def __init__(self, rng: random.Random, k: int, *, dilute: bool, novelty_target: float = 0.5) -> None:
        self.rng = rng
        self.k = k
        self.dilute = dilute
        self.novelty_target = novelty_target
        self.diluting = False  # switched on by the first novelty refusal
        self.obtained: set[str] = set()
        self.term_df: Counter[str] = Counter()
        self.queried: set[str] = set()
        self.dictionary = list(DICTIONARY)
        rng.shuffle(self.dictionary)
        self.to_read: deque[tuple[str, int]] = deque()
        self.read: set[tuple[str, int]] = set()
        self.arm_reward: dict[str, list[float]] = {arm: [1.0, 1.0] for arm in self.ARMS}  # [sum, n]

    # -- choosing -------------------------------------------------------------------------

    def _rare_terms(self, n: int) -> list[str]:
        fresh = [t for t in self.term_df if t not in self.queried]
        if not fresh:
            return []
        self.rng.shuffle(fresh)
        fresh.sort(key=lambda t: self.term_df[t])
        return fresh[:n]

    def _dictionary_terms(self, n: int) -> list[str]:
        out: list[str] = []
        while self.dictionary and len(out) < n:
            out.append(self.dictionary.pop())
        return out

    def _arm(self) -> str:
        available = [a for a in self.ARMS if a != "read" or self.to_read]
        if self.rng.random() < 0.15:
            return self.rng.choice(available)
        return max(available, key=lambda a: self.arm_reward[a][0] / self.arm_reward[a][1])

    def next_action(self) -> tuple[str, str, dict[str, Any]]:
        """(arm, tool, arguments) expected to bring the most new passages."""
        arm = self._arm()
        if arm == "read":
            document_id, offset = self.to_read.popleft()
            self.read.add((document_id, offset))
            return arm, "read_document", {"document_id": document_id, "offset": offset}
        if arm == "rare_terms":
            terms = self._rare_terms(1) or self._dictionary_terms(1)
        elif arm == "rare_pair":
            terms = self._rare_terms(1) + self._dictionary_terms(1)
        else:
            terms = self._dictionary_terms(2)
        terms = terms or [self.rng.choice(DICTIONARY)]
        self.queried.update(terms)
        return arm, "search", {"query": " ".join(terms), "k": self.k}

    # -- learning -------------------------------------------------------------------------

    def learn(self, arm: str, data: dict[str, Any], new: int) -> None:
        reward = self.arm_reward[arm]
        reward[0] += new
        reward[1] += 1
        hits = data.get("results")
        if hits is None:  # a document window
            nxt = data.get("next_offset")
            key = (data.get("document_id", ""), nxt)
            if nxt is not None and key not in self.read:
                self.to_read.append(key)  # type: ignore[arg-type]
            return
        for hit in hits:
            for term in {t.lower() for t in _TERM.findall(hit["text"])} - STOPWORDS:
                self.term_df[term] += 1
            key = (hit["document_id"], 0)
            multi = len(hit.get("headings", [])) > 1 or hit.get("chunk_index", 0) > 0
            if multi and key not in self.read and key not in self.to_read:
                self.to_read.append(key)

    def wants_repeat(self, identity: Identity, window: int) -> bool:
        """Diluting: would one more fully new call push this identity's mean novelty too high?"""
        if not (self.dilute and self.diluting and identity.repeatable):
            return False
        recent = list(identity.novelty)[-(window - 1) :]
        return (sum(recent) + 1.0) / (len(recent) + 1) > self.novelty_target


async def run_crawler(
    rig: Rig,
    *,
    variant: str = "greedy",
    identities: int = 1,
    max_calls: int = 3000,
    calls_after_stop: int = 100,
    pace_s: float = 1.0,
    seed: int = 5,
    prefix: str = "crawler",
    honour_retry: bool = False,
    until_s: float | None = None,
) -> CrawlResult:
    """Crawl until stopped (first refusal for ``greedy``, a budget or cap for the others), then keep
    trying ``calls_after_stop`` more calls to see whether anything more gets through."""
    started = time.perf_counter()
    dilute = variant != "greedy"
    rng = random.Random(seed)
    max_k = rig.kb.settings.retrieval.max_k
    limits = rig.settings.limits
    crawler = Crawler(rng, max_k, dilute=dilute, novelty_target=limits.novelty_limit - 0.1)
    names = [f"{prefix}-{i:02d}" for i in range(identities)] if identities > 1 else [prefix]
    started_at = rig.clock()
    result = CrawlResult(variant, identities, rig.total_chunks)
    refusals: Counter[str] = Counter()
    budgets = {"hard budget", "source budget", "collective pool"}
    stop_on = budgets if dilute else budgets | {"novelty"}

    def finished() -> bool:
        if result.stop_call is not None and result.calls - result.stop_call >= calls_after_stop:
            return True
        return until_s is not None and rig.clock() - started_at >= until_s

    async with rig.clients(names) as clients:
        crew = [Identity(name, clients[name]) for name in names]
        turn = 0
        while result.calls < max_calls and not finished():
            active = [i for i in crew if not i.exhausted] or crew
            identity = active[turn % len(active)]
            turn += 1
            arm, tool, arguments = _next_call(crawler, identity, rng, limits.novelty_calls, max_k)
            reply = await call(identity.client, tool, arguments)
            result.calls += 1
            rig.clock.advance(pace_s)
            if reply.ok:
                _took(crawler, identity, result, reply, arm, tool, arguments)
                continue
            limit = limit_named(reply.error)
            refusals[limit] += 1
            _note_refusal(result, limit, reply.error, len(crawler.obtained))
            _react(
                rig, crawler, identity, limit, reply.error, honour_retry=honour_retry, shared=identities > 1
            )
            if limit in stop_on and result.stop_call is None and not honour_retry:
                result.stop_call = result.calls
                result.stop_limit = limit
                result.passages_at_stop = len(crawler.obtained)
    result.refusals_by_limit = dict(refusals)
    _summarise(result, len(crawler.obtained))
    result.simulated_hours = round((rig.clock() - started_at) / 3600, 1)
    since = rig.clock() - limits.window_hours * 3600
    result.max_passages_one_identity = max(rig.ledger.exposure(n, since, 1).chunks for n in names)
    result.audit = audit_summary(rig, names)
    result.wall_s = round(time.perf_counter() - started, 1)
    return result


def _next_call(
    crawler: Crawler, identity: Identity, rng: random.Random, novelty_calls: int, max_k: int
) -> tuple[str, str, dict[str, Any]]:
    """``(arm, tool, arguments)``: a repeat of a search the identity has seen, or the crawler's pick."""
    if crawler.wants_repeat(identity, novelty_calls):
        return "repeat", "search", {"query": rng.choice(identity.repeatable), "k": max_k}
    return crawler.next_action()


def _took(
    crawler: Crawler,
    identity: Identity,
    result: CrawlResult,
    reply: Reply,
    arm: str,
    tool: str,
    arguments: dict[str, Any],
) -> None:
    """A call that was served: what it gave the identity and the crawler."""
    ids = reply.chunk_ids
    new_to_identity = [c for c in ids if c not in identity.received]
    if ids:
        identity.novelty.append(len(set(new_to_identity)) / len(set(ids)))
    identity.received.update(ids)
    new = [c for c in ids if c not in crawler.obtained]
    crawler.obtained.update(ids)
    if tool == "search":
        identity.repeatable.append(str(arguments["query"]))
    if arm != "repeat":
        crawler.learn(arm, reply.data, len(new))
    result.growth.append((result.calls, len(crawler.obtained)))


def _note_refusal(result: CrawlResult, limit: str, error: str, obtained: int) -> None:
    result.refused += 1
    result.refusal_texts.setdefault(limit, error)
    if result.first_refusal_call is None:
        result.first_refusal_call = result.calls
        result.first_refusal_limit = limit
        result.first_refusal_text = error
        result.passages_at_first_refusal = obtained


def _react(
    rig: Rig,
    crawler: Crawler,
    identity: Identity,
    limit: str,
    error: str,
    *,
    honour_retry: bool,
    shared: bool,
) -> None:
    """What the crawler does about a refusal: wait, dilute, or give up on a spent identity."""
    frees = _FREES.search(error)
    if limit == "rate limit":
        wait = re.search(r"retry after (\d+) s", error)
        rig.clock.advance(float(wait.group(1)) if wait else 60.0)
    elif honour_retry and frees:
        at = datetime.strptime(frees.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC).timestamp()
        rig.clock.advance(max(60.0, at + 60 - rig.clock()))
    elif limit == "novelty":
        crawler.diluting = True
    elif limit in ("hard budget", "source budget"):
        identity.exhausted = shared and limit == "hard budget"


def _summarise(result: CrawlResult, obtained: int) -> None:
    total = result.corpus_passages
    result.share_at_first_refusal = round(result.passages_at_first_refusal / total, 4)
    result.final_passages = obtained
    result.final_share = round(result.final_passages / total, 4)
    if result.stop_call is not None:
        result.calls_after_stop = result.calls - result.stop_call
        result.passages_after_stop = result.final_passages
        result.grew_after_stop = result.final_passages - result.passages_at_stop
