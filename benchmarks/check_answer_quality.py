"""Precision and recall of check_answer's unsupported-sentence detection, on labelled drafts.

Usage: python benchmarks/check_answer_quality.py [--workdir DIR] [--half tune|holdout|both]
       [--markers ids|numbers] [--show]

The drafts (benchmarks/data/check_answer_drafts.yaml) were written by hand from the example
company's documents and each sentence labelled: supported paraphrases, changed numbers,
invented claims, negations, true-but-uncited statements, and adversarial claims made of the
passage's own words (a figure of another row, swapped roles, a changed unit or comparison, an
invented condition); the multi-sentence drafts cite per sentence, as inline `[chunk id]`
markers or, with `--markers numbers`, as `[1]`-style positions in the citation list. An unsupported sentence is the
positive class: precision is the share of flagged sentences that are really unsupported,
recall the share of unsupported sentences that are flagged. Tune on the `tune` half only.

It syncs a copy of the example first (that needs the packaged embedding model); `--workdir`
keeps the synced copy between runs. Results are recorded by hand in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from strongroom.server.answers.checker import AnswerChecker
from strongroom.server.app import build_app
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.rules.policies import AnswerPolicies
from strongroom.server.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "acme"
DRAFTS = Path(__file__).resolve().parent / "data" / "check_answer_drafts.yaml"


def _bare(heading: str) -> str:
    return re.sub(r"^[\d.]+\s*", "", heading).strip().lower()


def _sections(headings: tuple[str, ...], text: str) -> set[str]:
    """The headings a passage is under or opens (a short last section may share a passage)."""
    opened = re.findall(r"^#{1,6}\s+(.+)$", text, re.M)
    return {_bare(h) for h in [*headings[-1:], *opened]}


def chunks_of(kb: KnowledgeBase, cite: str) -> list[str]:
    """The chunk ids of a "document#heading" citation."""
    document, _, heading = cite.partition("#")
    ids = kb.catalog.chunk_ids(f"handbook/{document}")
    chunks = kb.catalog.chunks(ids)
    found = [cid for cid in ids if _bare(heading) in _sections(chunks[cid].headings, chunks[cid].text)]
    if not found:
        raise SystemExit(f"no section {heading!r} in {document}")
    return found


def render(draft: dict[str, Any], cited: list[list[str]], markers: str) -> str:
    """The draft's text, each sentence that names its citation carrying an inline marker."""
    flat = [cid for ids in cited for cid in ids]
    out = []
    for sentence in draft["sentences"]:
        text = sentence[1]
        if len(sentence) > 2:
            ids = cited[sentence[2] - 1]
            refs = [str(flat.index(cid) + 1) for cid in ids] if markers == "numbers" else ids
            text = f"{text[:-1]} [{', '.join(refs)}]{text[-1]}"
        out.append(text)
    return " ".join(out)


def evaluate(kb: KnowledgeBase, drafts: list[dict[str, Any]], show: bool, markers: str) -> dict[str, Any]:
    checker = AnswerChecker(kb.settings.answers, kb.embedder, kb.catalog)
    counts: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()
    misses: list[str] = []
    for draft in drafts:
        cited = [chunks_of(kb, cite) for cite in draft["cite"]]
        citations = [cid for ids in cited for cid in ids]
        labels = [sentence[0] for sentence in draft["sentences"]]
        text = render(draft, cited, markers)
        result = checker.check(text, citations, policies=AnswerPolicies.default())
        findings = [f for f in result.sentences]
        if len(findings) != len(labels):
            raise SystemExit(f"the checker split {text!r} into {len(findings)} sentences")
        for label, finding in zip(labels, findings, strict=True):
            truth = label != "S"
            flagged = finding.status == "unsupported"
            outcome = {(True, True): "tp", (False, True): "fp", (True, False): "fn", (False, False): "tn"}
            counts[outcome[truth, flagged]] += 1
            verdict = "flagged" if flagged else "passed"
            by_kind[f"{label}:{verdict}"] += 1
            if label.count("/") > 1:  # the kind's total, as well as each sub-kind's
                by_kind[f"{label.rsplit('/', 1)[0]}:{verdict}"] += 1
            if len(labels) >= 3:
                by_kind[f"(multi-sentence) {'U' if truth else 'S'}:{verdict}"] += 1
            if truth != flagged:
                misses.append(f"{'FP' if flagged else 'FN'} [{label}] {finding.text} -- {finding.reason}")
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    report: dict[str, Any] = {
        "drafts": len(drafts),
        "sentences": sum(counts.values()),
        "unsupported": tp + fn,
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
        "counts": dict(counts),
        "by_kind": dict(sorted(by_kind.items())),
    }
    if show:
        report["misses"] = misses
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="Keep the synced example here between runs.")
    parser.add_argument("--half", choices=["tune", "holdout", "both"], default="both")
    parser.add_argument("--markers", choices=["ids", "numbers"], default="ids", help="Inline citation style.")
    parser.add_argument("--show", action="store_true", help="List the misclassified sentences.")
    args = parser.parse_args()
    drafts = yaml.safe_load(DRAFTS.read_text())["drafts"]
    with tempfile.TemporaryDirectory(prefix="strongroom-claims-") as tmp:
        workdir = args.workdir or Path(tmp) / "acme"
        if not (workdir / "strongroom.toml").exists():
            shutil.copytree(EXAMPLE, workdir, ignore=shutil.ignore_patterns(".strongroom"))
        kb = build_app(load_settings(workdir / "strongroom.toml")).knowledge
        report = kb.sync()
        if not report.ok:
            raise SystemExit(f"sync failed: {report}")
        halves = ["tune", "holdout"] if args.half == "both" else [args.half]
        results = {
            half: evaluate(kb, [d for d in drafts if d["half"] == half], args.show, args.markers)
            for half in halves
        }
        kb.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
