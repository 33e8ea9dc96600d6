"""Access follows the configuration in force, over real transports: a JWT deployment with no
declared principals, and sources relabelled or removed since the last sync."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from strongroom.server.app import build_app
from strongroom.server.settings import load_settings
from tests.integration.guard_fixtures import FINANCE_DOCS
from tests.integration.mcp_helpers import error_text, structured
from tests.integration.test_guard_http import ISSUER, Issuer
from tests.support import EXAMPLE, ROOT, clean_env, free_port, serving_http

pytestmark = pytest.mark.model

SOURCES = """
[store]
path = ".strongroom"

[[sources]]
name = "handbook"
connector = "filesystem"
path = "docs"
labels = [{handbook}]
{extra}
"""
FINANCE = """
[[sources]]
name = "finance"
connector = "filesystem"
path = "finance"
labels = ["finance"]
"""
PUBLIC = """
[[sources]]
name = "public"
connector = "filesystem"
path = "public"
"""


def corpus(root: Path) -> Path:
    shutil.copytree(EXAMPLE / "docs", root / "docs")
    (root / "finance").mkdir()
    for name, text in FINANCE_DOCS.items():
        (root / "finance" / name).write_text(text)
    (root / "public").mkdir()
    (root / "public" / "opening-hours.md").write_text(
        "# Opening hours\n\nOur stores open at nine in the morning and close at six in the evening."
    )
    return root / "strongroom.toml"


def sync(config: Path, embedder: Any) -> None:
    kb = build_app(load_settings(config), embedder=embedder).knowledge
    assert kb.sync().ok
    kb.close()


async def seen(client: Client) -> set[str]:
    """Every source whose passages or listing reach the client."""
    listed = structured(await client.call_tool("list_sources", {}))["sources"]
    found = {s["name"] for s in listed}
    for query in ("refund policy tents", "Q3 revenue forecast payroll", "opening hours"):
        hits = structured(await client.call_tool("search", {"query": query, "k": 10}))["results"]
        found |= {h["source"] for h in hits}
    return found


async def seen_with_token(url: str, token: str) -> set[str]:
    """:func:`seen` by a client presenting ``token`` over streamable HTTP."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=120)
    async with http, Client(streamable_http_client(url, http_client=http)) as client:
        return await seen(client)


@pytest.fixture(scope="module")
def jwt_only(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[tuple[str, Issuer]]:  # type: ignore[no-untyped-def]
    """`serve --transport http` with a JWT issuer and not one declared principal."""
    root = tmp_path_factory.mktemp("jwt-only")
    config = corpus(root)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    issuer = Issuer(root)
    config.write_text(
        SOURCES.format(handbook='"staff"', extra=FINANCE + PUBLIC)
        + f'\n[guard.jwt]\nissuer = "{ISSUER}"\naudience = "{url}"\njwks_file = "jwks.json"\nlabels_claim = "groups"\n'
    )
    sync(config, embedder)
    with serving_http(config, port, root / "serve.log"):
        yield url, issuer


def test_with_no_declared_principals_a_jwt_sees_only_what_its_claim_grants(
    jwt_only: tuple[str, Issuer],
) -> None:
    url, issuer = jwt_only

    async def sources(**claims: Any) -> set[str]:
        return await seen_with_token(url, issuer.token(url, **claims))

    async def run() -> None:
        assert await sources(groups=["finance"]) == {"finance", "public"}
        assert await sources(groups=["staff", "finance"]) == {"handbook", "finance", "public"}
        assert await sources(groups=None) == {"public"}  # no claim: unlabelled sources only
        assert await sources(groups=["*"]) == {"public"}  # wildcard claims are not allowed here

    anyio.run(run)


@pytest.fixture(scope="module")
def jwt_options(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[tuple[str, Issuer]]:  # type: ignore[no-untyped-def]
    """A JWT deployment whose operator chose: no claim sees nothing, wildcard claims allowed,
    and one declared principal that a mapped subject (only) acts as."""
    root = tmp_path_factory.mktemp("jwt-options")
    config = corpus(root)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    issuer = Issuer(root)
    config.write_text(
        SOURCES.format(handbook='"staff"', extra=FINANCE + PUBLIC)
        + f'\n[guard.jwt]\nissuer = "{ISSUER}"\naudience = "{url}"\njwks_file = "jwks.json"\nlabels_claim = "groups"\n'
        + 'without_labels = "nothing"\nallow_wildcard_labels = true\n'
        + '\n[[guard.principals]]\nname = "auditor"\nlabels = ["finance"]\njwt_subjects = ["u-4711"]\n'
    )
    sync(config, embedder)
    with serving_http(config, port, root / "serve.log"):
        yield url, issuer


def test_the_operators_jwt_choices_apply_over_http(jwt_options: tuple[str, Issuer]) -> None:
    url, issuer = jwt_options

    async def sources(**claims: Any) -> set[str]:
        return await seen_with_token(url, issuer.token(url, **claims))

    async def run() -> None:
        assert await sources(groups=None) == set()  # without_labels = "nothing"
        assert await sources(groups=["*"]) == {"handbook", "finance", "public"}  # allowed here
        # The mapped subject acts as the principal (its labels, not the token's claim) ...
        assert await sources(sub="u-4711", groups=["staff"]) == {"finance", "public"}
        # ... and a subject that merely equals the principal's name does not.
        assert await sources(sub="auditor", groups=None) == set()

    anyio.run(run)


def _stdio(config: Path, principal: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "strongroom.server", "serve", "--config", str(config)],
        env=clean_env(PYTHONPATH=str(ROOT), STRONGROOM_PRINCIPAL=principal),
    )


def test_a_relabelled_or_removed_source_follows_the_config_without_a_sync(tmp_path: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    config = corpus(tmp_path)
    principals = '\n[[guard.principals]]\nname = "alice"\nlabels = ["staff"]\n'
    principals += '\n[[guard.principals]]\nname = "harry"\nlabels = ["hr"]\n'
    config.write_text(SOURCES.format(handbook='"staff"', extra=FINANCE) + principals)
    sync(config, embedder)
    # The operator relabels the handbook for HR and removes the finance source; nobody syncs.
    config.write_text(SOURCES.format(handbook='"hr"', extra="") + principals)

    async def run() -> None:
        async with Client(_stdio(config, "alice"), read_timeout_seconds=120) as client:
            assert await seen(client) == set()
            hidden = await client.call_tool("read_document", {"document_id": "handbook/refund-policy.md"})
            assert hidden.is_error and "no document with id" in error_text(hidden)
            gone = await client.call_tool("read_document", {"document_id": "finance/q3-forecast.md"})
            assert gone.is_error and "no document with id" in error_text(gone)
            with pytest.raises(Exception, match="no document with id"):
                await client.read_resource("strongroom://documents/handbook/refund-policy.md")
        async with Client(_stdio(config, "harry"), read_timeout_seconds=120) as client:
            assert await seen(client) == {"handbook"}  # removed sources are gone for everyone
            assert not (
                await client.call_tool("read_document", {"document_id": "handbook/refund-policy.md"})
            ).is_error

    anyio.run(run)
    # The next sync removes the finance source from the index, vectors included.
    app = build_app(load_settings(config), embedder=embedder)
    report = app.knowledge.sync()
    assert report.ok and report.purged == {"finance": len(FINANCE_DOCS)}
    assert [s.name for s in app.catalog.source_states()] == ["handbook"]
    assert app.catalog.documents("finance") == [] and app.catalog.orphaned_vectors() == []
    assert app.vectors.count() == app.catalog.counts()[1]
    app.close()
