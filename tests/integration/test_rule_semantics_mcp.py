"""A second company's rule sets, written in plain CEL, through a real MCP client.

Harbor Mutual (a motor insurer) screens quotes: standard CEL as written (a calendar-age rule
with integer literals), cells typed lazily by declared type, required and nullable columns,
strict and lenient booleans, ids with `-`, `first_fail` screening, records looked up only by
the rules that run, output values that fail on their own, and arguments validated strictly
against the advertised schema.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import jsonschema
import pytest
from mcp import Client
from mcp.server import MCPServer
from pydantic import ValidationError

from strongroom.server.app import build_app
from strongroom.server.embedder import Embedder
from strongroom.server.errors import InvalidArgument
from strongroom.server.guard.access import Caller
from strongroom.server.mcp_app.app import build_server
from strongroom.server.rules import load_rulebook
from strongroom.server.rules.params import INT64_MAX, INTEGER_NOTE, arguments_model
from strongroom.server.settings import load_settings
from tests.integration.mcp_helpers import error_text, structured
from tests.rules_support import copy_example, index_without_vectors

pytestmark = pytest.mark.model

QUOTES_CSV = """quote_id,driver_dob,claims_5y,excess,licence_held_years,garaged,telematics_box
Q1,1990-05-01,0,,ten,true,no
Q2,2006-03-21,n/a,250.00,1,true,no
Q3,1990-05-01,n/a,250.00,10,true,no
Q4,,0,250.00,10,true,no
Q5,1990-05-01,1,250.00,10,yes,no
Q6,1990-05-01,1,250.00,10,false,yes
Q7,2004-03-20,3,2500.00,3,true,no
"""

AGE = (
    "cover_start.getFullYear() - quote.driver_dob.getFullYear() - ((cover_start.getMonth() < "
    "quote.driver_dob.getMonth() || (cover_start.getMonth() == quote.driver_dob.getMonth() && "
    "cover_start.getDate() < quote.driver_dob.getDate())) ? 1 : 0)"
)

RULES = f"""
version: 1
timezone: Europe/London
rule_sets:
  motor_quote:
    description: Screen a motor insurance quote; decline on the first failed check.
    parameters:
      quote_id: {{type: string, pattern: "^Q[0-9]+$"}}
      cover_start: {{type: date, description: First day of cover.}}
      named_drivers: {{type: integer, min: 0, max: 4, default: 0}}
      telematics: {{type: boolean, default: false}}
      premium: {{type: number, min: 0, default: 0}}
      channel: {{type: enum, values: [web, phone], default: web}}
      annual_mileage: {{type: integer, min: 0, default: 0}}
    facts:
      quote:
        source: quotes
        key: "{{quote_id}}"
        fields:
          driver_dob: {{type: date, required: true}}
          claims_5y: integer
          excess: number
          licence_held_years: integer
          garaged: boolean
          telematics_box: {{type: boolean, lenient: true}}
    values:
      driver-age: "{AGE}"
      excess-total: "quote.excess == null ? 250.0 : quote.excess + 250.0"
    combine: first_fail
    outcomes: {{pass: accepted, fail: declined}}
    rules:
      - id: driver-age-21
        expression: driver_age >= 21
        pass_reason: "The driver is {{driver_age}}."
        fail_reason: "The driver is {{driver_age}}: under 21."
      - id: claims-history
        expression: quote.claims_5y <= 2 && named_drivers <= 4
        outcome: refer
        pass_reason: "{{quote.claims_5y}} claims in five years."
        fail_reason: "{{quote.claims_5y}} claims in five years: refer to an underwriter."
      - id: excess-cap
        expression: excess_total <= 1000.0
        pass_reason: "Total excess {{excess_total}}."
        fail_reason: "Total excess {{excess_total}} is over 1000."
      - id: kept-safe
        expression: quote.garaged || quote.telematics_box || telematics
        pass_reason: Garaged or tracked.
        fail_reason: Neither garaged nor tracked.
  quick_accept:
    description: The legacy spelling of first_pass.
    parameters: {{quote_id: string}}
    facts:
      quote: {{source: quotes, key: "{{quote_id}}", fields: {{claims_5y: integer}}}}
    combine: first
    outcomes: {{pass: accepted, fail: manual}}
    rules:
      - {{id: no-claims, expression: quote.claims_5y == 0, pass_reason: none, fail_reason: some}}
      - {{id: many-claims, expression: quote.claims_5y > 2, pass_reason: many, fail_reason: few}}
  renewal_screen:
    description: Screen a renewal against the previous quote; the first failed check decides.
    parameters:
      quote_id: string
      previous_id: string
      years_insured: {{type: integer, min: 0}}
    facts:
      quote: {{source: quotes, key: "{{quote_id}}", fields: {{licence_held_years: integer}}}}
      previous:
        source: quotes
        key: "{{previous_id}}"
        fields: {{claims_5y: integer}}
        not_found: "There is no previous quote {{previous_id}}."
    values:
      licence-years: quote.licence_held_years
      previous-claims: previous.claims_5y
    combine: first_fail
    outcomes: {{pass: renew, fail: review}}
    rules:
      - id: insured-a-year
        expression: years_insured >= 1
        pass_reason: "Insured for {{years_insured}} years."
        fail_reason: Insured for less than a year.
      - id: previous-claim-free
        expression: previous.claims_5y == 0
        pass_reason: No claims on the previous quote.
        fail_reason: "{{previous.claims_5y}} claims on the previous quote."
