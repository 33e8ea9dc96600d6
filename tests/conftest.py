"""Shared fixtures: the packaged model, a synced index of the example corpus, a Chroma server."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import EXAMPLE, free_port, wait_for_port

pytest_plugins = ["tests.integration.postgres"]  # the `postgres` fixture: a throwaway server

# The fast lane (`pytest -m "not slow" -n 2`): unit tests and in-process MCP sessions. Every other
# integration module starts processes or services (servers, syncs, PostgreSQL, Chroma, Node
# clients) and is in the slow lane; a new module is slow until it is listed here.
FAST_INTEGRATION = {
    "test_access_property",
    "test_all_sources_mcp",
    "test_check_answer",
    "test_guard_limits",
    "test_rule_tools_mcp",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.stem
        if item.path.parent.name == "integration" and module not in FAST_INTEGRATION:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session", autouse=True)
def _hermetic_environment() -> Iterator[None]:
    """The developer's own STRONGROOM_* variables must not leak into the tests."""
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("STRONGROOM_")]:
            env.delenv(name)
        yield


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The packaged model, loaded once for every in-process test."""
    from strongroom.server.embedder import Embedder
    from strongroom.server.settings import EmbeddingSettings

    e = Embedder(EmbeddingSettings())
    e.model()
    return e


@pytest.fixture(scope="session")
def synced_template(tmp_path_factory: pytest.TempPathFactory, embedder) -> Path:  # type: ignore[no-untyped-def]
    """The example corpus with a synced index, never served: copy it, don't use it."""
    from strongroom.server.app import build_app
    from strongroom.server.settings import load_settings

    root = tmp_path_factory.mktemp("acme-template")
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".strongroom"))
    config = root / "strongroom.toml"
    kb = build_app(load_settings(config), embedder=embedder).knowledge
    report = kb.sync()
    assert report.ok, report
    assert report.sources[0].added >= 10
    kb.close()
    return config


def _copy_of(template: Path, root: Path) -> Path:
    shutil.copytree(template.parent, root)
    return root / template.name


@pytest.fixture(scope="session")
def synced_example(synced_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synced example shared by the tests that only read it; returns its strongroom.toml.

    Serving it writes guard state (rate slots, what was shown, the audit log), so a test that
    counts any of that takes ``fresh_example`` instead."""
    return _copy_of(synced_template, tmp_path_factory.mktemp("shared") / "acme")


@pytest.fixture
def fresh_example(synced_template: Path, tmp_path: Path) -> Path:
    """A private copy of the synced example with no guard history; returns its strongroom.toml."""
    return _copy_of(synced_template, tmp_path / "acme")


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real ``chroma run`` on a free loopback port; yields its URL."""
    chroma = Path(sys.executable).parent / "chroma"
    port = free_port()
    proc = subprocess.Popen(
        [str(chroma), "run", "--host", "127.0.0.1", "--port", str(port), "--path", str(tmp_path / "chroma")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, 60, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
