"""Store faults reach clients and operators as clear errors, never as tracebacks or server paths.

A catalog locked by another process, a full disk, a damaged or foreign catalog file, numbers
beyond 64 bits and non-ASCII filter keys: each through a real front end (an MCP client over
stdio or in memory, the `strongroom` command).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters

from strongroom.server.app import build_app
from strongroom.server.guard.access import Caller
from strongroom.server.mcp_app.app import build_server
from strongroom.server.settings import load_settings
from strongroom.server.store.audit import AuditLog
from tests.integration.mcp_helpers import error_text, structured
from tests.support import ROOT, clean_env, strongroom_cmd

pytestmark = pytest.mark.model

BUSY = "the index is busy (another process is writing to it); try again in a moment"
DAMAGED = "the index catalog is damaged or is not a Strongroom catalog"
FULL = "the disk holding the index is full"


@pytest.fixture
def acme(fresh_example: Path) -> Path:
    """A private copy of the synced example; returns its strongroom.toml."""
    return fresh_example


@contextmanager
def write_locked(catalog: Path) -> Iterator[None]:
    """Another process holding the catalog's write lock (`BEGIN EXCLUSIVE`) until the block ends."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"db = sqlite3.connect({str(catalog)!r}, isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.read()\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait(10)


def catalog_of(config: Path) -> Path:
    return config.parent / ".strongroom" / "catalog.sqlite3"


def stdio(config: Path, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "strongroom.server", "serve", "--config", str(config)],
        env=clean_env(PYTHONPATH=str(ROOT), **env),
    )


def assert_no_path(message: str, config: Path) -> None:
    assert str(config.parent) not in message and "/tmp" not in message, message


def test_a_locked_catalog_is_a_quick_clear_tool_error_and_serving_resumes(acme: Path) -> None:
    """Over stdio: the call fails after the (configured) busy timeout, not 30 s, and says why."""
    timings: list[float] = []

    async def session() -> None:
        async with Client(
            stdio(acme, STRONGROOM_STORE__BUSY_TIMEOUT_S="1"), read_timeout_seconds=120
        ) as client:
            structured(await client.call_tool("search", {"query": "tent refund", "k": 1}))  # model loaded
            with write_locked(catalog_of(acme)):
                started = time.monotonic()
                result = await client.call_tool("search", {"query": "backpack warranty", "k": 1})
                timings.append(time.monotonic() - started)
                assert result.is_error
                assert BUSY in error_text(result), error_text(result)
                assert_no_path(error_text(result), acme)
            # The lock is gone: the same call works again.
            structured(await client.call_tool("search", {"query": "backpack warranty", "k": 1}))

    anyio.run(session)
    assert timings[0] < 6, f"the busy error took {timings[0]:.1f}s"
    # The call that failed on the lock was audited (once the catalog was free), between the others.
    audit = AuditLog(catalog_of(acme))
    assert [r.outcome for r in reversed(audit.query(limit=3))] == ["ok", "error", "ok"]
    assert audit.verify().ok


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        strongroom_cmd(*args), capture_output=True, text=True, env=clean_env(**env), timeout=300
    )


def assert_one_line_error(out: subprocess.CompletedProcess[str], expected: str) -> None:
    assert out.returncode != 0, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("strongroom: error: "), out.stderr
    assert expected in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_cli_on_a_locked_catalog(acme: Path) -> None:
    """Writers get the one-line busy error; readers are not blocked (WAL)."""
    env = {"STRONGROOM_STORE__BUSY_TIMEOUT_S": "1"}
    with write_locked(catalog_of(acme)):
        started = time.monotonic()
        out = run_cli("sync", "--config", str(acme), **env)
        assert_one_line_error(out, BUSY)
        assert str(catalog_of(acme)) in out.stderr  # the operator is told which file
        assert time.monotonic() - started < 60
        status = run_cli("status", "--config", str(acme), **env)
        assert status.returncode == 0, status.stderr
        search = run_cli("search", "tent refund", "--config", str(acme), **env)
        assert search.returncode == 0, search.stderr


def garbage(catalog: Path) -> None:
    catalog.write_bytes(os.urandom(64 * 1024))
    for suffix in ("-wal", "-shm"):
        catalog.with_name(catalog.name + suffix).unlink(missing_ok=True)


