"""The Python 3.11 manual (Debian's ``python3.11-doc``, Sphinx HTML) as a benchmark corpus.

``ensure_manual()`` installs the package when it is missing (root and apt-get needed);
``build_index(cache)`` syncs the manual once into ``cache`` with Strongroom's own sync and
reuses it afterwards, recording how long the sync took.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from strongroom.server.app import build_app
from strongroom.server.settings import Settings, load_settings

MANUAL = Path("/usr/share/doc/python3.11/html")
QUESTIONS = Path(__file__).resolve().parent / "data" / "pydoc_questions.txt"
# Two scopes. "full": every page of the manual (~20k passages), as an operator would index it.
# "cited": the HOWTOs, the FAQ and the glossary in full, and every other page a question cites
# (3,468 passages: what the first runs on this 2-core machine could index in a session).
SCOPES = ("full", "cited")
SECTIONS = ["howto/**", "faq/**"]
SECTIONS += ["glossary.html"]


def indexed_pages(scope: str = "cited") -> list[str]:
    """Include globs of a scope: ``full`` is every page; ``cited`` is the sections above, every cited page up to ``FIRST_PAGES_UNTIL`` in path order (as far
    as the first full sync got), and every later cited page of at most ``MAX_PAGE_BYTES``."""
    if scope == "full":
        return ["**/*.html"]
    pages = [
        p for p in cited_pages() if p < FIRST_PAGES_UNTIL or (MANUAL / p).stat().st_size <= MAX_PAGE_BYTES
    ]
    return sorted(set(SECTIONS) | set(pages))


def cited_pages() -> list[str]:
    """Every page a benchmark question names as an answer."""
    pages = {p for q in load_questions() for p in q["pages"]}
    return sorted(pages)


def load_questions() -> list[dict[str, object]]:
    """The labelled questions: ``kind``, ``question``, ``pages`` and ``terms`` (one per page)."""
    out = []
    for line in QUESTIONS.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            kind, question, pages, terms = (part.strip() for part in line.split("|"))
            out.append(
                {"kind": kind, "question": question, "pages": pages.split(";"), "terms": terms.split(";")}
            )
    return out


def ensure_manual() -> Path:
    """The manual's folder, installing ``python3.11-doc`` first if it is not there."""
    if not (MANUAL / "library" / "index.html").exists():
        subprocess.run(["apt-get", "install", "-y", "-q", "python3.11-doc"], check=True)
    return MANUAL


FIRST_PAGES_UNTIL = "library/e"
MAX_PAGE_BYTES = 150_000


# A benchmark replays hundreds of unrelated questions: by design the guard would take it for a
# crawler and pace it. Quality is measured without it (its cost is benchmarked in harvest/).
GUARD = (
    "[guard.limits]\ncalls_per_minute = 1000000\nsoft_chunks = 1000000\nhard_chunks = 1000000\n"
    "hard_chars = 1000000000\nsource_share = 1.0\nnovelty_limit = 1.0\n\n"
    "[guard.collective]\nshare = 1.0\n\n"
)


def write_config(folder: Path, backend: str = "onnx", extra: str = "", scope: str = "cited") -> Path:
    """A strongroom.toml in ``folder`` indexing the manual."""
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "strongroom.toml"
    config.write_text(
        f'[store]\npath = "index"\n\n[embedding]\nbackend = "{backend}"\n{extra}\n'
        + GUARD
        + f'[[sources]]\nname = "pydoc"\nconnector = "filesystem"\npath = "{MANUAL}"\n'
        f"include = {json.dumps(indexed_pages(scope))}\n"
    )
    return config


def build_index(
    cache: Path, backend: str = "onnx", scope: str = "cited"
) -> tuple[Settings, dict[str, float]]:
    """Settings of a synced index of the manual in ``cache`` and the sync's figures (cached)."""
    ensure_manual()
    config = write_config(cache, backend, scope=scope)
    stats_file = cache / "sync.json"
    if not stats_file.exists():  # an interrupted build resumes: the sync is incremental
        settings = load_settings(config)
        kb = build_app(settings).knowledge
        started = time.perf_counter()
        kb.embedder.model()
        loaded = time.perf_counter()
        report = kb.sync()
        done = time.perf_counter()
        chunks = sum(s.chunks for s in report.sources)
        stats = {
            "documents": float(sum(s.added for s in report.sources)),
            "chunks": float(chunks),
            "skipped": float(sum(len(s.skipped) for s in report.sources)),
            "load_s": round(loaded - started, 2),
            "sync_s": round(done - loaded, 1),
            "chunks_per_s": round(chunks / (done - loaded), 2),
        }
        kb.close()
        stats_file.write_text(json.dumps(stats, indent=2))
    return load_settings(config), json.loads(stats_file.read_text())


if __name__ == "__main__":
    import sys

    args = sys.argv[1:] + ["onnx", "cited"][len(sys.argv) - 2 :]
    print(build_index(Path(args[0]), args[1], args[2])[1])
