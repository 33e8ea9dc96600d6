"""The sql connector against a real SQLite file and a real PostgreSQL server.

Connector-level tests run the connector alone; the ``model`` tests sync through the
KnowledgeBase with the packaged model and a real embedded Chroma, then look records up by key
and search them.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from strongroom.connectors import ConnectorError, Document
from strongroom.connectors.registry import build_connector
from strongroom.connectors.sql import Redactor, SqlConnector, redact_url
from strongroom.connectors.sql.databases import sqlite_converter
from strongroom.connectors.testing import collect
from strongroom.server.app import build_app
from strongroom.server.knowledge import KnowledgeBase
from strongroom.server.settings import load_settings
from tests.integration.postgres import PostgresServer, postgres

__all__ = ["postgres"]  # the fixture, imported for the tests below

PASSWORD_ENV = "STRONGROOM_TEST_ORDERS_PASSWORD"

# order_id, customer, amount, placed, updated_at, paid, note, items
ORDERS: list[tuple[Any, ...]] = [
    (4471, "Ada Lovelace", Decimal("129.90"), date(2024, 3, 1), datetime(2024, 3, 1, 10, 0), True, None,
     "Two brass gears and a leather-bound manual for the difference engine"),
    (4472, "Charles Babbage", Decimal("15.00"), date(2024, 3, 2), datetime(2024, 3, 2, 11, 30), False, "gift wrap",
     "A box of punched cards for the analytical engine"),
    (4473, "Grace Hopper", Decimal("7.25"), date(2024, 3, 3), datetime(2024, 3, 3, 9, 15), True, None,
     "A nanosecond length of copper wire, framed"),
    (4474, "Alan Turing", Decimal("42.00"), date(2024, 3, 4), datetime(2024, 3, 4, 16, 45), False, "urgent",
     "Three jars of marmalade and a bicycle chain"),
]  # fmt: skip
QUERY = "SELECT order_id, customer, amount, placed, updated_at, paid, note, items FROM orders"


@pytest.fixture(autouse=True)
def _no_developer_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """STRONGROOM_* variables in the developer's environment would override the test config."""
    import os

    for key in list(os.environ):
        if key.startswith("STRONGROOM_") and key != PASSWORD_ENV:
            monkeypatch.delenv(key)


# --- databases -------------------------------------------------------------------------------------------


def make_sqlite(path: Path, rows: list[tuple[Any, ...]] = ORDERS) -> Path:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount DECIMAL(10,2), "
        "placed DATE, updated_at TIMESTAMP, paid BOOLEAN, note TEXT, items TEXT)"
    )
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [sqlite_row(r) for r in rows])
    db.commit()
    db.close()
    return path


def sqlite_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """Values as an application would store them in SQLite: text dates, 0/1 booleans."""
    out: list[Any] = []
    for value in row:
        if isinstance(value, datetime):
            value = value.isoformat(sep=" ")
        elif isinstance(value, date):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, bool):
            value = int(value)
        out.append(value)
    return tuple(out)