answer_policies:
  forbidden:
    - id: no-guarantees
      pattern: ["\\\\bguarantee[ds]?\\\\b", "\\\\bpromise[ds]?\\\\b"]
      message: Do not promise outcomes.
  personal_data:
    detect: [email]
    patterns:
      - {{id: policy-number, pattern: "\\\\bHM-[0-9]{{6}}\\\\b", message: Policy numbers are personal data.}}
"""


@pytest.fixture(scope="module")
def harbor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("harbor")
    config = copy_example(root)
    (root / "data" / "quotes.csv").write_text(QUOTES_CSV)
    (root / "harbor.yaml").write_text(textwrap.dedent(RULES))
    text = config.read_text().replace('file = "rules.yaml"', 'file = "harbor.yaml"')
    text += (
        '\n[[sources]]\nname = "quotes"\nconnector = "records"\npath = "data/quotes.csv"\n'
        'key = "quote_id"\ntypes = { driver_dob = "str", claims_5y = "str", excess = "str", '
        'licence_held_years = "str", garaged = "str", telematics_box = "str" }\n'
    )
    config.write_text(text)
    index_without_vectors(load_settings(config)).close()
    yield config


def make_server(config: Path, embedder: Embedder) -> MCPServer[Any]:
    return build_server(build_app(load_settings(config), embedder=embedder), Caller("local", "stdio"))


def call_all(config: Path, embedder: Embedder, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Results of the calls, in order, over one in-process MCP session."""
    server = make_server(config, embedder)
    out: list[Any] = []

    async def session() -> None:
        async with Client(server) as client:
            for name, arguments in calls:
                out.append(await client.call_tool(name, arguments))

    anyio.run(session)
    return out


