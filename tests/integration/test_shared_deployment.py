"""The shared deployment for real: PostgreSQL for the catalog, budgets and audit log, a
`chroma run` for the vectors, and two `serve --transport http` replicas with their own data
folders, as on two hosts behind a load balancer."""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from strongroom.server.guard.auth import token_digest
from strongroom.server.store.audit import AuditLog
from strongroom.server.store.postgres import PostgresDatabase
from tests.integration.guard_fixtures import write_deployment
from tests.integration.mcp_helpers import error_text, structured
from tests.integration.postgres import PostgresServer
from tests.support import EXAMPLE, ROOT, clean_env, free_port, serving_http, strongroom_cmd, wait_for_port

pytestmark = pytest.mark.model

TOKENS = {name: f"sr_{name}_shared_test_token_0123" for name in ("ann", "cat", "dan")}
# Distinct questions, so every call brings passages new to the caller until its budget is spent.
QUESTIONS = [
    "return a tent",
    "warranty on stoves",
    "restocking fee",
    "shipping times",
    "damaged items",
    "gift cards",
    "trail rewards tiers",
    "price match",
    "repairs",
    "international orders",
]
_databases = itertools.count()


def principals_toml() -> str:
    """Staff principals with the same small budget (everything else at its default)."""
    return "".join(
        f"""
[[guard.principals]]
name = "{name}"
labels = ["staff"]
token_sha256 = ["{token_digest(token)}"]
limits = {{ hard_chunks = 12, soft_chunks = 12, calls_per_minute = 600, burst = 100 }}
"""
        for name, token in TOKENS.items()
    )


