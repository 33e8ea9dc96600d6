"""A broken rules file is reported at load, naming the file, line, rule set, rule and problem."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from strongroom.server.rules import RuleBook, RulesError, load_rulebook
from strongroom.server.rules.service import Rules
from strongroom.server.settings import Settings
from strongroom.server.store.catalog import Catalog
from tests.rules_support import example_index


@pytest.fixture(scope="module")
def acme(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Catalog]:
    return example_index(tmp_path_factory.mktemp("acme"))


GOOD = """\
rule_sets:
  refunds:
    description: Decide refunds.
    parameters:
      order_id: {type: string, pattern: "^[0-9]+$"}
      when: {type: date, required: false}
    facts:
      order: {source: orders, key: "{order_id}"}
    rules:
      - id: recent
        expression: days_since(order.order_date) <= 30
        pass_reason: "Bought {days_since(order.order_date)} days ago."
        fail_reason: Too old.
        citation: {document: handbook/refund-policy.md, heading: Return windows}
"""


def load(acme: tuple[Settings, Catalog], tmp_path: Path, text: str) -> RuleBook:
    settings, catalog = acme
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text))
    return load_rulebook(path, catalog, [s.name for s in settings.all_sources()])


def problems(acme: tuple[Settings, Catalog], tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RulesError) as err:
        load(acme, tmp_path, text)
    return [str(p) for p in err.value.problems]


def test_the_example_rules_file_compiles(acme: tuple[Settings, Catalog]) -> None:
    settings, catalog = acme
    assert settings.rules.file is not None
    book = load_rulebook(
        settings.resolve(settings.rules.file), catalog, [s.name for s in settings.all_sources()]
    )
    assert set(book.rule_sets) == {"refund_eligibility", "warranty_claim", "shipping_charge"}
    assert book.rule_count == 12 and book.warnings == ()
    assert book.policies.count == 5


def test_a_good_file_compiles(acme: tuple[Settings, Catalog], tmp_path: Path) -> None:
    book = load(acme, tmp_path, GOOD)
    refunds = book.rule_sets["refunds"]
    assert [p.name for p in refunds.parameters] == ["order_id", "when"]
    assert refunds.rules[0].reads.fields_of("order") == {"order_date"}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        # a CEL syntax error, on the line of the expression
        (
            ("expression: days_since(order.order_date) <= 30", "expression: days_since(order.order_date) <="),
            "rules.yaml:11: rule set 'refunds', rule 'recent', expression: syntax error at column",
        ),
        # an unknown name, with a suggestion
        (
            (
                "expression: days_since(order.order_date) <= 30",
                "expression: days_since(ordr.order_date) <= 30",
            ),
            "unknown name 'ordr' (known here: now, order, order_id, today, when); did you mean 'order'?",
        ),
        # a field that no record of the source has
        (
            (
                "expression: days_since(order.order_date) <= 30",
                "expression: days_since(order.order_dte) <= 30",
            ),
            "rules read order.order_dte, but no record of source 'orders' has a field 'order_dte'",
        ),
        # an unknown function
        (
            (
                "expression: days_since(order.order_date) <= 30",
                "expression: days_sinse(order.order_date) <= 30",
            ),
            "unknown function 'days_sinse'; did you mean 'days_since'?",
        ),
        # a citation to a document that is not indexed
        (
            ("document: handbook/refund-policy.md,", "document: handbook/refunds.md,"),
            "citation: no indexed document 'handbook/refunds.md'",
        ),
        # a heading that is not in the document
        (
            ("heading: Return windows", "heading: Returns on Mars"),
            "citation: no heading 'Returns on Mars' in handbook/refund-policy.md (its headings: 1. Purpose; 2. Return",
        ),
        # a parameter type that does not exist
        (
            ("order_id: {type: string,", "order_id: {type: money,"),
            "rules.yaml:5: rule set 'refunds', parameters.order_id.type: Input should be 'string', 'integer'",
        ),
        # a default that does not fit the type
        (
            ("when: {type: date, required: false}", "when: {type: date, default: soon}"),
            "parameter when: default 'soon' does not fit type date",
        ),
        # an unknown source
        (
            ('source: orders, key: "{order_id}"', 'source: ordres, key: "{order_id}"'),
            "fact order: unknown source 'ordres' (configured: handbook, orders, customers); did you mean 'orders'?",
        ),
        # a key template that YAML read as a mapping
        (
            ('key: "{order_id}"', "key: {order_id}"),
            'put text with {placeholders} in quotes, e.g. "{order_id}"',
        ),
        # a key that refers to nothing
        (
            ('key: "{order_id}"', 'key: "{order_number}"'),
            "the key refers to 'order_number', which is not a parameter or an earlier fact",
        ),
        # a duplicate key
        (
            ("  refunds:\n", "  refunds:\n    title: A\n    title: B\n"),
            "duplicate key 'title' (the first is on line 3)",
        ),
        # a rule set named like a built-in tool
        (("  refunds:\n", "  search:\n"), "rule set 'search': 'search' is the name of a built-in tool"),
        # outcome without combine: first
        (
            ("      - id: recent\n", "      - id: recent\n        outcome: maybe\n"),
            "`outcome` only applies with `combine: first_pass` or `first_fail`",
        ),
        # an unknown key
        (("      - id: recent\n", "      - id: recent\n        expresion: true\n"), "expresion: unknown key"),
        # invalid YAML
        (("    rules:\n", "    rules: [\n"), "invalid YAML"),
    ],
    ids=lambda v: v[1][:40] if isinstance(v, tuple) else str(v)[:40],
)
def test_problems_name_file_rule_and_cause(
    acme: tuple[Settings, Catalog], tmp_path: Path, change: tuple[str, str], expected: str
) -> None:
    old, new = change
    assert old in GOOD
    found = problems(acme, tmp_path, GOOD.replace(old, new, 1))
    assert any(expected in p for p in found), found
    assert all(p.startswith(str(tmp_path / "rules.yaml")) for p in found)


def test_every_problem_is_reported_at_once(acme: tuple[Settings, Catalog], tmp_path: Path) -> None:
    text = (
        GOOD.replace("<= 30", "<=", 1)
        .replace("source: orders", "source: nowhere")
        .replace("heading: Return windows", "heading: Nope")
    )
    text += textwrap.dedent(
        """\
        answer_policies:
          forbidden:
            - {id: bad, pattern: "([unclosed", message: m}
        """
    )
    found = problems(acme, tmp_path, text)
    assert len(found) == 4, found
    assert any("forbidden policy 'bad'" in p and "not a valid regular expression" in p for p in found)


def test_the_one_line_summary_for_serve(acme: tuple[Settings, Catalog], tmp_path: Path) -> None:
    with pytest.raises(RulesError) as err:
        load(acme, tmp_path, GOOD.replace("<= 30", "<=").replace("source: orders", "source: nowhere"))
    line = str(err.value)
    assert "\n" not in line and "and 1 more problem" in line and "strongroom rules check" in line


def test_a_reload_picks_up_changes_and_keeps_the_old_rules_when_broken(
    acme: tuple[Settings, Catalog], tmp_path: Path
) -> None:
    settings, catalog = acme
    path = tmp_path / "live.yaml"
    path.write_text(GOOD)
    live = Rules(
        settings.model_copy(update={"rules": settings.rules.model_copy(update={"file": path})}), catalog
    )
    assert list(live.load().rule_sets) == ["refunds"]
    assert live.reload_if_changed() is None  # nothing changed

    path.write_text(GOOD.replace("  refunds:", "  returns:"))
    changed = live.reload_if_changed()
    assert changed is not None and changed.tools_changed and changed.error is None
    assert list(live.book.rule_sets) == ["returns"]

    path.write_text(GOOD.replace("  refunds:", "  returns:").replace("Too old.", "Too old, sorry."))
    same_tools = live.reload_if_changed()  # the same tool, new wording: no new tool list
    assert same_tools is not None and not same_tools.tools_changed
    assert live.book.rule_sets["returns"].rules[0].fail_reason.source == "Too old, sorry."

    path.write_text(GOOD.replace("<= 30", "<="))
    broken = live.reload_if_changed()
    assert broken is not None and broken.error is not None
    assert "syntax error" in str(broken.error)
    assert list(live.book.rule_sets) == ["returns"]  # the previous rules stay
