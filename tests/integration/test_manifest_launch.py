"""Pack the MCP Bundle, unpack it into an empty folder and launch it exactly as the host does.

The host (Claude Desktop) reads ``server.mcp_config`` from the bundle's manifest, substitutes
``${__dirname}`` (the unpacked bundle), ``${user_config.*}`` (what the user chose in the settings
dialog, else the declared defaults) and ``${HOME}``-style variables, and spawns the command over
stdio from ``/``. The bundle is of the ``uv`` type: ``uv run`` installs the dependencies from the
bundle's pyproject.toml into the bundle's own ``.venv``. The PATH holds a copy of ``uv`` and the
system's folders only, never this project's virtual environment, so the server that answers is
the one uv installed from the bundle.

One deviation, because this machine cannot reach PyTorch's CPU index: ``UV_INDEX`` points the
bundle's ``pytorch-cpu`` index at a local page that lists the same CPU wheel. Everything else
comes from PyPI as it would for a user (uv's cache makes repeated runs fast).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from tests.integration.mcp_helpers import structured
from tests.support import EXAMPLE, IN_CI, ROOT

pytestmark = [pytest.mark.model, pytest.mark.node]

MANIFEST = ROOT / "manifest.json"
NODE_DIR = ROOT / "tests" / "node"
SYNC_DEADLINE_S = 600  # the first launch installs the dependencies
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


def _need(found: object, what: str) -> None:
    if found:
        return
    if IN_CI:
        pytest.fail(f"{what} is missing (CI=true)")
    pytest.skip(f"{what} is missing")


def pack_and_unpack(tmp_path: Path) -> Path:
    """``mcpb pack`` the repository, then unzip the bundle into an empty folder."""
    npx = shutil.which("npx")
    _need(
        npx and (NODE_DIR / "node_modules" / "@anthropic-ai" / "mcpb").is_dir(),
        "npx with tests/node installed",
    )
    assert npx is not None
    packed = tmp_path / "strongroom.mcpb"
    out = subprocess.run(
        [npx, "--no", "--prefix", str(NODE_DIR), "mcpb", "pack", str(ROOT), str(packed)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    bundle = tmp_path / "unpacked bundle"  # a space, as "Application Support" has
    bundle.mkdir()
    with zipfile.ZipFile(packed) as archive:
        names = archive.namelist()
        archive.extractall(bundle)
    leaked = [n for n in names if re.search(r"(^|/)(\.venv|\.strongroom|node_modules|tests|\.git)/", n)]
    assert not leaked, f"the bundle packs what .mcpbignore should exclude: {leaked[:5]}"
    assert {"manifest.json", "pyproject.toml", "server/__main__.py", "connectors/__init__.py"} <= set(names)
    return bundle


def host_environment(tmp_path: Path) -> dict[str, str]:
    """A desktop app's environment: HOME, a PATH with uv and the system, nothing of this project."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    _need(uv, "uv (pip install uv)")
    assert uv is not None
    tools = tmp_path / "host-bin"
    tools.mkdir()
    shutil.copy2(uv, tools / "uv")
    torch_index = tmp_path / "torch-index" / "torch"
    torch_index.mkdir(parents=True)
    wheels = sorted(Path("/opt/wheels").glob("torch-*+cpu-*.whl"))
    env = {
        "HOME": str(tmp_path / "home"),
        "PATH": os.pathsep.join([str(tools), "/usr/bin", "/bin"]),
        "UV_PYTHON_DOWNLOADS": "never",  # use this machine's Python; the host may download one
        "UV_PYTHON": f"{sys.version_info.major}.{sys.version_info.minor}",
        "UV_CACHE_DIR": os.environ.get("UV_CACHE_DIR", str(Path.home() / ".cache" / "uv")),
    }
    for name in ("SSL_CERT_FILE", "LANG"):
        if name in os.environ:
            env[name] = os.environ[name]
    if wheels:  # no route to download.pytorch.org here: the same CPU wheel, from disk
        links = "".join(f'<a href="{w.as_uri()}">{w.name}</a>' for w in wheels)
        (torch_index / "index.html").write_text(f"<html><body>{links}</body></html>")
        env["UV_INDEX"] = f"pytorch-cpu={torch_index.parent.as_uri()}"
    pyenv = Path(sys.base_prefix) / "bin"  # the interpreter uv may use, not the project's venv
    env["PATH"] += os.pathsep + str(pyenv)
    return env


def manifest_launch(
    manifest: dict[str, Any], variables: dict[str, str], host_env: dict[str, str]
) -> StdioServerParameters:
    config = manifest["server"]["mcp_config"]
    command = substitute(config["command"], variables)
    args = [substitute(a, variables) for a in config.get("args", [])]
    env = {k: substitute(v, variables) for k, v in config.get("env", {}).items()}
    resolved = shutil.which(command, path=host_env["PATH"])
    assert resolved and not resolved.startswith(sys.prefix), resolved
    return StdioServerParameters(command=resolved, args=args, env={**host_env, **env}, cwd="/")


def test_packed_bundle_installs_syncs_and_serves(tmp_path: Path) -> None:
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    assert manifest["server"]["type"] == "uv"
    bundle = pack_and_unpack(tmp_path)
    host_env = host_environment(tmp_path)
    home = Path(host_env["HOME"])
    home.mkdir()
    documents = tmp_path / "My Documents"
    shutil.copytree(EXAMPLE / "docs", documents)
    expected_documents = sum(1 for p in documents.rglob("*") if p.is_file())
    variables = host_variables(manifest, bundle, {"documents_dir": str(documents)}, home)
    params = manifest_launch(manifest, variables, host_env)
    assert params.env is not None and params.env["STRONGROOM_STORE__PATH"] == str(home / ".strongroom")

    async def session() -> dict[str, Any]:
        async with Client(params, read_timeout_seconds=SYNC_DEADLINE_S) as client:
            assert client.server_info is not None and client.server_info.name == "strongroom"
            tools = {t.name for t in (await client.list_tools()).tools}
            assert tools >= {"search", "read_document", "list_sources", "check_answer"}, tools
            deadline = time.monotonic() + SYNC_DEADLINE_S
            while True:
                sources = structured(await client.call_tool("list_sources", {}))["sources"]
                source = next((s for s in sources if s["name"] == "documents"), {})
                if source.get("last_synced"):
                    break
                assert time.monotonic() < deadline, f"sync did not finish in {SYNC_DEADLINE_S}s: {sources}"
                await anyio.sleep(1)
            hits = structured(
                await client.call_tool(
                    "search", {"query": "can I send back a tent I already pitched?", "k": 3}
                )
            )["results"]
            assert hits[0]["document_id"] == "documents/refund-policy.md", [h["document_id"] for h in hits]
            return dict(source)

    source = anyio.run(session)
    assert source["documents"] == expected_documents and not source.get("last_error"), source
    # The server ran from the bundle's own environment, and the index went where the user chose.
    assert (bundle / ".venv").is_dir()
    assert (home / ".strongroom" / "catalog.sqlite3").is_file()
    assert not (documents / ".strongroom").exists() and not Path("/.strongroom").exists()
