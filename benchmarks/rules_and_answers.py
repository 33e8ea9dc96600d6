"""Cost of business-rule decisions and of check_answer, on the example company.

Usage: python benchmarks/rules_and_answers.py [--iterations N] [--repeats N]   (prints JSON)

- rules: compiling the example rules file (ms), and one decision per call (µs) for each rule
  set, end to end: arguments → record lookup in the catalog → CEL values and rules → the
  result model with reasons, citations and facts.
- check_answer: latency (ms, p50/p95) of checking drafts of 1-4 sentences against 2-5
  citations: "cold" (the cited passages are embedded for the first time) and "warm" (their
  embeddings are cached, as when a client revises and calls again).

It syncs a copy of the example into a temporary directory first (that needs the packaged
embedding model). Results are recorded by hand in benchmarks/RESULTS.md with the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from strongroom.server.answers.checker import AnswerChecker
from strongroom.server.app import build_app
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.models import RuleDecision
from strongroom.server.rules.engine import CompiledRuleSet
from strongroom.server.rules.params import arguments_model
from strongroom.server.rules.service import Rules
from strongroom.server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "acme"
TODAY = datetime(2025, 3, 20, 19, 0, tzinfo=UTC)

CASES: list[tuple[str, dict[str, Any]]] = [
    ("refund_eligibility", {"order_id": "4471", "opened": True}),
    ("refund_eligibility", {"order_id": "4473"}),
    ("refund_eligibility", {"order_id": "9999"}),  # not found
    ("warranty_claim", {"order_id": "4479", "part": "locking_mechanism"}),
    ("shipping_charge", {"customer_id": "C-1001", "order_value": 20, "option": "express"}),
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def bench_rules(rules: Rules, iterations: int) -> dict[str, Any]:
    started = time.perf_counter()
    for _ in range(20):
        rules.load()
    compile_ms = (time.perf_counter() - started) / 20 * 1000
    per_case: dict[str, Any] = {}
    for name, raw in CASES:
        compiled: CompiledRuleSet = rules.rule_set(name)
        arguments = arguments_model(name, compiled.parameters).model_validate(raw).model_dump()
        for _ in range(50):  # warm-up
            rules.decide(name, arguments)
        samples = []
        for _ in range(iterations):
            t = time.perf_counter_ns()
            rules.decide(name, arguments)
            samples.append((time.perf_counter_ns() - t) / 1000)
        decision = rules.decide(name, arguments).decision
        key = f"{name}({', '.join(f'{k}={v}' for k, v in raw.items())}) -> {decision}"
        per_case[key] = {
            "mean_us": round(statistics.fmean(samples), 1),
            "p50_us": round(percentile(samples, 50), 1),
            "p95_us": round(percentile(samples, 95), 1),
        }
    return {
        "compile_rules_file_ms": round(compile_ms, 1),
        "rule_sets": len(rules.book.rule_sets),
        "rules": rules.book.rule_count,
        "decide_per_call": per_case,
    }


def drafts(kb: KnowledgeBase, decision: RuleDecision) -> list[tuple[str, str, list[str]]]:
    ids = kb.catalog.chunk_ids("handbook/refund-policy.md")
    windows, fee, money = ids[2], ids[3], ids[5]
    warranty = kb.catalog.chunk_ids("handbook/warranty-policy.md")
    return [
        (
            "1 sentence, 2 citations, passes",
            "Tents can be returned within 30 days; opened tents carry a 15% restocking fee.",
            [windows, fee],
        ),
        ("1 sentence, wrong figure", "Electronics can be returned within 45 days.", [windows, fee]),
        (
            "3 sentences, 4 citations incl. a decision",
            "Order 4471 is eligible for a refund: it was delivered 16 days ago, within the 30-day return "
            "window for tents. Because the tent was opened, a 15% restocking fee applies, so the refund is "
            "$279.65. The refund goes back to the original card within 5 business days.",
            [windows, fee, money, decision.decision_id],
        ),
        (
            "4 sentences, 5 citations, 2 violations",
            "We guarantee your refund. Tents can be returned within 30 days. Backpacks carry a 2-year "
            "warranty. Write to dana.whitfield@example.com with questions.",
            [windows, fee, money, warranty[2], warranty[1]],
        ),
    ]


def bench_check_answer(kb: KnowledgeBase, rules: Rules, repeats: int) -> dict[str, Any]:
    decision = rules.decide(
        "refund_eligibility", {"order_id": "4471", "opened": True, "reason": "changed_mind"}
    )
    decisions = {decision.decision_id: decision}
    kb.embedder.embed(["warm-up: the first call to the model is slow"])
    out: dict[str, Any] = {}
    for label, text, citations in drafts(kb, decision):
        cold = []
        for _ in range(max(3, repeats // 10)):
            checker = AnswerChecker(kb.settings.answers, kb.embedder, kb.catalog)  # empty cache
            t = time.perf_counter()
            result = checker.check(text, citations, policies=rules.book.policies, decisions=decisions)
            cold.append((time.perf_counter() - t) * 1000)
        checker = AnswerChecker(kb.settings.answers, kb.embedder, kb.catalog)
        checker.check(text, citations, policies=rules.book.policies, decisions=decisions)
        warm = []
        for _ in range(repeats):
            t = time.perf_counter()
            result = checker.check(text, citations, policies=rules.book.policies, decisions=decisions)
            warm.append((time.perf_counter() - t) * 1000)
        out[label] = {
            "passed": result.passed,
            "cold_p50_ms": round(percentile(cold, 50), 1),
            "cold_p95_ms": round(percentile(cold, 95), 1),
            "warm_p50_ms": round(percentile(warm, 50), 1),
            "warm_p95_ms": round(percentile(warm, 95), 1),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=2000, help="Decisions timed per case.")
    parser.add_argument("--repeats", type=int, default=50, help="check_answer calls timed per draft (warm).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="strongroom-bench-") as tmp:
        workdir = Path(tmp) / "acme"
        shutil.copytree(EXAMPLE, workdir, ignore=shutil.ignore_patterns(".strongroom"))
        settings = load_settings(workdir / "strongroom.toml")
        kb = build_app(settings).knowledge
        report = kb.sync()
        if not report.ok:
            raise SystemExit(f"sync failed: {report}")
        rules = Rules(settings, kb.catalog, clock=lambda: TODAY)
        rules.load()
        results = {
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "embedding_device": settings.embedding.device,
            },
            "rules": bench_rules(rules, args.iterations),
            "check_answer": bench_check_answer(kb, rules, args.repeats),
        }
        kb.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
