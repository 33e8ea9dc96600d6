"""Harvest resistance at the default limits: a benign replay against coverage-maximising crawlers.

Usage: python benchmarks/harvest/run.py [--cache DIR] [--chunks 10000] [--identities 20]
                                        [--results benchmarks/harvest/RESULTS.md] [--json]

Builds (or reuses, from ``--cache``) an index of the synthetic corpus, then runs over MCP,
each on a fresh guard with the default settings:

1. the benign replay (5 cases x 40 questions, search k=5 + reads of the top hits);
2. the greedy crawler (one identity), until refused and then 100 more calls;
3. the diluting crawler (one identity that pads with repeats to dodge the novelty check);
4. the diluting crawler rotating over ``--identities`` principals (the collective cap).

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.harvest.benign import run_benign  # noqa: E402
from benchmarks.harvest.common import make_rig, quiet  # noqa: E402
from benchmarks.harvest.corpus import describe, open_knowledge_base  # noqa: E402
from benchmarks.harvest.crawler import run_crawler  # noqa: E402
from strongroom.server.guard.settings import GuardSettings  # noqa: E402

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


async def scenarios(kb: Any, corpus: Any, state: Path, identities: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    rig = make_rig(kb, state / "benign")
    out["benign"] = (await run_benign(rig, corpus)).as_dict()
    print(f"benign: {out['benign']['calls']} calls, {out['benign']['refused']} refused", file=sys.stderr)
    rig = make_rig(kb, state / "greedy")
    out["greedy"] = (await run_crawler(rig, variant="greedy")).as_dict()
    print(f"greedy: stopped at {out['greedy']['passages_at_stop']} passages", file=sys.stderr)
    rig = make_rig(kb, state / "diluting")
    out["diluting"] = (await run_crawler(rig, variant="diluting")).as_dict()
    print(f"diluting: stopped at {out['diluting']['passages_at_stop']} passages", file=sys.stderr)
    rig = make_rig(kb, state / "many")
    out["many_identities"] = (
        await run_crawler(rig, variant="many identities", identities=identities)
    ).as_dict()
    print(f"many identities: {out['many_identities']['final_passages']} passages in all", file=sys.stderr)
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:.2f}"


def render(report: dict[str, Any]) -> str:
    m, c, lim = report["machine"], report["corpus"], report["limits"]
    b = report["scenarios"]["benign"]
    crawls = {k: v for k, v in report["scenarios"].items() if k != "benign"}
    total = c["passages"]
    lines = [
        "# Harvest resistance at the default limits",
        "",
        f"Run {report['date']} with `python benchmarks/harvest/run.py` on {m['nproc']} CPUs "
        f"({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}; load average at start "
        f"{m['load_avg_at_start']}. Indexing the corpus took {report['index_build_s']} s "
        f"({'earlier; reused from the cache in ' + str(report['index_s']) + ' s' if report['index_reused'] else 'in this run'}); "
        f"the scenarios {report['scenarios_s']} s.",
        "",
        f"Corpus: {total:,} passages in {c['documents']:,} synthetic documents "
        f"({', '.join(f'{k} {v:,}' for k, v in c['passages_per_source'].items())}); "
        f"{c['customers']} customer accounts with tickets and review notes, {c['products']} product "
        f"sheets and how-to articles, {c['policies']} policies of ten clauses, {c['incidents']} incident "
        f"reports; passages of {c['passage_chars_p10_p50_p90'][0]}-{c['passage_chars_p10_p50_p90'][2]} "
        "characters (p10-p90). Every call goes over MCP (the SDK's in-memory client) through the real "
        "guard with default settings and a fake clock.",
        "",
        "Default limits: "
        f"{lim['calls_per_minute']} calls/min; {lim['soft_chunks']} (soft) / {lim['hard_chunks']} (hard) "
        f"distinct passages and {lim['hard_chars']:,} characters per {lim['window_hours']:g} h; "
        f"{_pct(lim['source_share'])} of a source (at least 200); novelty over {lim['novelty_calls']} calls "
        f"above {lim['novelty_limit']} once {lim['novelty_min_chunks']} passages seen; collective "
        f"{_pct(report['collective']['share'])} of the corpus (at least {report['collective']['min_chunks']:,}).",
        "",
        "## Benign replay: one person working five cases",
        "",
        f"{b['questions']} questions (5 cases x 40: two customer accounts, a product, a policy, an incident; "
        f"follow-ups and rephrasings), each a `search` (k=5) and `read_document` on the top 1-2 hits: "
        f"{b['calls']} calls ({b['searches']} searches, {b['reads']} reads) over {b['fake_minutes']} "
        f"minutes of fake time, 3 s per call. **Refused: {b['refused']}.** Distinct passages seen: "
        f"{b['distinct_passages']} ({_pct(b['distinct_passages'] / total)} of the corpus) in "
        f"{b['distinct_documents']} documents read; new passages per case {b['per_case_new_passages']}.",
        "",
        "| limit | peak use | limit | share of limit |",
        "|---|---:|---:|---:|",
    ]
    for name, p in b["limits"].items():
        lines.append(
            f"| {name.replace('_', ' ')} | {_num(p['peak'])} | {_num(p['limit'])} | {_pct(p['share'])} |"
        )
    lines += [
        "",
        f"Audit: {b['audit']['records']} records, outcomes {b['audit']['outcomes']}, events "
        f"{b['audit']['events'] or 'none'}, chain verified: {b['audit']['verify_ok']}.",
        "",
        "## Crawlers",
        "",
        "Coverage-maximising: each query is chosen to bring new passages (unqueried terms from what it "
        "received, rarest first, and random dictionary words; reads of multi-passage documents), at the "
        "largest k (20), paced at 1 call/s (never rate-limited). `diluting` pads its calls with repeats "
        "of earlier queries to keep its mean novelty under the limit once refused for novelty; `many "
        "identities` is the diluting crawler rotating over principals that pool what they get. After "
        "being stopped each keeps trying for 100 more calls.",
        "",
        "| | greedy | diluting | many identities |",
        "|---|---|---|---|",
    ]
    keys = ["greedy", "diluting", "many_identities"]

    def row(label: str, fn: Any) -> None:
        lines.append(f"| {label} | " + " | ".join(str(fn(crawls[k])) for k in keys) + " |")

    row("identities", lambda r: r["identities"])
    row("calls until first refusal", lambda r: r["first_refusal_call"])
    row("first refusal", lambda r: r["first_refusal_limit"])
    row(
        "passages at first refusal",
        lambda r: f"{r['passages_at_first_refusal']} ({_pct(r['share_at_first_refusal'])})",
    )
    row(
        "stopped by",
        lambda r: f"{r['stop_limit']} at call {r['stop_call']}" if r["stop_call"] else "not stopped",
    )
    row("passages when stopped", lambda r: f"{r['passages_at_stop']} ({_pct(r['passages_at_stop'] / total)})")
    row("calls after stop", lambda r: r["calls_after_stop"])
    row("passages gained after stop", lambda r: r["grew_after_stop"])
    row("**passages obtained in all**", lambda r: f"**{r['final_passages']} ({_pct(r['final_share'])})**")
    row("most passages one identity got", lambda r: r["max_passages_one_identity"])
    row("calls / refused", lambda r: f"{r['calls']} / {r['refused']}")
    row("refusals by limit", lambda r: ", ".join(f"{k} {v}" for k, v in r["refusals_by_limit"].items()))
    row("audit events", lambda r: ", ".join(f"{k} {v}" for k, v in r["audit"]["events"].items()))
    row(
        "refusals audited / chain verified",
        lambda r: f"{r['audit']['refusals_audited']} / {r['audit']['verify_ok']}",
    )
    row("wall time (s)", lambda r: r["wall_s"])
    lines += ["", "Refusal messages as the client saw them:", ""]
    texts: dict[str, str] = {}
    for r in crawls.values():
        texts.update(r["refusal_texts"])
    lines += [f"- {limit}: `{text}`" for limit, text in sorted(texts.items())]
    tightest = max((p["share"], n) for n, p in b["limits"].items() if n != "collective")
    lines += [
        "",
        "## Verdict",
        "",
        f"- Benign session: {b['refused']} refusals; the highest share of any per-principal limit it used was "
        f"{_pct(tightest[0])} ({tightest[1].replace('_', ' ')}).",
        f"- Greedy crawler: refused after {crawls['greedy']['first_refusal_call']} calls with "
        f"{_pct(crawls['greedy']['share_at_first_refusal'])} of the corpus; "
        f"{_pct(crawls['greedy']['final_share'])} after 100 more tries.",
        f"- Strongest single identity (diluting): capped at {_pct(crawls['diluting']['final_share'])} "
        f"(the hard budget is {lim['hard_chunks']} passages = {_pct(lim['hard_chunks'] / total)}).",
        f"- {crawls['many_identities']['identities']} identities together: "
        f"{_pct(crawls['many_identities']['final_share'])} (collective cap).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="index cache directory")
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--identities", type=int, default=20)
    parser.add_argument("--results", type=Path, default=Path(__file__).with_name("RESULTS.md"))
    parser.add_argument("--json", action="store_true", help="print JSON instead of markdown")
    args = parser.parse_args(argv)
    quiet()
    started = time.perf_counter()
    marker = args.cache / "corpus.json"
    reused = marker.exists() and bool(json.loads(marker.read_text()).get("complete"))
    kb, corpus = open_knowledge_base(args.cache, args.chunks, args.seed)
    kb.embedder.model()
    index_s = round(time.perf_counter() - started, 1)
    build_s = json.loads(marker.read_text()).get("build_s")
    settings = GuardSettings()
    started = time.perf_counter()
    results = asyncio.run(scenarios(kb, corpus, args.cache / "guard-state", args.identities))
    report = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
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
    markdown = render(report)
    args.results.write_text(
        markdown
        + "\n<details><summary>raw numbers (JSON)</summary>\n\n```json\n"
        + json.dumps(report, indent=1)
        + "\n```\n</details>\n"
    )
    print(json.dumps(report, indent=1) if args.json else markdown)
    kb.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
