"""Every kind of source at once — SQLite, PostgreSQL, a local website, a CSV file — synced and
found through the MCP `search` tool, with records retrievable by key."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import psycopg
import pytest
from mcp import Client

from strongroom.server.app import build_app
from strongroom.server.guard.access import Caller
from strongroom.server.mcp_app.app import build_server
from strongroom.server.settings import load_settings
from tests.integration.mcp_helpers import structured
from tests.integration.postgres import PostgresServer
from tests.integration.website import Website, serve

pytestmark = pytest.mark.model


def test_sqlite_postgres_web_and_csv_sources_are_searchable_over_mcp(
    tmp_path: Path,
    postgres: PostgresServer,
    embedder,  # type: ignore[no-untyped-def]
) -> None:
    with sqlite3.connect(tmp_path / "crm.db") as db:
        db.execute("CREATE TABLE accounts (account_id INTEGER PRIMARY KEY, name TEXT, note TEXT)")
        db.execute(
            "INSERT INTO accounts VALUES (7, 'Harbor Kayak Club', 'Renewal of the fleet insurance is due in May')"
        )
    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS invoices")
        conn.execute(
            "CREATE TABLE invoices (invoice_id integer PRIMARY KEY, vendor text, memo text, amount numeric(10,2))"
        )
        conn.execute(
            "INSERT INTO invoices VALUES (9001, 'Glacier Rope Works', 'Climbing rope restock for the spring season', 1840.50)"
        )
    (tmp_path / "suppliers.csv").write_text(
        "supplier_id,name,speciality\nS-12,Northwind Textiles,waterproof membrane fabric\n"
    )
    site = Website()
    site.set_page(
        "/guides/avalanche",
        "<html><head><title>Avalanche safety</title></head><body><main>"
        "<h1>Avalanche safety</h1><p>Always carry a transceiver, a probe and a shovel off-piste.</p>"
        "</main></body></html>",
    )
    with serve(site) as website:
        (tmp_path / "strongroom.toml").write_text(f"""
[[sources]]
name = "crm"
connector = "sql"
url = "sqlite:///crm.db"
query = "SELECT * FROM accounts"
key = "account_id"

[[sources]]
name = "invoices"
connector = "sql"
url = "{postgres.dsn}"
query = "SELECT * FROM invoices"
key = "invoice_id"

[[sources]]
name = "suppliers"
connector = "records"
path = "suppliers.csv"
key = "supplier_id"

[[sources]]
name = "guides"
connector = "web"
urls = ["{website.url("/guides/avalanche")}"]
""")
        app = build_app(load_settings(tmp_path / "strongroom.toml"), embedder=embedder)
        report = app.knowledge.sync()
    assert report.ok, [(s.name, s.error) for s in report.sources]
    assert {s.name: s.added for s in report.sources} == {"crm": 1, "invoices": 1, "suppliers": 1, "guides": 1}
    assert postgres.password not in repr(report)

    server = build_server(app, Caller("local", "stdio"))
    expected = {
        "when is the boat club's insurance up for renewal?": "crm/7",
        "which vendor sold us climbing ropes?": "invoices/9001",
        "who makes our waterproof fabric?": "suppliers/S-12",
        "what gear do I need for backcountry skiing safety?": f"guides/{website.url('/guides/avalanche')}",
    }

    async def session() -> None:
        async with Client(server) as client:
            for question, document_id in expected.items():
                hits = structured(await client.call_tool("search", {"query": question, "k": 2}))["results"]
                assert hits[0]["document_id"] == document_id, (question, hits)

    anyio.run(session)
    invoice = app.knowledge.record("invoices", "9001")
    assert invoice is not None and invoice.fields is not None
    assert str(invoice.fields["amount"]) == "1840.50" and invoice.fields["vendor"] == "Glacier Rope Works"
