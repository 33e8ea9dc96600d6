"""The records connector and the shared record helpers: CSV, JSON and JSON Lines files on disk."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from strongroom.connectors import ConnectorError, Document
from strongroom.connectors.recordkit import (
    RecordShape,
    TitleTemplate,
    infer_type,
    key_id,
    parse_value,
    render_text,
)
from strongroom.connectors.records import RecordsConnector
from strongroom.connectors.registry import build_connector, configure
from strongroom.connectors.testing import collect

CUSTOMERS = """\
id,name,joined,last_seen,balance,vip,zip,notes
1,Ada Lovelace,2023-01-05,2024-03-01T10:15:00,120.50,true,02134,
2,Charles Babbage,2022-11-30,2024-02-28 08:00:00,-3,false,10001,"Prefers ""analytical"" engines,
writes long letters"
3,Grace Hopper,2021-06-15,2024-03-02T17:45:30+01:00,0,true,94105,Navy
"""


def make(tmp_path: Path, **options: Any) -> RecordsConnector:
    connector = configure(RecordsConnector, options, tmp_path)
    assert isinstance(connector, RecordsConnector)
    return connector


def by_id(documents: list[Document]) -> dict[str, Document]:
    return {d.id: d for d in documents}


def reasons(connector: RecordsConnector) -> dict[str, str]:
    return {s.id: s.reason for s in connector.skipped}


# --- CSV ---------------------------------------------------------------------------------------------


def test_csv_rows_become_typed_records(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    connector = make(tmp_path, path="customers.csv", key="id", title="{name} (#{id})")
    docs = by_id(collect(connector))

    assert sorted(docs) == ["1", "2", "3"]
    assert not connector.skipped
    ada = docs["1"]
    assert ada.title == "Ada Lovelace (#1)"
    assert ada.fields == {
        "id": 1,
        "name": "Ada Lovelace",
        "joined": date(2023, 1, 5),
        "last_seen": datetime(2024, 3, 1, 10, 15),  # the column mixes naive and offset times
        "balance": 120.5,
        "vip": True,
        "zip": "02134",  # leading zero: a code, kept as text
        "notes": None,  # empty cell
    }
    assert docs["3"].fields is not None
    assert docs["3"].fields["last_seen"] == datetime(2024, 3, 2, 16, 45, 30, tzinfo=UTC)
    assert docs["2"].fields is not None
    assert docs["2"].fields["balance"] == -3.0 and isinstance(docs["2"].fields["balance"], float)
    assert docs["2"].fields["notes"] == 'Prefers "analytical" engines,\nwrites long letters'
    assert ada.metadata == {"file": "customers.csv", "format": "csv"}
    assert ada.uri == (tmp_path / "customers.csv").resolve().as_uri()


def test_text_is_a_readable_rendering_of_the_columns(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    docs = by_id(collect(make(tmp_path, path="customers.csv", key="id", title="name")))
    assert docs["1"].text == (
        "# Ada Lovelace\n\n"
        "id: 1\nname: Ada Lovelace\njoined: 2023-01-05\nlast_seen: 2024-03-01 10:15:00\n"
        "balance: 120.5\nvip: true\nzip: 02134\n"
    )
    # A multi-line cell stays inside its column's entry.
    assert 'notes: Prefers "analytical" engines,\n  writes long letters\n' in docs["2"].text


def test_text_columns_limit_the_text_but_not_the_fields(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    docs = by_id(collect(make(tmp_path, path="customers.csv", key="id", text_columns=["name", "notes"])))
    assert docs["3"].text == "# customers 3\n\nname: Grace Hopper\nnotes: Navy\n"
    assert docs["3"].fields is not None and docs["3"].fields["zip"] == "94105"


def test_explicit_types_override_inference(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    connector = make(
        tmp_path,
        path="customers.csv",
        key="id",
        types={"balance": "decimal", "zip": "int", "id": "str", "joined": "datetime"},
    )
    docs = by_id(collect(connector))
    fields = docs["1"].fields
    assert fields is not None
    assert fields["balance"] == Decimal("120.50") and str(fields["balance"]) == "120.50"
    assert fields["zip"] == 2134
    assert fields["id"] == "1"
    assert fields["joined"] == datetime(2023, 1, 5)


def test_a_cell_that_does_not_fit_its_explicit_type_skips_the_row(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(
        "order_id,amount,placed\n10,12.00,2024-01-02\n11,twelve,2024-01-03\n12,7.5,someday\n",
        encoding="utf-8",
    )
    connector = make(
        tmp_path, path="orders.csv", key="order_id", types={"amount": "decimal", "placed": "date"}
    )
    assert [d.id for d in collect(connector)] == ["10"]
    assert reasons(connector) == {
        "orders.csv:line 3": "orders.csv line 3: column 'amount': 'twelve' is not a number",
        "orders.csv:line 4": "orders.csv line 4: column 'placed': 'someday' is not a date (YYYY-MM-DD)",
    }


def test_malformed_csv_rows_are_skipped_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text(
        "id,name\n1,Ann\n2,Bob,extra\n\n,Nobody\n4,Dee\n4,Dee again\n5,Eve\n", encoding="utf-8"
    )
    connector = make(tmp_path, path="people.csv", key="id")
    docs = collect(connector)
    assert [d.id for d in docs] == ["1", "5"]
    assert reasons(connector) == {
        "people.csv:line 3": "people.csv line 3: expected 2 columns, found 3",
        "people.csv:line 5": "people.csv line 5: empty or NULL key 'id'",
        # Neither duplicate wins; the id is skipped, so its last indexed version is kept.
        "4": "people.csv: key 'id' = '4' repeats (line 6, line 7); all skipped",
    }


def test_csv_without_the_key_column_fails_a_single_file_source(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_text("name\nAnn\n", encoding="utf-8")
    with pytest.raises(ConnectorError, match=r"people.csv: no column 'id' \(the key\) in the header: name"):
        collect(make(tmp_path, path="people.csv", key="id"))


def test_tsv_delimiter_bom_and_other_encodings(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("\ufeffid\tcity\n1\tKöln\n", encoding="utf-8")
    assert collect(make(tmp_path, path="a.tsv", key="id"))[0].fields == {"id": 1, "city": "Köln"}
    (tmp_path / "b.csv").write_bytes("id;city\n1;Malmö\n".encode("latin-1"))
    docs = collect(make(tmp_path, path="b.csv", key="id", delimiter=";", encoding="latin-1"))
    assert docs[0].fields == {"id": 1, "city": "Malmö"}
    with pytest.raises(ConnectorError, match=r"b.csv: not utf-8 text"):
        collect(make(tmp_path, path="b.csv", key="id", delimiter=";"))


# --- JSON and JSON Lines --------------------------------------------------------------------------------


def test_json_array_of_objects(tmp_path: Path) -> None:
    items = [
        {"sku": "A-1", "price": 12.50, "stock": 3, "active": True, "tags": ["red"], "released": "2024-02-01"},
        {"sku": "B-2", "price": 7, "stock": None, "active": False, "tags": [], "released": "2023-12-24"},
        ["not", "an", "object"],
        {"price": 1.0},
        {"sku": "C-3", "price": "n/a"},
    ]
    (tmp_path / "products.json").write_text(json.dumps(items), encoding="utf-8")
    connector = make(
        tmp_path,
        path="products.json",
        key="sku",
        title="Product {sku}",
        types={"price": "decimal", "released": "date"},
    )
    docs = by_id(collect(connector))
    assert sorted(docs) == ["A-1", "B-2"]
    assert docs["A-1"].fields == {
        "sku": "A-1",
        "price": Decimal("12.5"),
        "stock": 3,
        "active": True,
        "tags": ["red"],
        "released": date(2024, 2, 1),
    }
    assert docs["B-2"].fields is not None and docs["B-2"].fields["price"] == Decimal(7)
    assert docs["A-1"].title == "Product A-1"
    assert 'tags: ["red"]' in docs["A-1"].text
    assert docs["A-1"].metadata["format"] == "json"
    assert reasons(connector) == {
        "products.json:item 3": "products.json item 3: expected an object, found a JSON array",
        "products.json:item 4": "products.json item 4: no 'sku' value (the key column)",
        "products.json:item 5": "products.json item 5: column 'price': 'n/a' is not a number",
    }


def test_json_decimal_type_keeps_the_digits_written(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('[{"id": 1, "price": 19.90, "ratio": 0.1}]', encoding="utf-8")
    fields = collect(make(tmp_path, path="p.json", key="id", types={"price": "decimal"}))[0].fields
    assert fields is not None
    assert str(fields["price"]) == "19.90"
    assert fields["ratio"] == 0.1 and isinstance(fields["ratio"], float)


def test_json_that_is_not_an_array_fails_a_single_file_source(tmp_path: Path) -> None:
    (tmp_path / "p.json").write_text('{"id": 1}', encoding="utf-8")
    with pytest.raises(ConnectorError, match="expected an array of objects, found a JSON object"):
        collect(make(tmp_path, path="p.json", key="id"))
    (tmp_path / "p.json").write_text('[{"id": 1},', encoding="utf-8")
    with pytest.raises(ConnectorError, match="invalid JSON at line 1"):
        collect(make(tmp_path, path="p.json", key="id"))


def test_json_lines_skip_bad_lines_with_their_number(tmp_path: Path) -> None:
    (tmp_path / "events.jsonl").write_text(
        '{"id": 1, "kind": "login", "at": "2024-03-01T09:00:00Z"}\n'
        "\n"
        '{"id": 2, "kind": "logout"\n'
        '"just a string"\n'
        '{"id": 3, "kind": "login", "at": "2024-03-01T10:00:00Z"}\n',
        encoding="utf-8",
    )
    connector = make(tmp_path, path="events.jsonl", key="id", title="{kind} #{id}", types={"at": "datetime"})
    docs = by_id(collect(connector))
    assert sorted(docs) == ["1", "3"]
    assert docs["3"].title == "login #3"
    assert docs["3"].fields is not None and docs["3"].fields["at"] == datetime(2024, 3, 1, 10, tzinfo=UTC)
    assert docs["3"].metadata["format"] == "jsonl"
    skipped = reasons(connector)
    assert skipped["events.jsonl:line 3"].startswith("events.jsonl line 3: invalid JSON:")
    assert skipped["events.jsonl:line 4"] == "events.jsonl line 4: expected an object, found a JSON string"


# --- folders, failures, registry --------------------------------------------------------------------------


def test_a_folder_prefixes_ids_with_the_file_path(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "archive").mkdir(parents=True)
    (data / "customers.csv").write_text("id,name\n42,Ann\n", encoding="utf-8")
    (data / "archive" / "customers.jsonl").write_text('{"id": 42, "name": "Old Ann"}\n', encoding="utf-8")
    (data / "notes.txt").write_text("not a record file", encoding="utf-8")
    (data / "skip.csv").write_text("id\n1\n", encoding="utf-8")
    connector = make(tmp_path, path="data", key="id", exclude=["skip.csv"])
    docs = by_id(collect(connector))
    assert sorted(docs) == ["archive/customers.jsonl:42", "customers.csv:42"]
    assert docs["customers.csv:42"].title == "customers 42"
    assert docs["archive/customers.jsonl:42"].metadata == {
        "file": "archive/customers.jsonl",
        "format": "jsonl",
    }
    assert connector.state == {
        "files": {
            "archive/customers.jsonl": ["archive/customers.jsonl:42"],
            "customers.csv": ["customers.csv:42"],
        }
    }

    only_csv = make(tmp_path, path="data", key="id", include=["*.csv"], exclude=["skip.csv"])
    assert [d.id for d in collect(only_csv)] == ["customers.csv:42"]


def test_a_broken_file_in_a_folder_is_skipped_and_its_last_records_kept(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("id,name\n1,Ann\n2,Bob\n", encoding="utf-8")
    (data / "b.json").write_text('[{"id": 1, "name": "Cy"}]', encoding="utf-8")
    first = make(tmp_path, path="data", key="id")
    assert len(collect(first)) == 3

    (data / "a.csv").write_bytes(b"id,name\n1,\xff\xfe\n")  # no longer UTF-8
    second = make(tmp_path, path="data", key="id")
    second.state = json.loads(json.dumps(first.state))
    assert [d.id for d in collect(second)] == ["b.json:1"]
    assert reasons(second) == {"a.csv": "a.csv: not utf-8 text (byte 10)"}
    assert second.kept == {"a.csv:1", "a.csv:2"}  # the sync keeps their indexed versions
    assert second.state["files"]["a.csv"] == ["a.csv:1", "a.csv:2"]  # and keeps them next time too


def test_a_missing_path_is_a_source_failure(tmp_path: Path) -> None:
    with pytest.raises(ConnectorError, match="no such file or folder"):
        collect(make(tmp_path, path="missing.csv", key="id"))
    (tmp_path / "x.xml").write_text("<a/>", encoding="utf-8")
    with pytest.raises(ConnectorError, match=r"unsupported file type '\.xml'"):
        collect(make(tmp_path, path="x.xml", key="id"))


def test_registered_and_configured_like_any_source(tmp_path: Path) -> None:
    (tmp_path / "p.csv").write_text("id\n1\n", encoding="utf-8")
    connector = build_connector("records", {"path": "p.csv", "key": "id"}, tmp_path)
    assert isinstance(connector, RecordsConnector)
    assert connector.config.path == (tmp_path / "p.csv").resolve()
    with pytest.raises(ConnectorError, match="title: Value error, bad title template"):
        build_connector("records", {"path": "p.csv", "key": "id", "title": "Order {"}, tmp_path)
    with pytest.raises(ConnectorError, match=r"types\.id: Input should be"):
        build_connector("records", {"path": "p.csv", "key": "id", "types": {"id": "money"}}, tmp_path)


# --- the shared record helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        (["1", "-2", "", "30"], "int"),
        (["1", "2.5", "1e3"], "float"),
        (["007", "8"], "str"),  # leading zeros: codes, not numbers
        (["2024-01-01", "2023-12-31"], "date"),
        (["2024-01-01T10:00", "2024-01-01 11:00:00+02:00"], "datetime"),
        (["2024-01-01", "2024-01-01T10:00"], "str"),  # dates mixed with date-times
        (["2024-02-30"], "str"),  # not a real day
        (["true", "FALSE", ""], "bool"),
        (["yes", "no"], "str"),
        (["", " "], "str"),
        (["nan", "inf"], "str"),
    ],
)
def test_type_inference_is_conservative(cells: list[str], expected: str) -> None:
    assert infer_type(cells) == expected


def test_parse_value_is_strict() -> None:
    assert parse_value(" 42 ", "int") == 42
    assert parse_value("0012", "int") == 12
    assert parse_value("1.50", "decimal") == Decimal("1.50")
    assert parse_value("Yes", "bool") is True
    assert parse_value("2024-03-01", "datetime") == datetime(2024, 3, 1)
    assert parse_value("2024-03-01T10:00:00Z", "datetime") == datetime(2024, 3, 1, 10, tzinfo=UTC)
    for text, kind in [
        ("1.0", "int"),
        ("1_000", "int"),
        ("NaN", "float"),
        ("maybe", "bool"),
        ("01/02/2024", "date"),
    ]:
        with pytest.raises(ValueError):
            parse_value(text, kind)  # type: ignore[arg-type]


def test_key_ids() -> None:
    assert key_id(42) == "42"
    assert key_id(42.0) == "42"
    assert key_id(Decimal("7.10")) == "7.10"
    assert key_id(date(2024, 1, 2)) == "2024-01-02"
    assert key_id(" A-1 ") == "A-1"
    assert key_id(None) is None
    assert key_id("  ") is None
    assert key_id(b"\x00") is None


def test_title_templates() -> None:
    fields = {"id": 7, "name": "Ann", "amount": Decimal("3.5"), "note": None}
    assert TitleTemplate(None, "orders").render(fields, "7") == "orders 7"
    assert TitleTemplate("name", "orders").render(fields, "7") == "Ann"
    assert TitleTemplate("Order {id}: {name}", "orders").render(fields, "7") == "Order 7: Ann"
    assert TitleTemplate("{amount:.2f} EUR {{net}}", "x").render(fields, "7") == "3.50 EUR {net}"
    assert TitleTemplate("Order {id} {note}", "x").render(fields, "7") == "Order 7"
    assert TitleTemplate("{missing}", "orders").render(fields, "7") == "orders 7"  # blank: the default
    assert TitleTemplate("Order {id} by {name}", "x").columns == ("id", "name")
    for bad in ["Order {", "Order {}", "{0}", "{a:{b}}"]:
        with pytest.raises(ValueError, match="title"):
            TitleTemplate(bad, "x")


def test_render_text_and_record_shape() -> None:
    shape = RecordShape("id", TitleTemplate("Order {id}", "orders"), text_columns=None)
    when = datetime(2024, 3, 1, 9, 30)
    document = shape.document(
        {"id": 9, "paid": False, "when": when, "total": Decimal("1E+2"), "blob": b"xyz", "note": ""}
    )
    assert document.id == "9"
    assert (
        document.text
        == "# Order 9\n\nid: 9\npaid: false\nwhen: 2024-03-01 09:30:00\ntotal: 100\nblob: <3 bytes>\n"
    )
    assert document.fields == {
        "id": 9,
        "paid": False,
        "when": when,
        "total": Decimal("1E+2"),
        "blob": b"xyz",
        "note": "",
    }
    assert render_text("T", {"a": 1, "b": 2}, ["b", "zzz"]) == "# T\n\nb: 2\n"