def quote(quote_id: str, extra: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    return ("motor_quote", {"quote_id": quote_id, "cover_start": "2025-03-20", **(extra or {})})


def test_plain_cel_typed_lazily_and_screened_first_fail(harbor: Path, embedder: Embedder) -> None:
    q1, q2, q3, q4, q5, q6, q7, legacy = call_all(
        harbor,
        embedder,
        [*(quote(f"Q{i}") for i in range(1, 8)), ("quick_accept", {"quote_id": "Q1"})],
    )
    # Standard CEL as written: integer literals stay integers; an unread bad cell
    # (licence_held_years "ten") and an empty nullable one (excess) do not matter.
    accepted = structured(q1)
    assert accepted["decision"] == "accepted" and accepted["decided_by"] is None
    assert accepted["summary"] == "accepted: all 4 applicable rules passed."
    assert {v["name"]: v["value"] for v in accepted["values"]} == {"driver-age": 34, "excess-total": 250}
    # first_fail: the first failed check decides and reports itself as failed; later rules
    # (and their bad cells: claims_5y "n/a") are not evaluated.
    young = structured(q2)
    assert young["decision"] == "declined" and young["decided_by"] == "driver-age-21"
    assert young["summary"] == "declined: The driver is 18: under 21."
    assert [r["passed"] for r in young["rules"]] == [False, None, None, None]
    assert young["rules"][1]["reason"] == "not reached: an earlier rule decided"
    # A bad cell a running rule reads is an error naming the rule and the column.
    assert q3.is_error
    assert "rule 'claims-history' could not be evaluated: quote.claims_5y" in error_text(q3)
    assert "declared integer" in error_text(q3) and "'n/a'" in error_text(q3)
    # A required column left empty names the rule (through the value it reads) and the column.
    assert q4.is_error
    assert "value 'driver-age' (for rule 'driver-age-21')" in error_text(q4)
    assert "quote.driver_dob is required but empty in quotes record 'Q4'" in error_text(q4)
    # Booleans are strict unless declared lenient.
    assert q5.is_error and "quote.garaged" in error_text(q5) and "lenient: true" in error_text(q5)
    assert structured(q6)["decision"] == "accepted"  # telematics_box "yes", declared lenient
    # A failing rule with its own outcome decides with it; the age rule counts birthdays exactly.
    referred = structured(q7)
    assert referred["decision"] == "refer" and referred["rules"][0]["reason"] == "The driver is 21."
    # The old `first` still means first_pass.
    assert structured(legacy)["decision"] == "accepted" and structured(legacy)["decided_by"] == "no-claims"


def renewal(quote_id: str, previous_id: str, years: int) -> tuple[str, dict[str, Any]]:
    return ("renewal_screen", {"quote_id": quote_id, "previous_id": previous_id, "years_insured": years})


def test_a_record_is_looked_up_only_when_a_running_rule_needs_it(harbor: Path, embedder: Embedder) -> None:
    early, late = call_all(harbor, embedder, [renewal("Q2", "Q404", 0), renewal("Q2", "Q404", 3)])
    # first_fail decides on the first rule: the missing previous quote only a later rule reads
    # does not turn the denial into not_found, and is not looked up.
    review = structured(early)
    assert review["decision"] == "review" and review["decided_by"] == "insured-a-year"
    assert review["summary"] == "review: Insured for less than a year."
    assert "previous" not in review["facts"] and "previous_id" not in review["facts"]
    # A rule that runs and needs the missing record makes the case not_found.
    assert structured(late)["decision"] == "not_found"
    assert structured(late)["summary"] == "not_found: There is no previous quote Q404."


def test_an_output_value_that_fails_carries_its_error(harbor: Path, embedder: Embedder) -> None:
    clean, bad_cell, missing = call_all(
        harbor, embedder, [renewal("Q2", "Q1", 3), renewal("Q1", "Q1", 3), renewal("Q1", "Q404", 0)]
    )

    def values(result: Any) -> dict[str, tuple[Any, str | None]]:
        return {v["name"]: (v["value"], v["error"]) for v in structured(result)["values"]}

    assert structured(clean)["decision"] == "renew"
    assert values(clean) == {"licence-years": (1, None), "previous-claims": (0, None)}
    # The output values (no rule reads them) are computed after the decision; one that cannot
    # be (a bad cell only it reads, a missing record) is null with its error, and the call stands.
    assert not bad_cell.is_error and structured(bad_cell)["decision"] == "renew"
    value, error = values(bad_cell)["licence-years"]
    assert value is None and error is not None
    assert "value 'licence-years' could not be evaluated" in error
    assert "quote.licence_held_years in quotes record 'Q1' is declared integer" in error
    assert structured(missing)["decision"] == "review"
    assert values(missing)["previous-claims"] == (
        None,
        "renewal_screen: value 'previous-claims' could not be evaluated: There is no previous quote Q404.",
    )


BAD_ARGUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"telematics": "yes"}, "telematics"),
    ({"telematics": "on"}, "telematics"),
    ({"telematics": 1}, "telematics"),
    ({"telematics": "true"}, "telematics"),
    ({"named_drivers": "2"}, "named_drivers"),
    ({"named_drivers": 1.0}, "named_drivers"),
    ({"named_drivers": 9}, "named_drivers"),
    ({"annual_mileage": 1.0}, "annual_mileage"),
    ({"annual_mileage": 2**70}, "annual_mileage"),  # CEL's int is 64-bit
    ({"cover_start": "2025-03-20T00:00:00"}, "cover_start"),
    ({"cover_start": 20250320}, "cover_start"),
    ({"cover_start": "2025-02-30"}, "cover_start"),
    ({"premium": "12.5"}, "premium"),
    ({"premium": True}, "premium"),
    ({"channel": "fax"}, "channel"),
    ({"quote_id": 1}, "quote_id"),
    ({"surprise": 1}, "surprise"),
]


