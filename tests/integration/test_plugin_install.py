"""Third-party connectors installed for real: the example plug-in, and broken plug-ins.

Each plug-in is built and installed with pip into its own ``--target`` folder (offline, no build
isolation, the main virtual environment untouched) and reaches ``strongroom`` subprocesses
through PYTHONPATH, as a package installed by a user would through site-packages.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, clean_env, strongroom_cmd

NOTES_EXAMPLE = ROOT / "examples" / "strongroom-notes"
TOKEN = "tok-plugin-test-5b1e"  # a recognisable api_token: it must never be printed

BROKEN_PYPROJECT = """\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "strongroom-broken-plugins"
version = "0.3.0"

[project.entry-points."strongroom.connectors"]
broken = "strongroom_broken.cloud:CloudConnector"
not_a_connector = "strongroom_broken.shapes:NotAConnector"
bad_config = "strongroom_broken.shapes:PlainConfigConnector"

[tool.setuptools]
packages = ["strongroom_broken"]
"""

BROKEN_CLOUD = """\
raise ImportError("strongroom-broken needs the cloud SDK, which is not installed")
"""

BROKEN_SHAPES = """\
from pydantic import BaseModel

from strongroom.connectors import Connector


class NotAConnector:
    name = "not_a_connector"


class PlainConfigConnector(Connector):
    name = "bad_config"

    class Config(BaseModel):  # not a strongroom.connectors.Config: extra keys would pass silently
        path: str

    async def documents(self):
        if False:
            yield
"""


def pip_install(source: Path, target: Path) -> None:
    """``pip install --target`` without the network, build isolation or dependencies."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            str(target),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def notes_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plug-in, built from a copy (the build writes into its source tree)."""
    root = tmp_path_factory.mktemp("notes-plugin")
    source = root / "src"
    shutil.copytree(
        NOTES_EXAMPLE,
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache"),
    )
    pip_install(source, root / "site")
    return root / "site"


