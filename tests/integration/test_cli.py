"""The command line as a user runs it: real subprocesses, real index."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import LOG_LINE, ROOT, clean_env, strongroom_cmd


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        strongroom_cmd(*args), capture_output=True, text=True, cwd=cwd, env=clean_env(**env), timeout=300
    )


@pytest.mark.model
def test_search_json_matches_the_tool_structure(synced_example: Path) -> None:
    out = run(
        "search",
        "what happens to security camera recordings?",
        "-k",
        "3",
        "--json",
        "--config",
        str(synced_example),
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["query"].startswith("what happens")
    top = data["results"][0]
    assert top["document_id"] == "handbook/data-retention.md"
    assert {
        "id",
        "document_id",
        "source",
        "title",
        "uri",
        "text",
        "score",
        "chunk_index",
        "start",
        "end",
    } <= set(top)


@pytest.mark.model
def test_search_prints_ranked_hits(synced_example: Path) -> None:
    out = run("search", "restocking fee", "--config", str(synced_example))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("1. ")
    assert "[handbook]" in out.stdout and "score" in out.stdout and "handbook/refund-policy.md" in out.stdout


def test_status_json_reports_counts(synced_example: Path) -> None:
    out = run("status", "--json", cwd=synced_example.parent)  # ./strongroom.toml is the default
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["documents"] >= 10 and data["chunks"] > data["documents"]
    assert data["sources"][0]["name"] == "handbook" and data["sources"][0]["last_synced"]


def test_config_from_environment_variable(synced_example: Path, tmp_path: Path) -> None:
    out = run("status", "--json", cwd=tmp_path, STRONGROOM_CONFIG=str(synced_example))
    assert out.returncode == 0 and json.loads(out.stdout)["documents"] >= 10


def test_connectors_lists_filesystem_with_its_settings() -> None:
    out = run("connectors")
    assert out.returncode == 0, out.stderr
    assert "filesystem" in out.stdout and "strongroom" in out.stdout
    assert "include" in out.stdout and "max_file_bytes" in out.stdout


@pytest.mark.parametrize(
    ("config_text", "expected"),
    [
        ("[store]\nbogus = 1\n", "store.bogus: unknown key"),
        ("[[sources]]\nname = 'x'\nconnector = 'nosuch'\n", "unknown connector 'nosuch'"),
        ("[[sources]]\nname = 'x'\nconnector = 'filesystem'\npath = 'missing'\n", "missing"),
        ("not toml [", "invalid TOML"),
    ],
)
def test_user_mistakes_are_one_clear_line(tmp_path: Path, config_text: str, expected: str) -> None:
    config = tmp_path / "strongroom.toml"
    config.write_text(config_text)
    out = run("sync", "--config", str(config))
    assert out.returncode != 0
    assert expected in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    out = run("status", "--config", str(tmp_path / "nope.toml"))
    assert out.returncode != 0 and "configuration file not found" in out.stderr
    assert "Traceback" not in out.stderr


# A PDF whose cross-reference table points nowhere: pypdf logs warnings, then cannot read it.
CORRUPT_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\ntrailer<</Root 1 0 R>>\nstartxref\n999\n%%EOF\n"
)


def folder_with_a_corrupt_pdf(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    shutil.copy(ROOT / "examples/acme/docs/refund-policy.md", docs)
    (docs / "broken.pdf").write_bytes(CORRUPT_PDF)
    (root / "strongroom.toml").write_text(
        "[[sources]]\nname = 'docs'\nconnector = 'filesystem'\npath = 'docs'\n"
    )
    return root


@pytest.mark.model
def test_sync_summary_lists_skipped_files(tmp_path: Path) -> None:
    """The counts and the list use one word, and loading the model is a phase of its own."""
    out = run("sync", cwd=folder_with_a_corrupt_pdf(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "docs: 1 added, 0 updated, 0 unchanged, 0 deleted, 1 skipped (" in out.stdout
    assert "\n  skipped broken.pdf: corrupt PDF" in out.stdout
    assert "failed" not in out.stdout
    phase = re.search(
        r"^loading the embedding model all-MiniLM-L6-v2…\nembedding model loaded in \d+\.\ds$",
        out.stderr,
        re.M,
    )
    assert phase, out.stderr
    again = run("sync", cwd=tmp_path)
    assert "docs: 0 added, 0 updated, 1 unchanged, 0 deleted, 1 skipped (" in again.stdout
    assert "embedding model" not in again.stderr  # nothing to embed: the model is not loaded


@pytest.mark.model
def test_library_warnings_use_strongroom_log_format(tmp_path: Path) -> None:
    """pypdf warns from the parsing worker process; its lines reach stderr in Strongroom's format."""
    out = run("sync", cwd=folder_with_a_corrupt_pdf(tmp_path))
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if "embedding model" not in line]
    assert any(re.match(LOG_LINE.pattern + "incorrect startxref pointer", line) for line in lines), out.stderr
    assert lines and all(LOG_LINE.match(line) for line in lines), out.stderr


def test_claude_config_entry(synced_example: Path) -> None:
    out = run("claude-config", "--config", str(synced_example))
    entry = json.loads(out.stdout)["mcpServers"]["strongroom"]
    assert entry["args"][:3] == ["-m", "strongroom.server", "serve"]
    assert entry["args"][-1] == str(synced_example)
