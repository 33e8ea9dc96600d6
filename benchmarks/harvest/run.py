"""Harvest resistance at the default limits: a benign replay against coverage-maximising crawlers.

Usage: python benchmarks/harvest/run.py [--cache DIR] [--chunks 10000] [--only SCENARIO ...]
                                        [--results benchmarks/harvest/RESULTS.md] [--add] [--json]

Builds (or reuses, from ``--cache``) an index of the synthetic corpus, then runs over MCP,
each on a fresh guard with the default settings:

1. legitimate work: one person's 200 questions at 1 call/s, at 5 calls/s and in bursts of 5
   parallel calls; 20 principals working different cases at once; an agent's 60 searches in
   3 minutes; a help desk answering unrelated questions through one `service` identity;
   5 colleagues working right after 5 intruders crawled;
2. crawlers: greedy (2,000 calls), diluting, slow (a simulated day honouring retry-after), and
   the diluting crawler rotating over 5, 20 and 100 new identities.

Prints the numbers as JSON (``--json``) or a markdown report, and writes the report to
``--results``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harvest.benign import build_cases, run_benign  # noqa: E402
from benchmarks.harvest.common import make_rig, quiet  # noqa: E402
from benchmarks.harvest.corpus import describe, open_knowledge_base  # noqa: E402
from benchmarks.harvest.crawler import run_crawler  # noqa: E402
from strongroom.server.settings.guard import GuardSettings  # noqa: E402

GREEDY_CALLS = int(os.environ.get("HARVEST_GREEDY_CALLS", "2000"))  # calls in all, refused ones included
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "strongroom-harvest-cache"


def machine() -> dict[str, Any]:
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "ram_gib": mem_gib,
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_at_start": [round(x, 1) for x in os.getloadavg()],
    }


async def _many(
    rig: Any, corpus: Any, names: list[str], seed: int, pace_s: float, shared_clock: bool = True
) -> dict[str, Any]:
    """Principals each working a different case of 40 questions at ``pace_s`` per call, at the
    same time (on a fake clock every principal's call moves it, so each moves it a share)."""
    cases = build_cases(corpus, 40, seed=seed, count=len(names))
    step = pace_s / len(names) if shared_clock else pace_s
    runs = await asyncio.gather(
        *(
            run_benign(rig, corpus, principal=n, cases=[c], pace_s=step)
            for n, c in zip(names, cases, strict=True)
        )
    )
    return {
        "principals": len(names),
        "questions": sum(r.questions for r in runs),
        "calls": sum(r.calls for r in runs),
        "refused": sum(r.refused for r in runs),
        "refusals": [x for r in runs for x in r.refusals][:5],
        "delays": sum(r.delays for r in runs),
        "delay_s": round(sum(r.delay_s for r in runs), 1),
        "max_delay_s": max(r.max_delay_s for r in runs),
        "distinct_passages": len({c for r in rig.audit.all() if r.principal in names for c in r.chunk_ids}),
    }


def _benign(r: Any) -> dict[str, Any]:
    keep = ["questions", "calls", "refused", "refusals", "delays", "delay_s", "max_delay_s"]
    out = {k: getattr(r, k) for k in keep}
    out |= {"distinct_passages": r.distinct_passages, "fake_minutes": r.fake_minutes, "limits": r.limits}
    return out


Scenario = Callable[[Any, Any, Path, bool], Awaitable[dict[str, Any]]]
"""A scenario: ``(app, corpus, state, real_time)`` to its numbers."""


async def scenarios(
    app: Any, corpus: Any, state: Path, only: set[str] | None = None, real_time: bool = False
) -> dict[str, Any]:
    """Every scenario's numbers; ``real_time`` runs legitimate work on the wall clock."""
    out: dict[str, Any] = {}
    for name, scenario in SCENARIOS:
        if only is None or name in only:
            out[name] = await scenario(app, corpus, state, real_time)
            shown = {k: v for k, v in out[name].items() if not isinstance(v, (dict, list))}
            print(f"{name}: {json.dumps(shown)}", file=sys.stderr)
    return out


def _benign_at(pace_s: float, parallel: int) -> Scenario:
    async def benign(app: Any, corpus: Any, state: Path, real_time: bool) -> dict[str, Any]:
        rig = make_rig(app, state / "benign", real_time=real_time)
        return _benign(await run_benign(rig, corpus, pace_s=pace_s, parallel=parallel))

    return benign


async def _benign_many(app: Any, corpus: Any, state: Path, real_time: bool) -> dict[str, Any]:
    rig = make_rig(app, state / "many", real_time=real_time)
    names = [f"colleague-{i:02d}" for i in range(20)]
    return await _many(rig, corpus, names, 23, 1.0, shared_clock=not real_time)


async def _agent_research(app: Any, corpus: Any, state: Path, real_time: bool) -> dict[str, Any]:
    rig = make_rig(app, state / "agent", real_time=real_time)
    case = build_cases(corpus, 60, seed=31, count=2)[1]  # a product, 60 questions
    return _benign(await run_benign(rig, corpus, principal="agent", cases=[case], k=10, pace_s=1.5))


async def _help_desk(app: Any, corpus: Any, state: Path, real_time: bool) -> dict[str, Any]:
    import random

    from benchmarks.harvest.benign import Case
    from strongroom.server.settings.guard import Principal

    desk = GuardSettings(principals=[Principal(name="helpdesk", labels=["*"], role="service")])
    rig = make_rig(app, state / "helpdesk", desk)
    mixed = [q for c in build_cases(corpus, 10, seed=53, count=30) for q in c.questions]
    random.Random(3).shuffle(mixed)  # many people's unrelated questions, one identity
    return _benign(
        await run_benign(rig, corpus, principal="helpdesk", cases=[Case("mixed", "desk", mixed)], pace_s=0.5)
    )


async def _attacker_first(app: Any, corpus: Any, state: Path, real_time: bool) -> dict[str, Any]:
    rig = make_rig(app, state / "attacker-first")
    names = [f"colleague-{i:02d}" for i in range(5)]
    for n in names:  # colleagues who first used the server four days ago
        async with rig.client(n) as client:
            await client.call_tool("list_sources", {})
    rig.clock.advance(4 * 86400)
    attack = (await run_crawler(rig, variant="many identities", identities=5, prefix="intruder")).as_dict()
    work = await _many(rig, corpus, names, 41, 1.0)
    return {"attack": _crawl(attack), "colleagues": work, "refused": work["refused"]}


def _crawling(**kwargs: Any) -> Scenario:
    async def crawl(app: Any, corpus: Any, state: Path, real_time: bool) -> dict[str, Any]:
        rig = make_rig(app, state / "crawl")
        return _crawl((await run_crawler(rig, **kwargs)).as_dict())

    return crawl


SCENARIOS: list[tuple[str, Scenario]] = [
    ("benign 1/s", _benign_at(1.0, 1)),
    ("benign 5/s", _benign_at(0.2, 1)),
    ("benign bursts of 5", _benign_at(0.2, 5)),
    ("benign many", _benign_many),
    ("agent research", _agent_research),
    ("help desk (service role)", _help_desk),
    ("attacker first", _attacker_first),
    ("greedy", _crawling(variant="greedy", max_calls=GREEDY_CALLS, calls_after_stop=GREEDY_CALLS)),
    ("diluting", _crawling(variant="diluting")),
    (
        "slow (a simulated day)",
        _crawling(variant="slow", pace_s=300.0, honour_retry=True, until_s=86400.0, max_calls=400),
    ),
    ("5 identities", _crawling(variant="many identities", identities=5)),
    ("20 identities", _crawling(variant="many identities", identities=20)),
    ("100 identities", _crawling(variant="many identities", identities=100)),
]


def _crawl(r: dict[str, Any]) -> dict[str, Any]:
    r.pop("growth", None)
    return r


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def render(report: dict[str, Any]) -> str:
    m, c = report["machine"], report["corpus"]
    total = c["passages"]
    sc = report["scenarios"]
    lines = [
        "# Harvest resistance and legitimate work at the default limits",
        "",
        f"Run {report['date']} with `python benchmarks/harvest/run.py` on {m['nproc']} CPUs ({m['cpu']}), "
        f"{m['ram_gib']} GiB RAM, Python {m['python']}; load average at start {m['load_avg_at_start']} "
        f"(the machine is shared); the scenarios took {report['scenarios_s']} s.",
        "",
        f"Corpus: {total:,} passages in {c['documents']:,} synthetic documents "
        f"({', '.join(f'{k} {v:,}' for k, v in c['passages_per_source'].items())}). Every call goes over "
        "MCP (the SDK's in-memory client) through the real guard with the default settings and "
        + (
            "the wall clock (every wait and gap between calls really passes)."
            if report.get("real_time")
            else "a fake clock (pacing waits advance it; `--real-time` runs legitimate work on the wall clock)."
        ),
        "",
        "## Legitimate work",
        "",
        "A case is 40 related questions (a customer, a product, a policy or an incident; follow-ups and "
        "rephrasings), each a `search` (k=5) and `read_document` on the top hit (and the second, every "
        "other question).",
        "",
        "| scenario | questions | calls | refused | delayed calls | total / max delay (s) | distinct passages |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    benign = [k for k in sc if k.startswith(("benign", "agent", "help desk"))]
    for k in benign:
        r = sc[k]
        lines.append(
            f"| {k} | {r['questions']} | {r['calls']} | **{r['refused']}** | {r['delays']} | "
            f"{r['delay_s']} / {r['max_delay_s']:.1f} | {r['distinct_passages']} |"
        )
    if "attacker first" in sc:
        a = sc["attacker first"]
        w = a["colleagues"]
        lines.append(
            f"| attacker first: 5 colleagues after 5 intruders | {w['questions']} | {w['calls']} | "
            f"**{w['refused']}** | {w['delays']} | {w['delay_s']} / {w['max_delay_s']:.1f} | {w['distinct_passages']} |"
        )
        x = a["attack"]
        lines += [
            "",
            f"Attacker first: 5 new identities crawled (diluting, rotating) until stopped by "
            f"{x['stop_limit']} at {_pct(x['passages_at_stop'] / total)} ({x['final_passages']} passages, "
            f"{_pct(x['final_share'])}, after {x['calls']} calls); then 5 colleagues (first seen 4 days "
            "earlier) worked their cases.",
        ]
    lines += [
        "",
        "## Crawlers",
        "",
        "Coverage-maximising: each query is chosen to bring new passages (unqueried rare terms from what it "
        "received, random dictionary words, reads of multi-passage documents), at the largest k (20). "
        "`diluting` pads with repeats to keep its novelty under the limit; the identities variants rotate "
        "the diluting crawler over new principals that pool what they get; `slow` is the diluting crawler "
        "at one call every 5 minutes honouring every retry-after and budget release over a simulated day.",
        "",
        "| crawler | identities | calls | refused | first refusal (call, limit) | coverage at first refusal | "
        "final coverage | limits that acted |",
        "|---|---:|---:|---:|---|---:|---:|---|",
    ]
    for k in [k for k in sc if k not in benign and k != "attacker first"]:
        r = sc[k]
        lines.append(
            f"| {k} | {r['identities']} | {r['calls']} | {r['refused']} | {r['first_refusal_call']}, "
            f"{r['first_refusal_limit']} | {_pct(r['share_at_first_refusal'])} | **{_pct(r['final_share'])}** | "
            + ", ".join(f"{a} {n}" for a, n in r["refusals_by_limit"].items())
            + " |"
        )
    texts: dict[str, str] = {}
    for r in sc.values():
        texts.update(r.get("refusal_texts", {}))
        texts.update(r.get("attack", {}).get("refusal_texts", {}))
    lines += ["", "Refusal messages as the client saw them:", ""]
    lines += [f"- {limit}: `{text}`" for limit, text in sorted(texts.items())]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="index cache directory")
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", action="append", help="run only this scenario (repeatable)")
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    parser.add_argument(
        "--add", action="store_true", help="add the scenarios run to those already in --results"
    )
    parser.add_argument(
        "--real-time", action="store_true", help="run the legitimate-work scenarios on the wall clock"
    )
    args = parser.parse_args(argv)
    quiet()
    started = time.perf_counter()
    marker = args.cache / "corpus.json"
    reused = marker.exists() and bool(json.loads(marker.read_text()).get("complete"))
    app, corpus = open_knowledge_base(args.cache, args.chunks, args.seed)
    app.embedder.model()
    index_s = round(time.perf_counter() - started, 1)
    build_s = json.loads(marker.read_text()).get("build_s")
    settings = GuardSettings()
    started = time.perf_counter()
    only = set(args.only) if args.only else None
    results = asyncio.run(scenarios(app, corpus, args.cache / "guard-state", only, args.real_time))
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "real_time": args.real_time,
        "machine": machine(),
        "corpus": describe(corpus),
        "limits": settings.limits.model_dump(),
        "collective": settings.collective.model_dump(),
        "index_s": index_s,
        "index_reused": reused,
        "index_build_s": build_s,
        "scenarios_s": round(time.perf_counter() - started, 1),
        "scenarios": results,
    }
    if args.add and args.results.exists():
        text = args.results.read_text()
        earlier = json.loads(text[text.index("```json\n") + 8 : text.rindex("\n```")])
        report["scenarios"] = {**earlier["scenarios"], **results}
        report["scenarios_s"] = round(earlier["scenarios_s"] + report["scenarios_s"], 1)
    markdown = render(report)
    args.results.write_text(
        markdown
        + "\n<details><summary>raw numbers (JSON)</summary>\n\n```json\n"
        + json.dumps(report, indent=1)
        + "\n```\n</details>\n"
    )
    print(json.dumps(report, indent=1) if args.json else markdown)
    app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
