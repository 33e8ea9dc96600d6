"""Freshness while serving: idle CPU of `strongroom serve` watching a large tree, change-to-visible latency.

Usage: python benchmarks/freshness.py [--files 10000] [--idle-s 60] [--json]

1. Writes a tree of N small Markdown files (100 per folder) and indexes it in-process. The
   vectors come from a stub embedder (random unit vectors under the real model's name): this
   benchmark is about watching and syncing, and embedding 10,000 files on a small CPU would take
   minutes. The server's catch-up sync then finds every document unchanged.
2. Times a no-change incremental sync of the whole tree (the catch-up at start, and a sync after
   more than 500 changed paths), and one of a single changed path (what a debounced sync costs).
3. Starts `strongroom serve` (stdio, native file events), waits for its catch-up sync, then reads
   its CPU time from /proc over --idle-s seconds: percent of one core while idle.
4. Edits, adds and deletes a file and times each until the catalog shows it (change to visible),
   with the real model embedding the changed file.
5. Repeats the idle measurement with `server.watch_polling = true` (5 s polls).
Linux only (/proc). Results are recorded by hand in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

from strongroom.server.app import build_app
from strongroom.server.embedder import Embedder
from strongroom.server.settings import EmbeddingSettings, load_settings

ROOT = Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class StubEmbedder:
    """Random unit vectors of the model's size; never loads a model."""

    dimension = 384

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        out = []
        for _ in texts:
            v = [random.gauss(0, 1) for _ in range(self.dimension)]
            norm = sum(x * x for x in v) ** 0.5
            out.append([x / norm for x in v])
        return out

    # What the Indexer reads of an embedder: the index records these (a change re-embeds).
    name = "all-MiniLM-L6-v2"
    identity: ClassVar[dict[str, str]] = Embedder(EmbeddingSettings()).identity  # the server's
    is_loaded = True

    def start_loading(self) -> None:
        pass

    def model(self) -> None:  # never loads
        return None


def write_tree(docs: Path, n: int) -> None:
    for i in range(n):
        folder = docs / f"team-{i // 100:03}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"note-{i:05}.md").write_text(f"# Note {i}\n\nShelf {i % 97} holds item {i}.\n")
    old = time.time() - 120  # older than the scan, so the connector trusts the stamps
    for path in docs.rglob("*.md"):
        os.utime(path, (old, old))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def serving_report(data: Path, pid: int) -> dict[str, Any] | None:
    try:
        return dict(json.loads((data / "serving" / f"{pid}.json").read_text())["sources"]["tree"])
    except (OSError, ValueError, KeyError):
        return None


def serve(config: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
    return subprocess.Popen(
        [sys.executable, "-m", "strongroom.server", "serve", "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def wait_caught_up(proc: subprocess.Popen[bytes], data: Path, timeout: float = 600) -> float:
    start = time.monotonic()
    seen_syncing = False
    while True:
        report = serving_report(data, proc.pid)
        if report is not None:
            seen_syncing |= bool(report["syncing"])
            if seen_syncing and not report["syncing"] and report["pending_changes"] == 0:
                return time.monotonic() - start
        if proc.poll() is not None or time.monotonic() - start > timeout:
            raise SystemExit("the server did not finish its catch-up sync")
        time.sleep(0.05)


def idle_cpu(proc: subprocess.Popen[bytes], seconds: float) -> float:
    settle_until = time.monotonic() + 180
    while time.monotonic() < settle_until:  # the model loads in the background at start
        before = cpu_seconds(proc.pid)
        time.sleep(5)
        if cpu_seconds(proc.pid) - before < 0.1:
            break
    before, t0 = cpu_seconds(proc.pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(proc.pid) - before) / (time.monotonic() - t0)


def visible(catalog: Path, sql: str, args: tuple[Any, ...], timeout: float = 60) -> float:
    start = time.monotonic()
    while True:
        with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=5) as db:
            if db.execute(sql, args).fetchone()[0]:
                return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise SystemExit(f"not visible within {timeout}s: {sql}")
        time.sleep(0.02)


def latencies(docs: Path, catalog: Path) -> dict[str, float]:
    has_text = "SELECT COUNT(*) FROM documents WHERE source='tree' AND instr(text, ?) > 0"
    out = {}
    (docs / "team-042" / "note-04242.md").write_text("# Note 4242\n\nThe zebracorn moved to shelf 9.\n")
    out["edit"] = visible(catalog, has_text, ("zebracorn",))
    (docs / "team-042" / "added.md").write_text("# Added\n\nA quokkaline lamp.\n")
    out["add"] = visible(catalog, has_text, ("quokkaline",))
    (docs / "team-042" / "added.md").unlink()
    out["delete"] = visible(
        catalog, "SELECT COUNT(*) = 0 FROM documents WHERE source_id=?", ("team-042/added.md",)
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--idle-s", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, Any] = {"files": args.files}
    with tempfile.TemporaryDirectory(prefix="strongroom-fresh-") as tmp:
        root = Path(tmp)
        docs = root / "docs"
        write_tree(docs, args.files)
        config = root / "strongroom.toml"
        base = "[[sources]]\nname = 'tree'\nconnector = 'filesystem'\npath = 'docs'\n"
        config.write_text(base)
        kb = build_app(load_settings(config), embedder=StubEmbedder()).knowledge  # type: ignore[arg-type]
        t = time.monotonic()
        assert kb.sync().ok
        results["first_sync_s_stub_vectors"] = round(time.monotonic() - t, 2)
        t = time.monotonic()
        report = kb.sync()
        results["no_change_sync_s"] = round(time.monotonic() - t, 2)
        assert report.sources[0].unchanged == args.files, report
        t = time.monotonic()
        report = kb.sync(["tree"], paths={"tree": ["team-042/note-04242.md"]})
        results["one_path_sync_s"] = round(time.monotonic() - t, 3)
        assert report.sources[0].partial and report.sources[0].unchanged == 1, report
        kb.close()

        data, catalog = root / ".strongroom", root / ".strongroom" / "catalog.sqlite3"
        for mode, extra in (("native", ""), ("polling", "[server]\nwatch_polling = true\n\n")):
            config.write_text(extra + base)
            proc = serve(config)
            try:
                results[f"{mode}_catch_up_s"] = round(wait_caught_up(proc, data), 2)
                results[f"{mode}_idle_cpu_percent"] = round(idle_cpu(proc, args.idle_s), 3)
                if mode == "native":
                    results["change_to_visible_s"] = {
                        k: round(v, 2) for k, v in latencies(docs, catalog).items()
                    }
            finally:
                proc.stdin.close()  # type: ignore[union-attr]
                proc.wait(120)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key}: {value}")


if __name__ == "__main__":
    main()