@pytest.fixture
def pg(postgres: PostgresServer) -> Iterator[PostgresServer]:
    """The shared server with a fresh ``orders`` table."""
    import psycopg

    with psycopg.connect(postgres.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS orders")
        conn.execute(
            "CREATE TABLE orders (order_id integer PRIMARY KEY, customer text NOT NULL, amount numeric(10,2), "
            "placed date, updated_at timestamp, paid boolean, note text, items text)"
        )
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", ORDERS)
    yield postgres


def pg_execute(server: PostgresServer, sql: str, *params: Any) -> None:
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as conn:
        conn.execute(sql, params or None)


def run(
    options: dict[str, Any], base_dir: Path, state: dict[str, Any] | None = None
) -> tuple[SqlConnector, list[Document]]:
    connector = build_connector("sql", options, base_dir)
    assert isinstance(connector, SqlConnector)
    if state is not None:
        connector.state = json.loads(json.dumps(state))  # as the catalog stores it
    return connector, collect(connector)


def check_order_4471(fields: dict[str, Any] | None) -> None:
    assert fields is not None
    assert fields["order_id"] == 4471 and type(fields["order_id"]) is int
    assert fields["customer"] == "Ada Lovelace"
    assert fields["amount"] == Decimal("129.90") and isinstance(fields["amount"], Decimal)
    assert fields["placed"] == date(2024, 3, 1) and type(fields["placed"]) is date
    assert fields["updated_at"] == datetime(2024, 3, 1, 10, 0) and type(fields["updated_at"]) is datetime
    assert fields["paid"] is True
    assert fields["note"] is None


# --- secrets -----------------------------------------------------------------------------------------------


def test_redact_url_hides_only_the_password() -> None:
    assert (
        redact_url("postgresql://app:s3cret@db.internal:5432/shop")
        == "postgresql://app:***@db.internal:5432/shop"
    )
    assert redact_url("postgresql://app@db/shop") == "postgresql://app@db/shop"
    assert (
        redact_url("postgresql://app:p%40ss%3Aw@db/shop?sslmode=require")
        == "postgresql://app:***@db/shop?sslmode=require"
    )
    assert (
        redact_url("postgresql://app:x@[::1:5432/shop") == "postgresql://app:***@[::1:5432/shop"
    )  # unparsable
    redact = Redactor(["p@ss:w", None, ""])
    assert (
        redact("url postgresql://app:p%40ss%3Aw@db failed for p@ss:w")
        == "url postgresql://app:***@db failed for ***"
    )


def test_the_password_never_shows_in_config_repr_or_validation_errors(tmp_path: Path) -> None:
    url = "postgresql://app:hunter2-secret@127.0.0.1:1/shop"
    connector = build_connector("sql", {"url": url, "query": "SELECT 1 AS id", "key": "id"}, tmp_path)
    assert "hunter2-secret" not in repr(connector.config) and "***" in repr(connector.config)
    assert "hunter2-secret" not in str(connector.config)
    with pytest.raises(ConnectorError) as info:
        build_connector(
            "sql", {"url": "mysql://app:hunter2-secret@db/x", "query": "SELECT 1", "key": "id"}, tmp_path
        )
    assert "url: Value error, must start with sqlite:/// or postgresql://" in str(info.value)
    assert "hunter2-secret" not in str(info.value)
    from strongroom.connectors.sql import SqlConfig

    with pytest.raises(Exception) as raw:
        SqlConfig.model_validate({"url": "mysql://app:hunter2-secret@db/x", "query": "SELECT 1", "key": "id"})
    assert "hunter2-secret" not in str(raw.value)


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="query: Value error, must be a SELECT"):
        build_connector(
            "sql", {"url": "sqlite:///x.db", "query": "DELETE FROM orders", "key": "id"}, tmp_path
        )
    with pytest.raises(ConnectorError, match="password_env applies to postgresql:// URLs only"):
        build_connector(
            "sql", {"url": "sqlite:///x.db", "query": "SELECT 1", "key": "id", "password_env": "X"}, tmp_path
        )
    with pytest.raises(ConnectorError, match="title: Value error, bad title template"):
        build_connector(
            "sql", {"url": "sqlite:///x.db", "query": "SELECT 1", "key": "id", "title": "{"}, tmp_path
        )
    # Comments before the SELECT and a trailing semicolon are fine; relative paths follow the config file.
    connector = build_connector(
        "sql",
        {"url": "sqlite:///data/x.db", "query": "-- all\n/* orders */ select 1 as id;", "key": "id"},
        tmp_path,
    )
    assert isinstance(connector, SqlConnector)
    assert connector.config.query == "-- all\n/* orders */ select 1 as id"
    assert connector.config.url == "sqlite:///" + (tmp_path / "data" / "x.db").resolve().as_posix()


# --- SQLite ---------------------------------------------------------------------------------------------------