@pytest.fixture(scope="module")
def broken_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One package registering three broken connectors: an ImportError, a non-Connector, a bad Config."""
    root = tmp_path_factory.mktemp("broken-plugin")
    package = root / "src" / "strongroom_broken"
    package.mkdir(parents=True)
    (root / "src" / "pyproject.toml").write_text(BROKEN_PYPROJECT, encoding="utf-8")
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "cloud.py").write_text(BROKEN_CLOUD, encoding="utf-8")
    (package / "shapes.py").write_text(BROKEN_SHAPES, encoding="utf-8")
    pip_install(root / "src", root / "site")
    return root / "site"


def run(*args: str, sites: list[Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    pythonpath = os.pathsep.join(str(s) for s in sites)
    return subprocess.run(
        strongroom_cmd(*args),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(PYTHONPATH=pythonpath),
        timeout=300,
    )


def listed(*sites: Path) -> dict[str, dict[str, Any]]:
    out = run("connectors", "--json", sites=list(sites))
    assert out.returncode == 0, out.stderr
    return {c["name"]: c for c in json.loads(out.stdout)["connectors"]}


def write_config(tmp_path: Path, extra_sources: str = "") -> Path:
    (tmp_path / "exports").mkdir()
    shutil.copy(NOTES_EXAMPLE / "notes.json", tmp_path / "exports" / "notes.json")
    config = tmp_path / "strongroom.toml"
    config.write_text(
        textwrap.dedent(f"""\
            [store]
            path = ".strongroom"

            [[sources]]
            name = "team-notes"
            connector = "notes"
            description = "The team's notes"
            path = "exports/notes.json"
            api_token = "{TOKEN}"
            """)
        + extra_sources,
        encoding="utf-8",
    )
    return config


# --- listing -----------------------------------------------------------------------------------


def test_installed_plugin_is_listed_with_package_and_settings(notes_site: Path) -> None:
    connectors = listed(notes_site)
    assert not connectors["filesystem"]["broken"]
    notes = connectors["notes"]
    assert (notes["package"], notes["version"], notes["broken"]) == ("strongroom-notes", "0.1.0", False)
    assert notes["target"] == "strongroom_notes:NotesConnector"
    assert "notes app" in notes["description"]
    settings = {s["name"]: s for s in notes["settings"]}
    assert list(settings) == ["path", "tags", "api_token"]
    assert settings["path"] | {"description": ""} == {
        "name": "path",
        "type": "Path",
        "required": True,
        "default": None,
        "description": "",
        "secret": False,
    }
    assert (settings["tags"]["type"], settings["tags"]["default"]) == ("list[str]", [])
    assert settings["api_token"]["type"] == "SecretStr | None"
    assert settings["api_token"]["secret"] is True and settings["path"]["description"]

    text = run("connectors", sites=[notes_site])
    assert text.returncode == 0, text.stderr
    assert "notes  (strongroom-notes 0.1.0)" in text.stdout
    assert "api_token: SecretStr | None (optional)  [secret]" in text.stdout
    assert "tags: list[str] = []" in text.stdout


def test_the_main_environment_is_untouched(notes_site: Path) -> None:
    assert "notes" not in listed()
    assert importlib.util.find_spec("strongroom_notes") is None
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("strongroom-notes")


def test_broken_plugins_are_listed_as_broken_and_hide_nothing(notes_site: Path, broken_site: Path) -> None:
    connectors = listed(notes_site, broken_site)
    assert not connectors["filesystem"]["broken"] and not connectors["notes"]["broken"]
    assert connectors["notes"]["settings"]
    errors = {name: c["error"] for name, c in connectors.items() if c["broken"]}
    assert errors == {
        "broken": "ImportError: strongroom-broken needs the cloud SDK, which is not installed",
        "not_a_connector": "TypeError: strongroom_broken.shapes:NotAConnector is not a "
        "strongroom.connectors.Connector subclass",
        "bad_config": "TypeError: strongroom_broken.shapes:PlainConfigConnector.Config is not a "
        "strongroom.connectors.Config subclass",
    }
    assert {connectors[n]["package"] for n in errors} == {"strongroom-broken-plugins"}

    text = run("connectors", sites=[notes_site, broken_site])
    assert text.returncode == 0, text.stderr
    assert (
        "broken  (strongroom-broken-plugins 0.3.0)\n  broken: ImportError: strongroom-broken" in text.stdout
    )
    assert "not_a_connector  (strongroom-broken-plugins 0.3.0)\n  broken: TypeError" in text.stdout
    assert "notes  (strongroom-notes 0.1.0)" in text.stdout and "filesystem  (strongroom" in text.stdout
    assert "Traceback" not in text.stderr


# --- syncing and searching -------------------------------------------------------------------------


@pytest.mark.model
def test_plugin_source_syncs_and_is_searchable(notes_site: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path)
    synced = run("sync", "--config", str(config), sites=[notes_site])
    assert synced.returncode == 0, synced.stdout + synced.stderr
    assert "team-notes: 5 added, 0 updated, 0 unchanged, 0 deleted, 0 skipped" in synced.stdout

    found = run("search", "which tray takes A3 paper?", "--json", "--config", str(config), sites=[notes_site])
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)["results"]
    assert hits[0]["document_id"] == "team-notes/n-102"
    assert (hits[0]["source"], hits[0]["title"]) == ("team-notes", "Third-floor printer")
    assert "tray 2" in hits[0]["text"]

    again = run("sync", "--config", str(config), sites=[notes_site])
    assert again.returncode == 0, again.stdout + again.stderr
    assert "team-notes: 0 added, 0 updated, 5 unchanged, 0 deleted, 0 skipped" in again.stdout
    for out in (synced, found, again):
        assert TOKEN not in out.stdout + out.stderr


@pytest.mark.model
def test_sync_reports_a_broken_plugin_for_its_source_and_syncs_the_others(
    notes_site: Path, broken_site: Path, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path, '\n[[sources]]\nname = "cloud"\nconnector = "broken"\nworkspace = "acme"\n'
    )
    synced = run("sync", "--config", str(config), sites=[notes_site, broken_site])
    assert synced.returncode == 1, synced.stdout + synced.stderr
    assert "team-notes: 5 added, 0 updated, 0 unchanged, 0 deleted, 0 skipped" in synced.stdout
    assert (
        "cloud: 0 added, 0 updated, 0 unchanged, 0 deleted, 0 skipped (0 chunks written)\n"
        "  source failed: connector 'broken' (package strongroom-broken-plugins 0.3.0) is broken: "
        "ImportError: strongroom-broken needs the cloud SDK, which is not installed"
    ) in synced.stdout
    assert "Traceback" not in synced.stderr

    only_good = run(
        "sync", "--source", "team-notes", "--config", str(config), sites=[notes_site, broken_site]
    )
    assert only_good.returncode == 0, only_good.stdout + only_good.stderr