@pytest.fixture
def shared(postgres: PostgresServer, chroma_server: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment every process of the deployment gets: where the shared stores are."""
    name = f"shared_{next(_databases)}"
    with psycopg.connect(postgres.admin_conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER {postgres.user}")
    yield {
        "STRONGROOM_STORE__CATALOG_URL": f"postgresql://{postgres.user}@{postgres.host}:{postgres.port}/{name}",
        "STRONGROOM_STORE__CATALOG_PASSWORD": postgres.password,
        "STRONGROOM_STORE__CHROMA_URL": chroma_server,
        "STRONGROOM_GUARD__DIGEST_KEY": "shared-digest-key-for-the-test-0123456789",
        "STRONGROOM_SERVER__WATCH": "false",
    }


def run(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        strongroom_cmd(*args, "--config", str(config)),
        capture_output=True,
        text=True,
        timeout=600,
        env=clean_env(PYTHONPATH=str(ROOT), **env),
    )


async def search(port: int, principal: str, query: str) -> tuple[str, list[str]]:
    """One call: ("ok", the documents found) or ("refused", [])."""
    headers = {"Authorization": f"Bearer {TOKENS[principal]}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=120) as http,
        Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)) as client,
    ):
        result = await client.call_tool("search", {"query": query, "k": 3})
    if result.is_error:
        assert "passages" in error_text(result), error_text(result)
        return "refused", []
    return "ok", [h["document_id"] for h in structured(result)["results"]]


def test_two_replicas_share_budgets_the_audit_chain_and_the_index(
    shared: dict[str, str], tmp_path: Path
) -> None:
    deployment = write_deployment(tmp_path / "acme", principals_toml())
    config = deployment.config
    synced = run(config, shared, "sync")
    assert synced.returncode == 0, synced.stderr
    assert not (tmp_path / "acme" / ".strongroom" / "catalog.sqlite3").exists()  # nothing local
    ports = [free_port(), free_port()]
    with ExitStack() as replicas:
        procs = [
            replicas.enter_context(
                serving_http(
                    config,
                    port,
                    tmp_path / f"replica{i}.log",
                    STRONGROOM_STORE__PATH=str(tmp_path / f"host{i}"),
                    **shared,
                )
            )
            for i, port in enumerate(ports)
        ]

        async def scenario() -> tuple[list[str], list[str]]:
            # ann's calls alternate between the replicas; cat asks the same on one replica.
            alternating = [(await search(ports[n % 2], "ann", q))[0] for n, q in enumerate(QUESTIONS)]
            single = [(await search(ports[0], "cat", q))[0] for q in QUESTIONS]
            return alternating, single

        alternating, single = anyio.run(scenario)
        assert alternating == single, "two replicas must refuse at the same total as one"
        assert "ok" in alternating and alternating[-1] == "refused"

        # A sync from another process is seen by both replicas.
        (deployment.root / "docs" / "bike-racks.md").write_text(
            "# Bike racks\n\nThe zeppelin-shaped bike rack is installed free of charge within 10 days.\n"
        )
        assert run(config, shared, "sync").returncode == 0
        for port in ports:
            outcome, documents = anyio.run(search, port, "dan", "zeppelin bike rack")
            assert outcome == "ok" and "handbook/bike-racks.md" in documents
        # Kill one replica outright: the other goes on, and nothing answered is lost.
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait(10)
        assert anyio.run(search, ports[0], "dan", "opening hours")[0] == "ok"

    database = PostgresDatabase(
        shared["STRONGROOM_STORE__CATALOG_URL"], shared["STRONGROOM_STORE__CATALOG_PASSWORD"]
    )
    try:
        audit = AuditLog(database)
        verified = audit.verify()
        assert verified.ok, verified.problem
        by_principal = {p: audit.query(principal=p, limit=None) for p in TOKENS}
        assert [len(by_principal[p]) for p in TOKENS] == [len(QUESTIONS), len(QUESTIONS), 3]
        assert [r.outcome for r in reversed(by_principal["ann"])] == alternating
    finally:
        database.close()
    verify = run(config, shared, "audit", "verify")
    assert verify.returncode == 0 and "ok" in verify.stdout.lower(), verify.stdout + verify.stderr
    for log in tmp_path.glob("replica*.log"):
        text = log.read_text()
        assert shared["STRONGROOM_STORE__CATALOG_PASSWORD"] not in text
        assert "Traceback" not in text


def shared_block() -> str:
    guide = (ROOT / "docs" / "deployment.md").read_text(encoding="utf-8")
    section = guide.split("## Shared: PostgreSQL, a Chroma server, N replicas", 1)[1]
    return section.split("```bash", 1)[1].split("```", 1)[0]


def test_the_shared_deployment_commands_run_as_written(shared: dict[str, str], tmp_path: Path) -> None:
    """docs/deployment.md's commands on a copy of the example: only the database's and the
    Chroma server's addresses, the secrets' folder and the ports are replaced."""
    block = shared_block()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "strongroom-db-password").write_text(shared["STRONGROOM_STORE__CATALOG_PASSWORD"] + "\n")
    (secrets / "strongroom-digest-key").write_text("a-digest-key-for-the-docs-test\n")
    ports = [free_port(), free_port()]
    script = (
        block.replace(
            "postgresql://strongroom@db.internal:5432/strongroom", shared["STRONGROOM_STORE__CATALOG_URL"]
        )
        .replace("http://vectors.internal:8001", shared["STRONGROOM_STORE__CHROMA_URL"])
        .replace("/run/secrets/", f"{secrets}/")
        .replace("--port 8000", f"--port {ports[0]}")
        .replace("--port 8002", f"--port {ports[1]}")
    )
    assert script.count(str(secrets)) == 2 and str(ports[1]) in script
    site = tmp_path / "acme"
    shutil.copytree(EXAMPLE, site, ignore=shutil.ignore_patterns(".strongroom"))
    env = clean_env(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    with (tmp_path / "out.log").open("w") as out:
        shell = subprocess.Popen(
            ["bash", "-c", "set -euo pipefail\n" + script + "\nwait"],
            cwd=site,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        for port in ports:
            wait_for_port(port, 300, None)

        async def ask(port: int) -> list[str]:
            async with Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp")) as client:
                result = await client.call_tool("search", {"query": "return a tent I pitched", "k": 3})
            return [h["document_id"] for h in structured(result)["results"]]

        answers = [anyio.run(ask, port) for port in ports]
        assert answers[0] == answers[1] and answers[0], answers
        verify = run(site / "strongroom.toml", shared, "audit", "verify")
        assert verify.returncode == 0, verify.stdout + verify.stderr
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(shell.pid, signal.SIGKILL)
        shell.wait(10)
    log = (tmp_path / "out.log").read_text()
    assert shared["STRONGROOM_STORE__CATALOG_PASSWORD"] not in log and "Traceback" not in log, log[-3000:]
    assert not (site / ".strongroom" / "catalog.sqlite3").exists()
