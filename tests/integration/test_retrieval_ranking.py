"""Ranking on a small generated manual, in process with a real embedded Chroma and the packaged
model: the mechanisms of ``server/retrieval`` measured in benchmarks/pydoc_quality.py, each
shown on a case where it decides the first hit."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strongroom.server.app import build_app
from strongroom.server.embedder import Embedder
from strongroom.server.errors import StoreBusy
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.settings import load_settings
from strongroom.server.store.records import SearchFilter

pytestmark = pytest.mark.model


def _page(title: str, *sections: str) -> str:
    body = "".join(f"<section><h2>Part {n}</h2><p>{text}</p></section>" for n, text in enumerate(sections))
    return f"<html><head><title>{title} — Manual</title></head><body><h1>{title}</h1>{body}</body></html>"


MANUAL = {
    # Uses time.perf_counter twice: the keyword and exact rankers prefer it.
    "timeit.html": _page(
        "timeit — Measure execution time of small code snippets",
        "The default timer of timeit is time.perf_counter; pass timer=time.perf_counter to be explicit.",
        "The command line interface reports the best of five runs of the statement.",
    ),
    # Defines it once, among other clocks.
    "time.html": _page(
        "time — Time access and conversions",
        "time.perf_counter() returns the value in fractional seconds of a performance counter, a "
        "clock with the highest available resolution to measure a short duration.",
        "time.monotonic() returns the value of a monotonic clock that cannot go backwards.",
        "time.sleep(secs) suspends execution of the calling thread for the given number of seconds.",
    ),
    # Pages that share the query's words, as a real manual's other pages do.
    **{
        f"{name}.html": _page(title, text)
        for name, title, text in [
            (
                "datetime",
                "datetime — Basic date and time types",
                "A datetime holds a date and a time of day.",
            ),
            ("sched", "sched — Event scheduler", "The scheduler runs events at a given time, with a delay."),
            (
                "collections",
                "collections — Container datatypes",
                "A Counter is a dict subclass for counting.",
            ),
            ("profile", "The Python Profilers", "The profilers report the time spent in each function call."),
            ("perf", "Python support for the Linux perf profiler", "perf samples the running process."),
        ]
    },
    "sorting.html": _page(
        "Sorting HOW TO",
        "Python lists have a built-in list.sort() method that modifies the list in place, and a "
        "sorted() built-in function that builds a new sorted list from an iterable.",
    ),
}


def _synced(root: Path, embedder: Embedder, manual: dict[str, str]) -> KnowledgeBase:
    folder = root / "manual"
    folder.mkdir(parents=True)
    for name, html in manual.items():
        (folder / name).write_text(html, encoding="utf-8")
    config = root / "strongroom.toml"
    config.write_text(
        f'[store]\npath = "{root / "index"}"\n\n'
        f'[[sources]]\nname = "manual"\nconnector = "filesystem"\npath = "{folder}"\n'
    )
    knowledge = build_app(load_settings(config), embedder=embedder).knowledge
    knowledge.sync()
    return knowledge


@pytest.fixture
def knowledge_bases(tmp_path: Path, embedder: Embedder) -> Iterator[tuple[KnowledgeBase, KnowledgeBase]]:
    """The manual, and the same manual with the time page's title naming no module."""
    retitled = MANUAL | {"time.html": MANUAL["time.html"].replace("<title>time — ", "<title>Clocks: ")}
    both = (_synced(tmp_path / "a", embedder, MANUAL), _synced(tmp_path / "b", embedder, retitled))
    yield both
    for knowledge in both:
        knowledge.close()


def test_the_page_titled_by_a_module_answers_a_question_naming_its_function(
    knowledge_bases: tuple[KnowledgeBase, KnowledgeBase],
) -> None:
    titled, retitled = knowledge_bases
    everyone = SearchFilter(sources=("manual",))
    hits = titled.retriever.search("time.perf_counter", 3, everyone)
    assert [h.document_id for h in hits][:2] == ["manual/time.html", "manual/timeit.html"]
    # the same pages, but the defining one's title does not name its module: the page that
    # merely uses the name more often comes first
    hits = retitled.retriever.search("time.perf_counter", 3, everyone)
    assert [h.document_id for h in hits][:2] == ["manual/timeit.html", "manual/time.html"]


def test_the_keyword_side_runs_beside_the_dense_side_and_changes_no_result(
    knowledge_bases: tuple[KnowledgeBase, KnowledgeBase], monkeypatch: pytest.MonkeyPatch
) -> None:
    beside = knowledge_bases[0].retriever
    alone = dataclasses.replace(beside, keyword_pool=None)
    threads: list[str] = []
    search = beside.catalog.keyword_search

    def keyword_search(*args: Any, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return search(*args, **kwargs)

    monkeypatch.setattr(beside.catalog, "keyword_search", keyword_search)
    everyone = SearchFilter(sources=("manual",))
    for query in ("time.perf_counter", "how do I sort a list", "measure a short duration"):
        threads.clear()
        assert beside.search(query, 5, everyone) == alone.search(query, 5, everyone)
        assert threads[0].startswith("search-keyword") and threads[-1] == "MainThread"


def test_a_keyword_side_failure_reaches_the_caller(
    knowledge_bases: tuple[KnowledgeBase, KnowledgeBase], monkeypatch: pytest.MonkeyPatch
) -> None:
    retriever = knowledge_bases[0].retriever

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise StoreBusy("the index is busy", "catalog locked")

    monkeypatch.setattr(retriever.catalog, "keyword_search", busy)
    with pytest.raises(StoreBusy):
        retriever.search("time.perf_counter", 3, SearchFilter(sources=("manual",)))