def test_sqlite_rows_become_typed_records(tmp_path: Path) -> None:
    make_sqlite(tmp_path / "orders.db")
    options = {
        "url": "sqlite:///orders.db",
        "query": QUERY,
        "key": "order_id",
        "title": "Order {order_id} ({customer})",
    }
    connector, docs = run(options, tmp_path)
    assert [d.id for d in docs] == ["4471", "4472", "4473", "4474"]
    assert not connector.skipped and connector.state == {}
    check_order_4471(docs[0].fields)
    assert docs[0].title == "Order 4471 (Ada Lovelace)"
    assert docs[0].text == (
        "# Order 4471 (Ada Lovelace)\n\norder_id: 4471\ncustomer: Ada Lovelace\namount: 129.9\n"
        "placed: 2024-03-01\nupdated_at: 2024-03-01 10:00:00\npaid: true\n"
        "items: Two brass gears and a leather-bound manual for the difference engine\n"
    )
    assert docs[0].metadata["key"] == "order_id" and len(str(docs[0].metadata["query"])) == 12
    assert docs[1].fields is not None and docs[1].fields["paid"] is False


def test_sqlite_declared_types_are_applied_leniently() -> None:
    as_date = sqlite_converter("DATE")
    assert as_date is not None
    assert as_date("2024-03-01") == date(2024, 3, 1)
    assert as_date("2024-03-01 10:00") == datetime(2024, 3, 1, 10, 0)
    assert as_date("soon") == "soon"  # kept as stored
    money = sqlite_converter("numeric(10, 2)")
    assert money is not None and money(12.5) == Decimal("12.5") and money(3) == Decimal(3)
    flag = sqlite_converter("BOOLEAN")
    assert flag is not None and flag(1) is True and flag("false") is False and flag(7) == 7
    stamp = sqlite_converter("TIMESTAMP WITH TIME ZONE")
    assert stamp is not None and stamp("2024-03-01T10:00:00Z") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert sqlite_converter("TEXT") is None and sqlite_converter("") is None


def test_text_columns_and_default_title(tmp_path: Path) -> None:
    make_sqlite(tmp_path / "orders.db")
    options = {
        "url": "sqlite:///orders.db",
        "query": QUERY,
        "key": "order_id",
        "text_columns": ["customer", "items"],
    }
    _, docs = run(options, tmp_path)
    assert docs[2].title == "order_id 4473"
    assert (
        docs[2].text
        == "# order_id 4473\n\ncustomer: Grace Hopper\nitems: A nanosecond length of copper wire, framed\n"
    )
    assert docs[2].fields is not None and docs[2].fields["amount"] == Decimal("7.25")


def test_null_and_duplicate_keys_are_skipped_with_reasons(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "people.db")
    db.execute("CREATE TABLE people (code TEXT, name TEXT)")
    db.executemany(
        "INSERT INTO people VALUES (?, ?)",
        [("a", "Ann"), (None, "Nobody"), ("", "Empty"), ("b", "Bob"), ("b", "Bob twin"), ("c", "Cy")],
    )
    db.commit()
    db.close()
    connector, docs = run(
        {"url": "sqlite:///people.db", "query": "SELECT * FROM people", "key": "code"}, tmp_path
    )
    assert [d.id for d in docs] == ["a", "c"]
    assert {s.id: s.reason for s in connector.skipped} == {
        "<2 rows without code>": "NULL or empty key 'code'",
        "b": "key 'code' = 'b' is shared by 2 rows; all skipped",
    }


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "sqlite:///missing.db"}, r"missing.db: database file not found"),
        ({"query": "SELECT * FROM nope"}, r"^query failed: no such table: nope$"),
        ({"query": "SELECT order_id FROM orders WHERE"}, r"^query failed: .*syntax error"),
        ({"key": "id"}, r"^key: the query returns no column 'id' \(columns: order_id, customer,"),
        ({"title": "Order {number}"}, r"^title: the query returns no column 'number'"),
        ({"updated_column": "changed"}, r"^updated_column: the query returns no column 'changed'"),
    ],
)
def test_sqlite_source_failures_name_the_cause(tmp_path: Path, options: dict[str, Any], message: str) -> None:
    make_sqlite(tmp_path / "orders.db")
    base = {"url": "sqlite:///orders.db", "query": QUERY, "key": "order_id"}
    with pytest.raises(ConnectorError, match=message):
        run({**base, **options}, tmp_path)


