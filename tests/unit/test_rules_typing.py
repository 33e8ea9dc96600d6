"""The static type check of expressions, and what the rules file accepts for fields and ids."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from strongroom.server.rules import RulesError, load_rulebook
from strongroom.server.rules.typecheck import DOUBLE, INT, NULL, TIMESTAMP, Binding, check_types

ENV: dict[str, Binding] = {
    "n": INT,
    "x": DOUBLE,
    "d": TIMESTAMP,
    "q": {"total": DOUBLE | NULL, "dob": TIMESTAMP},
}


@pytest.mark.parametrize(
    "source",
    [
        "n * 2 + 1 > x",  # int and double compare
        "x * 1.5 - double(n) >= 0.0",
        "q.total == null || q.total + 1.0 > 2.0",  # nullable: guarded at run time
        "d.getFullYear() - q.dob.getFullYear() - (d.getMonth() < q.dob.getMonth() ? 1 : 0) >= 21",
        "days_between(q.dob, d) > 30 && d + days(n) > q.dob",
        "[1, 2].exists(i, i > n) && {'a': 1}['a'] == 1 && unknown.field - 1 > 0",  # dyn never errs
        "math.round(x * 100.0) / 100.0 > 1.0 && int(x) % 2 == 0",
        "n == 3.0 && x != 1 && q.total == null && d == date('2025-01-01') && [n] == [1]",  # equality
    ],
)
def test_well_typed_expressions_pass(source: str) -> None:
    assert check_types(source, ENV)[1] == []


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x - 1", "type error in `x - 1`: `-` is not defined for double and int: CEL does not mix"),
        ("q.total * n", "`*` is not defined for double and int"),
        (
            "(n > 1 ? 2 : 2.5) + 1",
            "`+` is not defined for double or int and int (no overload for double + int)",
        ),
        ("d > '2025-01-01'", "`>` is not defined for timestamp and string"),
        ("add_days(x, 3) > d", "type error in `x`: add_days() needs a date, got double"),
        ("n && true", "`&&` needs true or false, got int"),
        ("x.getFullYear() > 2000", "getFullYear() is a method of a date or timestamp, got double"),
        (
            "d == '2025-01-01'",
            "type error in `d == '2025-01-01'`: `==` compares timestamp with string, so it is always "
            "false: write the date as date('YYYY-MM-DD')",
        ),
        ("n != 'x'", "`!=` compares int with string, so it is always true: convert one side"),
        ("q.total == d", "`==` compares double with timestamp, so it is always false"),
    ],
)
def test_ill_typed_operations_name_the_operation_and_the_types(source: str, message: str) -> None:
    problems = check_types(source, ENV)[1]
    assert any(message in str(p) for p in problems), problems


def _load(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    load_rulebook(path, None, ["orders"])


def test_ids_take_hyphens_and_values_are_read_with_underscores(tmp_path: Path) -> None:
    _load(
        tmp_path,
        """
        rule_sets:
          cover:
            description: test
            parameters: {paid_until: date}
            values: {grace-days: "30"}
            rules:
              - {id: premium-paid-up, expression: "today <= add_days(paid_until, grace_days)",
                 pass_reason: ok, fail_reason: "lapsed"}
        answer_policies:
          forbidden: [{id: no-guarantees, pattern: guarantee, message: no}]
          required: [{id: fee-stated, when: refund, require_any: [fee, charge], message: say it}]
        """,
    )


BASE = """
rule_sets:
  cover:
    description: test
    parameters: {order_id: string}
    facts:
      order: {source: orders, key: "{order_id}", fields: {total: %s}}
    values: {%s}
    rules:
      - {id: ok, expression: "order.total > 0", pass_reason: a, fail_reason: b}
answer_policies:
  personal_data:
    patterns: [{id: %s, pattern: "x"}]
"""


@pytest.mark.parametrize(
    ("field", "values", "policy", "message"),
    [
        (
            "{type: number, lenient: true}",
            "",
            "staff-id",
            "`lenient` only applies to type boolean, not number",
        ),
        (
            "number",
            'grace-days: "30", grace_days: "31"',
            "staff-id",
            "value name 'grace_days' is already used",
        ),
        ("number", "", "email", "duplicate policy id 'email' (email, phone and card are built in)"),
    ],
)
def test_fields_names_and_policy_ids_are_checked(
    tmp_path: Path, field: str, values: str, policy: str, message: str
) -> None:
    with pytest.raises(RulesError) as err:
        _load(tmp_path, BASE % (field, values, policy))
    assert message in err.value.report()


def test_policy_citations_resolve_and_travel_with_the_violation(tmp_path: Path) -> None:
    from tests.rules_support import example_index

    settings, catalog = example_index(tmp_path / "acme")
    path = tmp_path / "rules.yaml"
    path.write_text(
        textwrap.dedent(
            """
            answer_policies:
              forbidden:
                - {id: no-promises, pattern: [promise, guarantee], message: no,
                   citation: "handbook/refund-policy.md#Purpose"}
              personal_data:
                patterns: [{id: bad-cite, pattern: "x", citation: "handbook/refund-policy.md#Nowhere"}]
            """
        )
    )
    sources = [s.name for s in settings.all_sources()]
    with pytest.raises(RulesError, match="no heading 'Nowhere'"):
        load_rulebook(path, catalog, sources)
    path.write_text(path.read_text().replace("#Nowhere", "#Exceptions"))
    violations = load_rulebook(path, catalog, sources).policies.check("We promise, and we guarantee.")
    assert [v.policy for v in violations] == ["no-promises", "no-promises"]
    citation = violations[0].citation
    assert citation is not None and citation["heading"] == "1. Purpose" and citation["chunk_id"]
