"""A benign replay: one person working cases through an MCP client.

Five cases (two customer accounts, a product, a policy, an incident) of 40 related questions
each: the case's facts first, then follow-ups, rephrasings of earlier questions and the
neighbouring topics a case leads to (a customer's tickets lead to the product's how-to
articles and the service-credit policy; an incident to the customers it hit). Every
question is a ``search`` (k=5) followed by ``read_document`` on the top hit, and on the
second hit too when it is another document, every other question. The fake clock moves
``pace_s`` per call (default 3 s: far under the rate limit, much faster than a person reads).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from benchmarks.harvest.common import Meter, Rig, audit_summary, call, limit_named
from benchmarks.harvest.corpus import Corpus, Customer, Incident, Policy, Product
from strongroom.server.guard.access import Caller

Intent = list[str]  # paraphrases of one question


@dataclass
class Case:
    kind: str
    subject: str
    questions: list[str]


def _customer_intents(c: Customer, corpus: Corpus, rng: random.Random) -> list[Intent]:
    products = {p.name: p for p in corpus.products}
    product = products[c.products[0]]
    intents: list[Intent] = [
        [
            f"What plan is {c.name} on and what are their support terms?",
            f"{c.name} support plan and SLA",
            f"response time we owe {c.name}",
        ],
        [
            f"Who is the account manager for {c.name}?",
            f"{c.name} account manager",
            f"who looks after the {c.name} account",
        ],
        [
            f"When does the {c.name} contract renew?",
            f"{c.name} renewal date",
            f"{c.name} contract renewal and annual value",
        ],
        [f"main contact at {c.name}", f"who do we talk to at {c.name}"],
        [f"Which products does {c.name} have installed?", f"{c.name} installed equipment"],
        [
            f"What did we discuss with {c.name} at the last quarterly review?",
            f"{c.name} quarterly review risks and next steps",
        ],
        [
            f"open support tickets for {c.name}",
            f"recent tickets raised by {c.name}",
            f"{c.name} support history",
        ],
        [f"problems {c.name} had with the {product.name}", f"{product.name} faults at {c.name}"],
        [f"How do I {product.tasks[0]} on the {product.name}?", f"{product.name} {product.tasks[0]} steps"],
        [f"{product.name} warranty", f"is the {product.name} still under warranty, how long is the warranty"],
        [f"escalation process for a major account like {c.name}", "when do we escalate to the duty manager"],
        [
            f"contract renewal notice period and price uplift for {c.plan} customers",
            "auto-renewal and termination notice",
        ],
    ]
    for t in c.tickets[:6]:
        intents.append(
            [
                f"What happened in ticket {t.id}?",
                f"{t.summary} at {c.name}",
                f"How was the {t.summary} on the {t.product} fixed for {c.name}?",
            ]
        )
    if c.incidents:
        iid = c.incidents[0]
        intents.append([f"Was {c.name} affected by incident {iid}?", f"{c.name} outages and incidents"])
        intents.append(
            [
                f"Is {c.name} entitled to a service credit after {iid}?",
                "service credit claim window and exclusions",
            ]
        )
    return intents


def _product_intents(p: Product, corpus: Corpus) -> list[Intent]:
    users = [c for c in corpus.customers if p.name in c.products][:3]
    tickets = [t for c in users for t in c.tickets if t.product == p.name][:4]
    intents: list[Intent] = [
        [f"{p.name} specifications", f"technical data for the {p.name}", f"what does the {p.name} do"],
        [f"{p.name} installation requirements", f"how to install the {p.name}"],
        [f"Is the {p.name} compatible with our SCADA?", f"{p.name} protocols and compatibility"],
        [f"{p.name} warranty and spare parts", f"how long are {p.name} spares available"],
        [f"{p.name} certification", f"{p.name} firmware version"],
        [f"Which customers use the {p.name}?", f"accounts with the {p.name} installed"],
        [
            f"common faults with the {p.name}",
            f"{p.name} known issues",
            f"{p.category} problems reported by customers",
        ],
        [f"return a faulty {p.name} under warranty", "warranty return authorisation process"],
    ]
    intents += [[f"How do I {task} on the {p.name}?", f"{p.name} {task}"] for task in p.tasks]
    intents += [[f"{t.summary} {p.name}", f"{t.symptom}"] for t in tickets]
    return intents


def _policy_intents(policy: Policy) -> list[Intent]:
    area, region, t = policy.area, policy.region, policy.terms
    return [
        [f"{area} policy {region}", f"what does the {area.lower()} policy cover in {region}"],
        [f"who owns the {area.lower()} policy", f"{area.lower()} policy owner and version"],
        [
            f"approval limits for {t[0]} in {region}",
            f"who approves a large {t[4]}",
            f"{area.lower()} thresholds",
        ],
        [f"is a {t[0]} eligible after 30 days", f"{t[0]} eligibility {region}"],
        [f"exceptions to the {area.lower()} policy", f"can a {t[1]} be approved retrospectively"],
        [f"how long do we keep {t[3]} records", f"{area.lower()} evidence and records retention"],
        [f"how quickly must we decide on a {t[0]}", f"{area.lower()} timelines acknowledgement"],
        [f"who is responsible for {t[4]} checks", f"{area.lower()} responsibilities of line managers"],
        [
            f"what happens if someone breaches the {area.lower()} policy",
            f"{area.lower()} policy review cycle",
        ],
        [f"definition of {t[2]}", f"what counts as a {t[2]}"],
        [f"{area.lower()} policy difference between UK and EU", f"{area.lower()} rules in North America"],
        [f"can I approve my own {t[0]}", f"{t[0]} approval lapse after how many days"],
    ]


def _incident_intents(inc: Incident, corpus: Corpus) -> list[Intent]:
    hit = [c for c in corpus.customers if c.name in inc.customers]
    intents: list[Intent] = [
        [f"What caused incident {inc.id}?", f"{inc.id} root cause", f"{inc.service} outage {inc.region}"],
        [f"Which customers were affected by {inc.id}?", f"customers hit by the {inc.service} incident"],
        [f"follow-up actions after {inc.id}", f"what did we change after the {inc.service} outage"],
        [f"service credits for {inc.id}", "service credit policy measurement period and claim window"],
        [f"previous {inc.service} incidents", f"{inc.service} reliability history"],
        [f"{inc.service} incidents in {inc.region}", f"outages in {inc.region} this year"],
        ["incident response policy severity levels", "who is the incident commander and what do they do"],
        ["post-incident review process", "customer notice after an outage"],
    ]
    for c in hit:
        intents.append([f"{c.name} support plan and uptime credit", f"SLA for {c.name}"])
        intents.append([f"{c.name} tickets after the {inc.service} outage", f"{c.name} account manager"])
    return intents


def _questions(intents: list[Intent], n: int, rng: random.Random) -> list[str]:
    """Each intent once in order, then revisits: rephrasings and follow-ups of earlier ones."""
    questions = [intent[0] for intent in intents][:n]
    asked: dict[int, int] = {}
    while len(questions) < n:
        i = rng.randrange(min(len(intents), len(questions)))
        asked[i] = asked.get(i, 0) + 1
        intent = intents[i]
        questions.append(intent[asked[i] % len(intent)])
    return questions


def build_cases(corpus: Corpus, per_case: int = 40, seed: int = 11, count: int = 5) -> list[Case]:
    """``count`` different cases: customer, product, policy, customer, incident, and so on."""
    rng = random.Random(seed)
    busy = sorted(
        (c for c in corpus.customers if len(c.tickets) >= 6 and c.incidents), key=lambda c: c.account_id
    )
    kinds = ["customer", "product", "policy", "customer", "incident"]
    wanted = [kinds[i % len(kinds)] for i in range(count)]
    customers = iter(rng.sample(busy, wanted.count("customer")))
    products = iter(rng.sample(corpus.products, wanted.count("product")))
    policies = iter(rng.sample(corpus.policies, wanted.count("policy")))
    incidents = [i for i in corpus.incidents if len(i.customers) >= 2] or corpus.incidents
    chosen = iter(rng.sample(incidents, wanted.count("incident")))
    cases = []
    for kind in wanted:
        if kind == "customer":
            c = next(customers)
            cases.append(Case(kind, c.name, _questions(_customer_intents(c, corpus, rng), per_case, rng)))
        elif kind == "product":
            p = next(products)
            cases.append(Case(kind, p.name, _questions(_product_intents(p, corpus), per_case, rng)))
        elif kind == "policy":
            policy = next(policies)
            cases.append(Case(kind, policy.title, _questions(_policy_intents(policy), per_case, rng)))
        else:
            inc = next(chosen)
            cases.append(Case(kind, inc.id, _questions(_incident_intents(inc, corpus), per_case, rng)))
    return cases


@dataclass
class BenignResult:
    principal: str
    questions: int = 0
    calls: int = 0
    searches: int = 0
    reads: int = 0
    refused: int = 0
    refusals: list[str] = field(default_factory=list)
    distinct_passages: int = 0
    distinct_documents: int = 0
    fake_minutes: float = 0.0
    per_case_new_passages: list[int] = field(default_factory=list)
    delays: int = 0  # calls the guard delayed
    delay_s: float = 0.0  # their waits in all
    max_delay_s: float = 0.0
    limits: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


async def run_benign(
    rig: Rig,
    corpus: Corpus,
    *,
    principal: str = "analyst",
    per_case: int = 40,
    pace_s: float = 3.0,
    k: int = 5,
    cases: list[Case] | None = None,
    parallel: int = 1,
) -> BenignResult:
    """Replay the cases over MCP; every call is metered against the principal's limits.

    ``parallel`` > 1 asks that many questions at once (an agent's parallel tool calls) and then
    reads their top hits. The clock moves ``pace_s`` per call of this principal.
    """
    import asyncio
    import time

    started = time.perf_counter()
    limits = rig.guard.principal(Caller(principal, "stdio")).limits
    meter = Meter(rig, principal, limits)
    result = BenignResult(principal)
    documents: set[str] = set()
    start_clock = rig.clock()
    async with rig.client(principal) as client:

        async def tool(name: str, arguments: dict[str, Any]) -> Any:
            waits = len(rig.clock.delays)
            reply = await call(client, name, arguments)
            result.calls += 1
            meter.after_call()
            await rig.clock.elapse(pace_s)
            mine = rig.clock.delays[waits:]
            result.delays += bool(mine)
            result.delay_s += sum(mine)
            result.max_delay_s = max([result.max_delay_s, *mine])
            if not reply.ok:
                result.refused += 1
                result.refusals.append(f"{limit_named(reply.error)}: {reply.error}")
            return reply

        async def ask(n: int, question: str) -> list[str]:
            result.questions += 1
            result.searches += 1
            reply = await tool("search", {"query": question, "k": k})
            if not reply.ok:
                return []
            hits = reply.data["results"]
            targets = [h["document_id"] for h in hits[:1]]
            if n % 2 == 1 and len(hits) > 1 and hits[1]["document_id"] not in targets:
                targets.append(hits[1]["document_id"])
            return targets

        for case in cases if cases is not None else build_cases(corpus, per_case):
            before = meter.seen()
            for first in range(0, len(case.questions), parallel):
                batch = list(enumerate(case.questions))[first : first + parallel]
                reads = await asyncio.gather(*(ask(n, q) for n, q in batch))
                for document_id in dict.fromkeys(d for targets in reads for d in targets):
                    result.reads += 1
                    documents.add(document_id)
                    await tool("read_document", {"document_id": document_id})
            result.per_case_new_passages.append(meter.seen() - before)
    result.distinct_passages = meter.seen()
    result.distinct_documents = len(documents)
    result.fake_minutes = round((rig.clock() - start_clock) / 60, 1)
    result.delay_s = round(result.delay_s, 1)
    result.limits = meter.report()
    result.audit = audit_summary(rig, [principal])
    result.wall_s = round(time.perf_counter() - started, 1)
    return result