def truncated(catalog: Path) -> None:
    data = catalog.read_bytes()
    catalog.write_bytes(data[: len(data) // 3])
    for suffix in ("-wal", "-shm"):
        catalog.with_name(catalog.name + suffix).unlink(missing_ok=True)


@pytest.mark.parametrize("damage", [garbage, truncated])
def test_cli_on_a_damaged_catalog_is_one_line(acme: Path, damage: Any) -> None:
    _checkpoint(acme)
    damage(catalog_of(acme))
    for args in (["status"], ["search", "tent refund"], ["sync"], ["serve"]):
        out = run_cli(*args, "--config", str(acme))
        assert_one_line_error(out, DAMAGED)


def _checkpoint(config: Path) -> None:
    """Fold the WAL into the main file, so damaging the file damages the whole catalog."""
    import sqlite3

    db = sqlite3.connect(catalog_of(config))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_mcp_client_on_a_damaged_catalog_gets_a_clear_error(acme: Path) -> None:
    """The catalog is damaged under a running server: tool errors, no path, still serving, and
    the background warm-up leaves the error to the calls (no thread traceback)."""
    app = build_app(load_settings(acme))
    kb = app.knowledge
    server = build_server(app, Caller("local", "stdio"))
    _checkpoint(acme)
    kb.catalog.close()  # this thread's connection saw the good file
    garbage(catalog_of(acme))

    async def session() -> None:
        async with Client(server) as client:
            for _ in range(2):
                result = await client.call_tool("list_sources", {})
                assert result.is_error
                assert DAMAGED in error_text(result), error_text(result)
                assert_no_path(error_text(result), acme)

    anyio.run(session)


OUT_OF_RANGE = [
    ("read_document", {"document_id": "handbook/refund-policy.md", "offset": 2**70}, "offset"),
    ("read_document", {"document_id": "handbook/refund-policy.md", "max_chars": 2**70}, "max_chars"),
    ("search", {"query": "tent", "k": 2**70}, "k"),
    ("search", {"query": "tent", "k": -(2**70)}, "k"),
    ("search", {"query": "tent", "filters": {"order_total": 2**70}}, "between"),
    ("search", {"query": "tent", "filters": {"order_total": [1, -(2**70)]}}, "between"),
    ("search", {"query": "tent", "filters": {"ключ": "x"}}, "filter key 'ключ'"),
]


def test_out_of_range_numbers_and_non_ascii_keys_are_clear_tool_errors(acme: Path) -> None:
    async def session() -> None:
        async with Client(stdio(acme), read_timeout_seconds=120) as client:
            for tool, args, expected in OUT_OF_RANGE:
                result = await client.call_tool(tool, args)
                text = error_text(result)
                assert result.is_error, (tool, args)
                assert expected in text, (tool, args, text)
                assert (
                    "Overflow" not in text and "Traceback" not in text and "invalid metadata key" not in text
                )
            ok = structured(await client.call_tool("search", {"query": "tent refund", "k": 1}))
            assert ok["results"]

    anyio.run(session)


def _mount_tmpfs(where: Path, size: int) -> bool:
    where.mkdir(parents=True)
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True
    )
    return done.returncode == 0


def test_a_full_disk_is_a_clear_tool_error(acme: Path, tmp_path: Path) -> None:
    """The data directory on a tiny tmpfs, filled up while the server runs (needs root)."""
    data = acme.parent / ".strongroom"
    _checkpoint(acme)  # an empty WAL: the server's first writes need new space
    size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
    mount = tmp_path / "disk"
    if not _mount_tmpfs(mount, size + 8 * 1024 * 1024):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        shutil.copytree(data, mount / ".strongroom")
        acme.write_text(acme.read_text().replace('path = ".strongroom"', f'path = "{mount / ".strongroom"}"'))

        async def session() -> int:
            async with Client(stdio(acme), read_timeout_seconds=120) as client:
                structured(await client.call_tool("search", {"query": "tent refund", "k": 1}))
                filler = mount / "filler"
                with filler.open("wb", buffering=0) as f, _suppress_enospc():
                    while True:
                        f.write(b"\0" * 65536)
                failures = []
                for _ in range(3):  # the WAL may still have room for a page or two
                    result = await client.call_tool("search", {"query": "backpack warranty", "k": 1})
                    if result.is_error:
                        failures.append(error_text(result))
                assert failures and all(FULL in f for f in failures), failures
                assert_no_path(failures[0], acme)
                filler.unlink()
                structured(await client.call_tool("search", {"query": "backpack warranty", "k": 1}))
                return len(failures)

        failed = anyio.run(session)
        # The calls that failed on the full disk were audited once it had room again, in order.
        audit = AuditLog(mount / ".strongroom" / "catalog.sqlite3")
        outcomes = [r.outcome for r in reversed(audit.query(limit=failed + 1))]
        assert outcomes == ["error"] * failed + ["ok"] and audit.verify().ok
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@contextmanager
def _suppress_enospc() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        assert exc.errno == 28, exc  # ENOSPC