def test_a_slow_query_times_out(tmp_path: Path) -> None:
    make_sqlite(tmp_path / "orders.db")
    slow = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000000) "
        "SELECT max(i) AS id FROM n"
    )
    options = {"url": "sqlite:///orders.db", "query": slow, "key": "id", "timeout_s": 0.3}
    with pytest.raises(ConnectorError, match=r"timed out after 0.3 s \(timeout_s\)"):
        run(options, tmp_path)


def test_the_connection_is_read_only(tmp_path: Path) -> None:
    make_sqlite(tmp_path / "orders.db")
    sneaky = "WITH x AS (SELECT 1) SELECT * FROM orders; DELETE FROM orders"
    with pytest.raises(ConnectorError, match="query failed"):
        run({"url": "sqlite:///orders.db", "query": sneaky, "key": "order_id"}, tmp_path)
    assert sqlite3.connect(tmp_path / "orders.db").execute("SELECT COUNT(*) FROM orders").fetchone() == (4,)


def test_sqlite_incremental_reads_only_rows_at_or_after_the_mark(tmp_path: Path) -> None:
    path = make_sqlite(tmp_path / "orders.db")
    options = {
        "url": "sqlite:///orders.db",
        "query": QUERY,
        "key": "order_id",
        "updated_column": "updated_at",
    }
    first, docs = run(options, tmp_path)
    assert len(docs) == 4
    assert first.state["mark"] == {"type": "str", "value": "2024-03-04 16:45:00"}

    db = sqlite3.connect(path)
    db.execute("UPDATE orders SET note='late', updated_at='2024-03-05 08:00:00' WHERE order_id=4472")
    db.execute("UPDATE orders SET note='silent edit' WHERE order_id=4471")  # no new timestamp
    db.execute("DELETE FROM orders WHERE order_id=4473")
    db.commit()
    db.close()
    second, docs = run(options, tmp_path, first.state)
    # 4472 changed; 4474 sits on the old mark and is read again (the indexer sees it is unchanged).
    assert sorted(d.id for d in docs) == ["4472", "4474"]
    assert second.kept == {"4471"}  # 4473 is neither read nor kept: the sync deletes it
    assert second.state["mark"] == {"type": "str", "value": "2024-03-05 08:00:00"}

    changed = {**options, "title": "Order {order_id}"}  # other settings: every row is read again
    _, docs = run(changed, tmp_path, second.state)
    assert sorted(d.id for d in docs) == ["4471", "4472", "4474"]


# --- PostgreSQL ----------------------------------------------------------------------------------------------


def test_postgres_rows_become_typed_records(pg: PostgresServer, tmp_path: Path) -> None:
    options = {
        "url": pg.dsn,
        "query": QUERY + " ORDER BY order_id",
        "key": "order_id",
        "title": "Order {order_id}",
    }
    connector, docs = run(options, tmp_path)
    assert [d.id for d in docs] == ["4471", "4472", "4473", "4474"]
    check_order_4471(docs[0].fields)
    assert docs[0].text.startswith("# Order 4471\n\norder_id: 4471\ncustomer: Ada Lovelace\namount: 129.90\n")
    assert docs[0].updated_at is None  # only with updated_column
    assert not connector.skipped