def test_arguments_are_checked_strictly_as_declared(harbor: Path, embedder: Embedder) -> None:
    results = call_all(harbor, embedder, [quote("Q1", bad) for bad, _ in BAD_ARGUMENTS])
    for (bad, name), result in zip(BAD_ARGUMENTS, results, strict=True):
        assert result.is_error, bad
        message = error_text(result)
        assert f"'{name}'" in message, message
        assert "pydantic" not in message and "http" not in message and "\n" not in message, message
    assert "unknown argument 'surprise'" in error_text(results[-1])
    too_big = results[BAD_ARGUMENTS.index(({"annual_mileage": 2**70}, "annual_mileage"))]
    assert f"must be at most {INT64_MAX} (CEL integers are 64-bit)" in error_text(too_big)


def test_numbers_are_finite_also_from_callers_that_can_send_nan(harbor: Path) -> None:
    """JSON has no NaN or Infinity (the MCP client sends them as null), but a Python caller can
    pass them, and `rules run premium=nan` converts the text: both are refused by name."""
    settings = load_settings(harbor)
    assert settings.rules.file is not None
    book = load_rulebook(
        settings.resolve(settings.rules.file), None, [s.name for s in settings.all_sources()]
    )
    motor = book.rule_sets["motor_quote"]
    base = {"quote_id": "Q1", "cover_start": "2025-03-20"}
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(InvalidArgument, match=r"parameter 'premium' must be a finite number"):
            motor.check_arguments({**base, "premium": bad})
    with pytest.raises(ValidationError, match="finite number"):
        arguments_model("motor_quote", motor.parameters).model_validate({**base, "premium": "nan"})


CANDIDATES: list[Any] = [
    None, True, False, 0, 1, 3, -1, 1.0, 1.5, 9, 2**70, "", "yes", "true", "2", "Q1", "x1", "web",
    "fax", "2025-03-20", "2025-03-20T00:00:00", 20250320, [], {},
]  # fmt: skip

# JSON Schema compares numbers by value, so its "integer" takes 1.0 and no schema can refuse it
# (a validator that did would not be one). The tool goes by the JSON text the client sent, as
# each integer parameter's description says: 1.0 is a number, 1 an integer. This validator
# types a value as the client's JSON text does (a Python float is written 1.0); every other
# keyword, the 64-bit range included, it reads as JSON Schema says.
JsonTextValidator = jsonschema.validators.extend(
    jsonschema.Draft202012Validator,
    type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
    ),
)


def test_the_advertised_schema_and_the_accepted_values_agree(harbor: Path, embedder: Embedder) -> None:
    server = make_server(harbor, embedder)
    schemas: dict[str, Any] = {}

    async def list_tools() -> None:
        async with Client(server) as client:
            for tool in (await client.list_tools()).tools:
                schemas[tool.name] = tool.input_schema

    anyio.run(list_tools)
    schema = schemas["motor_quote"]
    assert schema["additionalProperties"] is False
    assert schema["properties"]["cover_start"]["format"] == "date"
    mileage = schema["properties"]["annual_mileage"]
    assert mileage["type"] == "integer" and mileage["maximum"] == INT64_MAX
    assert mileage["description"] == INTEGER_NOTE  # "written without a decimal point (3, not 3.0)"
    base = {"quote_id": "Q1", "cover_start": "2025-03-20"}
    calls, expected = [], []
    checker = JsonTextValidator(schema, format_checker=jsonschema.FormatChecker())
    for name in schema["properties"]:
        for value in CANDIDATES:
            arguments = {**base, name: value}
            calls.append(("motor_quote", arguments))
            expected.append((name, value, checker.is_valid(arguments)))
    results = call_all(harbor, embedder, calls)
    for (name, value, valid), result in zip(expected, results, strict=True):
        if not valid:  # every value the schema rejects, the tool rejects, naming the parameter
            assert result.is_error and f"'{name}'" in error_text(result), (name, value)
        elif not result.is_error:
            continue
        else:  # what the schema allows may still fail as a case (no quote Q1x), never as an argument
            assert f"parameter '{name}'" not in error_text(result), (name, value, error_text(result))


def test_policies_with_several_patterns_and_custom_personal_data(harbor: Path, embedder: Embedder) -> None:
    (result,) = call_all(
        harbor,
        embedder,
        [("check_answer", {"draft": "We promise cover. Your policy HM-123456 is fine.", "citations": []})],
    )
    violations = {v["policy"]: v for v in structured(result)["violations"]}
    assert set(violations) == {"no-guarantees", "policy-number"}
    assert violations["policy-number"]["excerpt"] == "*****3456"
    assert violations["policy-number"]["message"] == "Policy numbers are personal data."
