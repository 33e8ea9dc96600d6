"""Claude Desktop's configuration file: where it is on each platform, the entry that launches
this server, and a merge that keeps the user's other entries and a backup."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from strongroom.server.errors import StrongroomError

CONFIG_NAME = "claude_desktop_config.json"


class ClaudeConfigError(StrongroomError):
    """Claude Desktop's configuration file cannot be read or merged."""


def _app_folder(platform: str, env: Mapping[str, str], home: Path) -> Path:
    if platform == "darwin":
        return home / "Library" / "Application Support" / "Claude"
    if platform == "win32":
        return Path(env.get("APPDATA") or home / "AppData" / "Roaming") / "Claude"
    return Path(env.get("XDG_CONFIG_HOME") or home / ".config") / "Claude"


def config_path(platform: str = sys.platform, env: Mapping[str, str] | None = None) -> Path:
    """claude_desktop_config.json on macOS, Windows and Linux (the community builds' location)."""
    return _app_folder(platform, os.environ if env is None else env, Path.home()) / CONFIG_NAME


def logs_folder(platform: str = sys.platform, env: Mapping[str, str] | None = None) -> Path:
    """Where Claude Desktop writes ``mcp-server-NAME.log`` (the server's stderr) and ``mcp.log``."""
    if platform == "darwin":
        return Path.home() / "Library" / "Logs" / "Claude"
    return _app_folder(platform, os.environ if env is None else env, Path.home()) / "logs"


def server_entry(config_file: Path) -> dict[str, Any]:
    """The ``mcpServers`` entry: this interpreter and the configuration, both absolute.

    Claude Desktop starts servers from ``/`` with a bare environment, so nothing may be relative.
    ``sys.executable`` is made absolute but not resolved: a venv's python is a symlink that
    must stay one, or the venv's packages are lost.
    """
    return {
        "command": os.path.abspath(sys.executable),
        "args": ["-m", "strongroom.server", "serve", "--config", str(config_file.resolve())],
    }


def merge_entry(path: Path, name: str, entry: dict[str, Any]) -> Path | None:
    """Write ``entry`` as ``mcpServers[name]`` into ``path``, keeping everything else.

    Returns the backup of the previous file (None when there was none). Never writes a file it
    could not parse: ClaudeConfigError says what is wrong with it.
    """
    document: dict[str, Any] = {}
    if path.exists():
        try:
            text = path.read_text(encoding="utf-8")
            loaded = json.loads(text) if text.strip() else {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ClaudeConfigError(f"cannot read {path}: {exc}") from None
        except json.JSONDecodeError as exc:
            raise ClaudeConfigError(
                f"{path} is not valid JSON (line {exc.lineno}: {exc.msg}); fix it or move it away, "
                "then run this again"
            ) from None
        if not isinstance(loaded, dict) or not isinstance(loaded.get("mcpServers", {}), dict):
            raise ClaudeConfigError(f'{path}: expected an object with an "mcpServers" object')
        document = loaded
    servers = document.setdefault("mcpServers", {})
    servers[name] = entry
    backup = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            backup = path.with_name(path.name + ".bak")
            shutil.copy2(path, backup)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
            out.write("\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise ClaudeConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return backup
