"""The MCP Bundle manifest (manifest.json) is valid for manifest_version 0.4 (the `uv` server type) and lists the real tools.

The schema comes from the pinned ``@anthropic-ai/mcpb`` package in tests/node (``cd tests/node &&
npm ci``): its JSON schema file is checked with jsonschema, and its own CLI (``mcpb validate``) is
run too, so the manifest is judged by the same code that packs bundles for Claude Desktop.
Without tests/node/node_modules these tests skip locally, but fail under ``CI=true``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST_PATH = ROOT / "manifest.json"
NODE_DIR = ROOT / "tests" / "node"
MCPB_DIR = NODE_DIR / "node_modules" / "@anthropic-ai" / "mcpb"
SCHEMA_NAME = "mcpb-manifest-v0.4.schema.json"
SUCCESS_TEXT = "Manifest schema validation passes!"
EXPECTED_TOOLS = {"search", "read_document", "list_sources", "check_answer"}


def _on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _need(condition: bool, message: str) -> None:
    """Skip when a Node prerequisite is missing locally; fail on CI, where it must be there."""
    if condition:
        return
    if _on_ci():
        pytest.fail(f"{message} (CI=true, so this is an error; run `cd tests/node && npm ci`)")
    pytest.skip(f"{message}; run `cd tests/node && npm ci` to enable this test")


def _manifest() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(MANIFEST_PATH.read_text(encoding="utf-8"))
    return data


def _schema_path() -> Path:
    """Find the v0.4 schema inside the installed package, wherever this version keeps it."""
    _need(MCPB_DIR.is_dir(), f"{MCPB_DIR.relative_to(ROOT)} is not installed")
    package = json.loads((MCPB_DIR / "package.json").read_text(encoding="utf-8"))
    exported = package.get("exports", {}).get(f"./{SCHEMA_NAME}")
    candidates = [MCPB_DIR / exported] if isinstance(exported, str) else []
    candidates += [MCPB_DIR / "dist" / SCHEMA_NAME, MCPB_DIR / "schemas" / SCHEMA_NAME]
    candidates += sorted(
        p for p in MCPB_DIR.rglob(SCHEMA_NAME) if "node_modules" not in p.relative_to(MCPB_DIR).parts
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    pytest.fail(f"{SCHEMA_NAME} not found in {MCPB_DIR} (package version {package.get('version')})")


def _schema_errors(manifest: dict[str, Any]) -> list[str]:
    schema = json.loads(_schema_path().read_text(encoding="utf-8"))
    validator_cls = jsonschema.validators.validator_for(schema)
    validator_cls.check_schema(schema)
    validator = validator_cls(schema, format_checker=validator_cls.FORMAT_CHECKER)
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in validator.iter_errors(manifest)
    ]


def _mcpb_validate(path: Path) -> subprocess.CompletedProcess[str]:
    _need(MCPB_DIR.is_dir(), f"{MCPB_DIR.relative_to(ROOT)} is not installed")
    npx = shutil.which("npx")
    _need(npx is not None, "npx (Node.js) is not on PATH")
    assert npx is not None
    return subprocess.run(
        # --no: never download anything; use the pinned copy under tests/node only.
        [npx, "--no", "--prefix", str(NODE_DIR), "mcpb", "validate", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.node
def test_manifest_matches_the_v0_4_json_schema() -> None:
    manifest = _manifest()
    assert manifest["manifest_version"] == "0.4"
    errors = _schema_errors(manifest)
    assert not errors, "manifest.json does not match the MCPB v0.4 schema:\n" + "\n".join(errors)


@pytest.mark.node
def test_the_json_schema_check_rejects_a_broken_manifest() -> None:
    broken = copy.deepcopy(_manifest())
    broken["server"]["type"] = "ruby"
    del broken["author"]
    broken["unexpected_key"] = True
    errors = "\n".join(_schema_errors(broken))
    assert "ruby" in errors
    assert "author" in errors
    assert "unexpected_key" in errors


@pytest.mark.node
def test_mcpb_cli_validates_the_manifest() -> None:
    result = _mcpb_validate(MANIFEST_PATH)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"mcpb validate failed ({result.returncode}):\n{output}"
    assert SUCCESS_TEXT in output, output


@pytest.mark.node
def test_mcpb_cli_rejects_a_broken_manifest(tmp_path: Path) -> None:
    broken = copy.deepcopy(_manifest())
    del broken["server"]["mcp_config"]
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(broken), encoding="utf-8")
    result = _mcpb_validate(path)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert SUCCESS_TEXT not in output


def test_manifest_lists_exactly_the_server_tools() -> None:
    tools = _manifest().get("tools", [])
    names = [tool["name"] for tool in tools]
    assert len(names) == len(set(names)), f"duplicate tools: {names}"
    assert set(names) == EXPECTED_TOOLS
    assert all(tool.get("description", "").strip() for tool in tools)


def test_manifest_version_matches_the_python_package() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert _manifest()["version"] == pyproject["project"]["version"]


def test_mcp_config_only_references_declared_user_config() -> None:
    manifest = _manifest()
    config = manifest["server"]["mcp_config"]
    text = json.dumps(config)
    referenced = set(re.findall(r"\$\{user_config\.([A-Za-z0-9_]+)\}", text))
    declared = set(manifest.get("user_config", {}))
    assert referenced == declared, f"referenced {sorted(referenced)}, declared {sorted(declared)}"
    env = config["env"]
    assert env["STRONGROOM_DOCUMENTS"] == "${user_config.documents_dir}"
    assert env["STRONGROOM_STORE__PATH"] == "${user_config.data_dir}"
    assert env["STRONGROOM_SERVER__SYNC_ON_START"] == "true"
    assert manifest["server"]["type"] == "uv" and config["command"] == "uv"
    assert config["args"][:3] == ["run", "--directory", "${__dirname}"]
    assert config["args"][-4:] == ["python", "-m", "strongroom.server", "serve"]
    assert manifest["user_config"]["documents_dir"]["required"] is True
