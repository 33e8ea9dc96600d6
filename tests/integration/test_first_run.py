"""A new user's first hour, as they would meet it: no configuration yet, an unusable data folder,
a busy port, an empty index, a sync still running, a model passing bad arguments, then
``init``, ``doctor`` and ``claude-config --write``. Each error is one line and a non-zero exit.

None of these tests loads the embedding model: every message comes before it would be needed.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path

import anyio
import pytest
from mcp import Client

from tests.integration.mcp_helpers import error_text
from tests.support import EXAMPLE, clean_env, free_port, strongroom_cmd

NO_CONFIG = "strongroom: error: no configuration found: looked for "


def run(*args: str, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        strongroom_cmd(*args),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=clean_env(**env),
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def one_line_error(out: subprocess.CompletedProcess[str], expected: str) -> None:
    """Exit status 1, nothing on stdout, and exactly one line on stderr containing ``expected``."""
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("strongroom: error: ") and expected in lines[0], lines[0]


def write_config(folder: Path, store_path: str = ".strongroom") -> Path:
    docs = folder / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    (docs / "a.md").write_text("# Tents\n\nOpened tents carry a 15% restocking fee.\n")
    config = folder / "strongroom.toml"
    config.write_text(
        f'[store]\npath = "{store_path}"\n\n[[sources]]\nname = "docs"\nconnector = "filesystem"\npath = "docs"\n'
    )
    return config


# -- no configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("sync",),
        ("search", "tents"),
        ("status",),
        ("serve",),
        ("rules", "check"),
        ("audit",),
    ],
    ids=lambda a: " ".join(a),
)
def test_every_command_says_in_one_line_that_there_is_no_configuration(
    tmp_path: Path, args: tuple[str]
) -> None:
    out = run(*args, cwd=tmp_path)
    one_line_error(out, NO_CONFIG + str(tmp_path / "strongroom.toml"))
    assert "strongroom init" in out.stderr
    assert not any(tmp_path.iterdir()), "a command without configuration created files"


def test_claude_config_refuses_without_a_configuration_file(tmp_path: Path) -> None:
    out = run("claude-config", cwd=tmp_path, HOME=str(tmp_path / "home"))
    one_line_error(out, "an entry without --config would index nothing and create /.strongroom")
    out = run("claude-config", "--write", cwd=tmp_path, HOME=str(tmp_path / "home"))
    assert out.returncode == 1 and not (tmp_path / "home").exists()


# -- data folder, port, empty index ------------------------------------------------------------


@pytest.mark.parametrize("args", [("sync",), ("serve",)], ids=["sync", "serve"])
def test_an_unwritable_data_folder_is_one_line(tmp_path: Path, args: tuple[str]) -> None:
    (tmp_path / "blocker").write_text("a file where the data folder's parent should be")
    write_config(tmp_path, store_path="blocker/index")  # root may write anywhere; nobody can write here
    out = run(*args, cwd=tmp_path)
    one_line_error(out, f"cannot write the data folder {tmp_path / 'blocker' / 'index'}: not a directory")
    assert "set store.path in" in out.stderr


@pytest.mark.parametrize("args", [("search", "tents"), ("status",)], ids=["search", "status"])
def test_read_only_commands_on_a_missing_data_folder_create_nothing(tmp_path: Path, args: tuple[str]) -> None:
    write_config(tmp_path)
    out = run(*args, cwd=tmp_path)
    one_line_error(out, "nothing indexed yet: run `strongroom sync`")
    assert not (tmp_path / ".strongroom").exists()


def test_a_busy_port_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        out = run("serve", "--transport", "http", "--port", str(port), "--config", str(config), cwd=tmp_path)
    one_line_error(out, f"port {port} on 127.0.0.1 is already in use")


def test_search_on_an_empty_index_says_to_sync(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    (tmp_path / ".strongroom").mkdir()
    from strongroom.server.app import build_app
    from strongroom.server.settings import load_settings

    build_app(load_settings(config)).knowledge.close()  # an empty catalog, as after a sync that found nothing
    out = run("search", "tents", cwd=tmp_path)
    one_line_error(out, "nothing indexed yet: run `strongroom sync`")


# -- over MCP ------------------------------------------------------------------------------------


def _server(config: Path):  # type: ignore[no-untyped-def]
    from strongroom.server.app import build_app
    from strongroom.server.guard.access import Caller
    from strongroom.server.mcp_app.app import build_server
    from strongroom.server.settings import load_settings

    app = build_app(load_settings(config))
    return app.knowledge, build_server(app, Caller("local", "stdio"))


def test_mcp_search_says_when_nothing_is_indexed_or_the_first_sync_runs(tmp_path: Path) -> None:
    from strongroom.server.readiness import PROGRESS_FILE
    from strongroom.server.store.locks import exclusive_lock

    config = write_config(tmp_path)
    # No watcher: its catch-up sync at start would itself be "the first sync" this test stages.
    config.write_text(config.read_text() + "\n[server]\nwatch = false\n")
    kb, server = _server(config)

    async def search() -> str:
        async with Client(server) as client:
            result = await client.call_tool("search", {"query": "restocking fee"})
            assert result.is_error
            return error_text(result)

    # The SDK puts "Error executing tool search: " before every tool error.
    assert anyio.run(search).endswith(": nothing indexed yet: run `strongroom sync`")
    (kb.settings.data_dir / PROGRESS_FILE).write_text(json.dumps({"documents": 3, "estimated": 12}))
    with exclusive_lock(kb.settings.data_dir / "sync.lock") as held:  # as a sync in another process holds it
        assert held
        message = anyio.run(search)
    assert ": the first sync is still running: 3 of 12 documents indexed" in message, message


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    [
        ("search", {"query": "tents", "k": 999}, "k must be between 1 and 20, got 999"),
        ("search", {"query": "tents", "k": "many"}, "k must be an integer, got 'many'"),
        ("search", {"k": 3}, "query is required"),
        (
            "read_document",
            {"document_id": "x", "max_chars": 0},
            "max_chars must be between 1 and 4000, got 0",
        ),
        ("read_document", {"document_id": "x", "offset": -5}, "offset must be at least 0, got -5"),
    ],
)
def test_mcp_argument_errors_are_the_cli_sentence(
    tmp_path: Path, tool: str, arguments: dict[str, object], expected: str
) -> None:
    _, server = _server(write_config(tmp_path))

    async def call() -> str:
        async with Client(server) as client:
            result = await client.call_tool(tool, arguments)
            assert result.is_error
            return error_text(result)

    assert anyio.run(call) == expected


def test_messages_written_for_people_are_left_alone(tmp_path: Path) -> None:
    _, server = _server(write_config(tmp_path))

    async def call() -> str:
        async with Client(server) as client:
            result = await client.call_tool("search", {"query": "   "})
            assert result.is_error
            return error_text(result)

    assert anyio.run(call).endswith("query must not be empty")


# -- init, doctor, claude-config --write -------------------------------------------------------


def test_init_doctor_and_claude_config_write(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "docs").mkdir(parents=True)
    (project / "docs" / "tents.md").write_text("# Tents\n\nOpened tents carry a 15% restocking fee.\n")
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": ""}

    out = run("init", str(project), cwd=tmp_path, **env)  # stdin is not a terminal: asks nothing
    assert out.returncode == 0, out.stderr
    config = project / "strongroom.toml"
    text = config.read_text()
    assert 'path = "docs"' in text and text.count("\n# ") >= 5, text  # commented
    again = run("init", str(project), cwd=tmp_path, **env)
    one_line_error(again, "already exists")

    doctor = run("doctor", "--skip-model", cwd=project, **env)
    assert doctor.returncode == 1, doctor.stdout + doctor.stderr
    lines = doctor.stdout.splitlines()
    assert lines[0] == f"ok      config: {config}"
    assert any(
        line.startswith("ok      source documents (filesystem): reachable, about 1 documents")
        for line in lines
    )
    assert "problem index: nothing indexed yet: run `strongroom sync`" in lines

    claude_file = home / ".config" / "Claude" / "claude_desktop_config.json"
    claude_file.parent.mkdir(parents=True)
    claude_file.write_text(
        json.dumps({"mcpServers": {"other": {"command": "other-server"}}, "theme": "dark"})
    )
    out = run("claude-config", "--write", cwd=project, **env)
    assert out.returncode == 0, out.stderr
    assert str(claude_file) in out.stdout
    assert str(home / ".config" / "Claude" / "logs" / "mcp-server-strongroom.log") in out.stdout
    merged = json.loads(claude_file.read_text())
    assert merged["theme"] == "dark" and merged["mcpServers"]["other"] == {"command": "other-server"}
    entry = merged["mcpServers"]["strongroom"]
    assert os.path.isabs(entry["command"]) and entry["args"] == [
        "-m",
        "strongroom.server",
        "serve",
        "--config",
        str(config),
    ]
    backup = json.loads(claude_file.with_name(claude_file.name + ".bak").read_text())
    assert "strongroom" not in backup["mcpServers"]
    doctor = run("doctor", "--skip-model", cwd=project, **env)
    assert f"ok      claude desktop: {claude_file} runs: {entry['command']}" in doctor.stdout

    claude_file.write_text("{not json")
    broken = run("claude-config", "--write", cwd=project, **env)
    one_line_error(broken, "is not valid JSON (line 1")
    assert claude_file.read_text() == "{not json"


def test_doctor_without_configuration_says_where_it_looked(tmp_path: Path) -> None:
    out = run("doctor", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.splitlines()[0].startswith(f"problem config: none found (looked for {tmp_path}")


def test_example_writes_the_example_company(tmp_path: Path) -> None:
    out = run("example", "acme", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    written = sorted(p.relative_to(tmp_path / "acme").as_posix() for p in (tmp_path / "acme").rglob("*.*"))
    expected = sorted(
        p.relative_to(EXAMPLE).as_posix()
        for p in EXAMPLE.rglob("*.*")
        if ".strongroom" not in p.parts and "__pycache__" not in p.parts
    )
    assert written == expected
    one_line_error(run("example", "acme", cwd=tmp_path), "is not empty")


def test_the_readme_inspector_command_lists_the_tools(tmp_path: Path) -> None:
    """The README's Inspector line, run as written (the pinned Inspector stands in for npx)."""
    import shlex
    import sys

    from tests.integration.test_inspector_cli import INSPECTOR as INSPECTOR_BIN

    if not INSPECTOR_BIN.exists():
        pytest.skip("tests/node is not installed")
    readme = (EXAMPLE.parent.parent / "README.md").read_text()
    block = readme.split("## Other clients", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    line = block.strip().splitlines()[0].split("  #")[0]
    prefix = "npx @modelcontextprotocol/inspector@0.15.0 "
    assert line.startswith(prefix) and " -- strongroom serve --config" in line, line
    config = write_config(tmp_path)
    args = shlex.split(line[len(prefix) :].replace("$PWD", str(tmp_path)))
    env = clean_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    out = subprocess.run(
        [str(INSPECTOR_BIN), *args], cwd=config.parent, capture_output=True, text=True, env=env, timeout=180
    )
    assert out.returncode == 0, out.stdout + out.stderr
    names = {tool["name"] for tool in json.loads(out.stdout)["tools"]}
    assert {"search", "read_document", "list_sources"} <= names
