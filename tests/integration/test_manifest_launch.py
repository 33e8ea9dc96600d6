"""Launch the server exactly as manifest.json tells Claude Desktop to, and use it.

Claude Desktop reads ``server.mcp_config`` from the bundle's manifest, substitutes ``${__dirname}``
(the unpacked bundle), ``${user_config.*}`` (what the user chose in the settings dialog, else the
declared defaults) and ``${HOME}``-style variables, then spawns the command over stdio. No config
file is involved: everything arrives through the environment, and the index is built by the
background sync that ``STRONGROOM_SERVER__SYNC_ON_START`` turns on.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.integration.mcp_helpers import structured
from tests.support import EXAMPLE, ROOT, clean_env

pytestmark = pytest.mark.model

MANIFEST = ROOT / "manifest.json"
SYNC_DEADLINE_S = 120
PLACEHOLDER = re.compile(r"\$\{([^}]+)\}")


def substitute(value: str, variables: dict[str, str]) -> str:
    """Replace ``${name}`` the way the MCPB host does; an unknown placeholder is a test failure."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in variables, f"manifest uses ${{{name}}}, which the host would not know how to fill"
        return variables[name]

    return PLACEHOLDER.sub(one, value)


def host_variables(
    manifest: dict[str, Any], bundle: Path, user_choices: dict[str, str], home: Path
) -> dict[str, str]:
    """The variables Claude Desktop offers: bundle dir, system paths, and every user_config value."""
    system = {
        "__dirname": str(bundle),
        "HOME": str(home),
        "DESKTOP": str(home / "Desktop"),
        "DOCUMENTS": str(home / "Documents"),
        "DOWNLOADS": str(home / "Downloads"),
        "pathSeparator": "/",
        "/": "/",
    }
    variables = dict(system)
    for key, spec in manifest.get("user_config", {}).items():
        if key in user_choices:
            variables[f"user_config.{key}"] = user_choices[key]
        elif "default" in spec:
            variables[f"user_config.{key}"] = substitute(str(spec["default"]), system)
        else:
            assert not spec.get("required"), f"user_config.{key} is required but the test did not set it"
    return variables


def manifest_launch(
    manifest: dict[str, Any], variables: dict[str, str], bundle: Path
) -> StdioServerParameters:
    config = manifest["server"]["mcp_config"]
    command = substitute(config["command"], variables)
    args = [substitute(a, variables) for a in config.get("args", [])]
    env = {k: substitute(v, variables) for k, v in config.get("env", {}).items()}
    assert command == "python3", config
    # In a real bundle, `python3` is the user's interpreter and the package comes from the
    # bundle's server/lib via PYTHONPATH. Here the bundle directory is empty and the package is
    # installed in this virtual environment, so the venv's interpreter stands in for python3;
    # the arguments and the environment are the manifest's own, substituted as the host would.
    return StdioServerParameters(
        command=sys.executable,
        args=args,
        # No STRONGROOM_* from the developer's shell: only what the manifest sets.
        env=clean_env(**env),
        cwd=bundle,  # no strongroom.toml here: configuration comes only from the environment
    )


def test_manifest_launch_syncs_in_background_and_serves(tmp_path: Path) -> None:
    if not MANIFEST.exists():
        pytest.fail("manifest.json is missing at the repository root")
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    config = manifest["server"]["mcp_config"]
    assert config["args"] == ["-m", "strongroom.server", "serve"], config["args"]
    assert config["env"].get("STRONGROOM_SERVER__SYNC_ON_START") == "true", config["env"]

    bundle = tmp_path / "bundle"
    (bundle / "server" / "lib").mkdir(parents=True)
    home = tmp_path / "home"
    home.mkdir()
    documents = tmp_path / "My Documents"  # a space, as real folder names have
    shutil.copytree(EXAMPLE / "docs", documents)
    expected_documents = sum(1 for p in documents.rglob("*") if p.is_file())
    data = tmp_path / "data"
    variables = host_variables(
        manifest, bundle, {"documents_dir": str(documents), "data_dir": str(data)}, home
    )
    params = manifest_launch(manifest, variables, bundle)
    assert params.env is not None
    assert params.env["STRONGROOM_DOCUMENTS"] == str(documents)
    assert params.env["STRONGROOM_STORE__PATH"] == str(data)
    assert params.env["PYTHONPATH"] == str(bundle / "server" / "lib")

    async def session() -> dict[str, Any]:
        async with Client(params, read_timeout_seconds=120) as client:
            assert client.server_info is not None and client.server_info.name == "strongroom"
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools >= {"search", "read_document", "list_sources", "check_answer"}, tools

            # The background sync fills the index while the server already answers.
            deadline = time.monotonic() + SYNC_DEADLINE_S
            source: dict[str, Any] = {}
            while True:
                sources = structured(await client.call_tool("list_sources", {}))["sources"]
                source = next((s for s in sources if s["name"] == "documents"), {})
                if source.get("documents", 0) >= 10 and source.get("last_synced"):
                    break
                assert time.monotonic() < deadline, f"sync did not finish in {SYNC_DEADLINE_S}s: {sources}"
                await anyio.sleep(1)

            hits = structured(
                await client.call_tool(
                    "search", {"query": "can I send back a tent I already pitched?", "k": 3}
                )
            )["results"]
            assert hits, "no hits after the background sync"
            assert hits[0]["source"] == "documents"
            assert hits[0]["document_id"] == "documents/refund-policy.md", [h["document_id"] for h in hits]
            return source

    source = anyio.run(session)
    assert source["documents"] == expected_documents, source
    assert not source.get("last_error"), source
    # The index went to the data folder the user chose, not next to the documents or into the bundle.
    assert data.is_dir() and any(data.iterdir())
    assert not (documents / ".strongroom").exists()
    assert not any(p.name == ".strongroom" for p in bundle.rglob("*"))