def test_postgres_more_types(pg: PostgresServer, tmp_path: Path) -> None:
    query = (
        "SELECT 1 AS id, TIMESTAMPTZ '2024-03-01 10:00+00' AS at, TIME '09:30' AS opens, "
        "'{\"a\": [1, 2]}'::jsonb AS doc, ARRAY[1, 2] AS nums, '6ecd8c99-4036-403d-bf84-cf8400f67836'::uuid AS ref, "
        "INTERVAL '2 days' AS span, 2.5::float8 AS ratio, NULL::text AS nothing"
    )
    _, docs = run({"url": pg.dsn, "query": query, "key": "id"}, tmp_path)
    fields = docs[0].fields
    assert fields is not None
    assert fields["at"] == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert fields["opens"].isoformat() == "09:30:00"
    assert fields["doc"] == {"a": [1, 2]} and fields["nums"] == [1, 2]
    assert fields["ref"] == "6ecd8c99-4036-403d-bf84-cf8400f67836"
    assert fields["span"] == "2 days, 0:00:00" and fields["ratio"] == 2.5 and fields["nothing"] is None


def test_postgres_password_from_the_environment(
    pg: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"url": pg.url(password=""), "password_env": PASSWORD_ENV, "query": QUERY, "key": "order_id"}
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    with pytest.raises(
        ConnectorError, match=f"environment variable {PASSWORD_ENV} \\(password_env\\) is not set"
    ):
        run(options, tmp_path)
    monkeypatch.setenv(PASSWORD_ENV, pg.password)
    _, docs = run(options, tmp_path)
    assert len(docs) == 4
    monkeypatch.setenv(PASSWORD_ENV, "Wr0ng-Passw0rd")
    with pytest.raises(ConnectorError) as info:
        run(options, tmp_path)
    assert "password authentication failed" in str(info.value)
    assert "Wr0ng-Passw0rd" not in str(info.value) and pg.password not in str(info.value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"password": "Wr0ng-Passw0rd"}, r'password authentication failed for user "strongroom_app"'),
        ({"database": "nosuchdb"}, r'database "nosuchdb" does not exist'),
        ({"port": 1}, r"Connection refused"),
    ],
)
def test_postgres_connection_failures_name_the_cause_without_the_password(
    pg: PostgresServer, tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    password = change.get("password", pg.password)
    url = f"postgresql://{pg.user}:{password}@{pg.host}:{change.get('port', pg.port)}/{change.get('database', pg.database)}"
    with pytest.raises(ConnectorError, match=message) as info:
        run({"url": url, "query": QUERY, "key": "order_id", "timeout_s": 5}, tmp_path)
    assert str(info.value).startswith("cannot connect to postgresql://strongroom_app:***@127.0.0.1:")
    assert password not in str(info.value)


def test_postgres_query_errors_and_timeouts(pg: PostgresServer, tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match=r'^query failed: relation "nope" does not exist$'):
        run({"url": pg.dsn, "query": "SELECT * FROM nope", "key": "id"}, tmp_path)
    with pytest.raises(ConnectorError, match=r"timed out after 0.5 s"):
        run({"url": pg.dsn, "query": "SELECT 1 AS id, pg_sleep(3)", "key": "id", "timeout_s": 0.5}, tmp_path)
    with pytest.raises(ConnectorError, match="several columns named order_id; alias them"):
        run(
            {"url": pg.dsn, "query": "SELECT order_id, customer AS order_id FROM orders", "key": "order_id"},
            tmp_path,
        )
    # Nothing can write: a data-modifying CTE cannot hide inside the wrapped query, and the
    # transaction is read-only.
    with pytest.raises(ConnectorError, match="data-modifying statement"):
        run(
            {
                "url": pg.dsn,
                "query": "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
                "key": "order_id",
            },
            tmp_path,
        )
    pg_execute(pg, "CREATE SEQUENCE IF NOT EXISTS order_numbers")
    with pytest.raises(ConnectorError, match=r"cannot execute nextval\(\) in a read-only transaction"):
        run({"url": pg.dsn, "query": "SELECT nextval('order_numbers') AS id", "key": "id"}, tmp_path)


def test_postgres_incremental_sync_reads_changed_rows_and_lists_the_rest(
    pg: PostgresServer, tmp_path: Path
) -> None:
    options = {"url": pg.dsn, "query": QUERY, "key": "order_id", "updated_column": "updated_at"}
    first, docs = run(options, tmp_path)
    assert len(docs) == 4
    assert first.state["mark"] == {"type": "datetime", "value": "2024-03-04T16:45:00"}
    pg_execute(pg, "UPDATE orders SET note = 'late', updated_at = '2024-03-06 12:00' WHERE order_id = 4472")
    pg_execute(
        pg, "INSERT INTO orders VALUES (4475, 'Hedy Lamarr', 3.10, '2024-03-05', NULL, false, NULL, 'radio')"
    )
    pg_execute(pg, "DELETE FROM orders WHERE order_id = 4473")
    second, docs = run(options, tmp_path, first.state)
    read = {d.id: d for d in docs}
    assert sorted(read) == ["4472", "4474", "4475"]  # changed, on the mark, NULL updated_at
    assert read["4472"].fields is not None and read["4472"].fields["note"] == "late"
    assert read["4472"].updated_at == datetime(2024, 3, 6, 12, 0)
    assert second.kept == {"4471"}


def test_postgres_incremental_query_may_contain_percent_signs(pg: PostgresServer, tmp_path: Path) -> None:
    query = "SELECT order_id, updated_at, items, 'up 5%' AS label FROM orders WHERE items LIKE '%a%'"
    options = {"url": pg.dsn, "query": query, "key": "order_id", "updated_column": "updated_at"}
    first, docs = run(options, tmp_path)
    assert len(docs) == 4 and docs[0].fields is not None and docs[0].fields["label"] == "up 5%"
    _, docs = run(options, tmp_path, first.state)
    assert [d.id for d in docs] == ["4474"]


# --- through the knowledge base (model) --------------------------------------------------------------------------


def write_config(root: Path, pg_url: str | None = None, pg_extra: str = "") -> Path:
    """strongroom.toml with a SQLite source ``orders`` and, optionally, a PostgreSQL source ``pg_orders``."""
    text = (
        '[store]\npath = ".strongroom"\n\n'
        '[[sources]]\nname = "orders"\nconnector = "sql"\nurl = "sqlite:///orders.db"\n'
        f'query = {json.dumps(QUERY)}\nkey = "order_id"\ntitle = "Order {{order_id}} for {{customer}}"\n'
        'updated_column = "updated_at"\n'
    )
    if pg_url is not None:
        text += (
            f'\n[[sources]]\nname = "pg_orders"\nconnector = "sql"\nurl = {json.dumps(pg_url)}\n'
            f'query = {json.dumps(QUERY)}\nkey = "order_id"\nupdated_column = "updated_at"\n{pg_extra}'
        )
    config = root / "strongroom.toml"
    config.write_text(text, encoding="utf-8")
    return config


@pytest.fixture
def open_kb(embedder) -> Iterator[Any]:  # type: ignore[no-untyped-def]
    """Opens KnowledgeBases on config files; closes them at the end."""
    opened: list[KnowledgeBase] = []

    def open_(config: Path) -> KnowledgeBase:
        kb = build_app(load_settings(config), embedder=embedder).knowledge
        opened.append(kb)
        return kb

    yield open_
    for kb in opened:
        kb.close()


@pytest.mark.model
def test_records_sync_with_typed_fields_and_are_searchable(
    pg: PostgresServer, tmp_path: Path, open_kb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_sqlite(tmp_path / "orders.db")
    monkeypatch.setenv(PASSWORD_ENV, pg.password)
    kb = open_kb(write_config(tmp_path, pg.url(password=""), f'password_env = "{PASSWORD_ENV}"\n'))
    report = kb.sync()
    assert report.ok, report
    assert [(s.name, s.added, s.skipped) for s in report.sources] == [("orders", 4, []), ("pg_orders", 4, [])]

    for source in ("orders", "pg_orders"):
        record = kb.catalog.record(source, "4471")
        assert record is not None and record.source_id == "4471"
        check_order_4471(record.fields)
    assert kb.catalog.record("orders", "9999") is None
    looked_up = kb.record("pg_orders", "4472")
    assert looked_up is not None and looked_up.fields is not None and looked_up.fields["note"] == "gift wrap"
    assert kb.record("orders", "4471") is not None and kb.catalog.record("orders", "4471") is not None
    with pytest.raises(Exception, match="unknown source 'nope'"):
        kb.record("nope", "4471")

    hits = kb.search("punched cards for the analytical engine", k=3, sources=["orders"]).results
    assert hits[0].document_id == "orders/4472"
    assert hits[0].title == "Order 4472 for Charles Babbage"
    assert "customer: Charles Babbage" in hits[0].text
    hits = kb.search("marmalade and a bicycle chain", k=3, sources=["pg_orders"]).results
    assert hits[0].document_id == "pg_orders/4474" and hits[0].title == "order_id 4474"


@pytest.mark.model
def test_incremental_sync_picks_up_an_update_and_a_delete(
    pg: PostgresServer, tmp_path: Path, open_kb: Any
) -> None:
    make_sqlite(tmp_path / "orders.db")
    kb = open_kb(write_config(tmp_path, pg.dsn))
    assert kb.sync(["pg_orders"]).ok

    pg_execute(
        pg, "UPDATE orders SET items = 'A crate of vacuum tubes', updated_at = now() WHERE order_id = 4472"
    )
    pg_execute(pg, "DELETE FROM orders WHERE order_id = 4473")
    report = kb.sync(["pg_orders"]).sources[0]
    assert report.error is None, report.error
    assert (report.added, report.updated, report.deleted, report.unchanged) == (0, 1, 1, 2)
    assert kb.catalog.record("pg_orders", "4473") is None
    updated = kb.catalog.record("pg_orders", "4472")
    assert updated is not None and updated.fields is not None
    assert updated.fields["items"] == "A crate of vacuum tubes"
    assert kb.search("vacuum tubes", k=1, sources=["pg_orders"]).results[0].document_id == "pg_orders/4472"

    report = kb.sync(["pg_orders"]).sources[0]  # nothing changed since
    assert (report.added, report.updated, report.deleted, report.unchanged) == (0, 0, 0, 3)


@pytest.mark.model
def test_a_failing_source_keeps_its_records_while_another_syncs(
    pg: PostgresServer, tmp_path: Path, open_kb: Any
) -> None:
    db = make_sqlite(tmp_path / "orders.db")
    first = open_kb(write_config(tmp_path, pg.dsn))
    assert first.sync().ok
    first.close()

    wrong = "Wr0ng-Passw0rd"
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO orders VALUES (4480, 'Katherine Johnson', '99.00', '2024-03-09', '2024-03-09 09:00:00', 1, NULL, "
        "'Orbital mechanics tables')"
    )
    conn.commit()
    conn.close()
    kb = open_kb(write_config(tmp_path, pg.url(password=wrong)))
    report = {s.name: s for s in kb.sync().sources}

    error = report["pg_orders"].error
    assert error is not None and "password authentication failed" in error
    assert wrong not in error and pg.password not in error
    assert "postgresql://strongroom_app:***@" in error
    assert report["pg_orders"].deleted == 0
    assert kb.catalog.record("pg_orders", "4471") is not None  # indexed records untouched
    assert len(kb.catalog.documents("pg_orders")) == 4
    assert kb.search("punched cards", k=1, sources=["pg_orders"]).results[0].document_id == "pg_orders/4472"

    assert report["orders"].error is None
    assert (report["orders"].added, report["orders"].unchanged) == (1, 4)
    added = kb.catalog.record("orders", "4480")
    assert added is not None and added.fields is not None and added.fields["amount"] == Decimal("99.00")
    status = {s.name: s for s in kb.list_sources().sources}
    assert status["pg_orders"].last_error == error
