"""`strongroom rules check` / `rules run`, and `serve` refusing a broken rules file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.rules_support import EXAMPLE_TODAY, copy_example, index_without_vectors
from tests.support import ROOT, StdioPeer, clean_env, strongroom_cmd


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        strongroom_cmd(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(PYTHONPATH=str(ROOT)),
    )


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from strongroom.server.settings import load_settings

    config = copy_example(tmp_path_factory.mktemp("acme"))
    index_without_vectors(load_settings(config)).close()
    return config


def test_rules_check_ok(indexed: Path) -> None:
    result = run("rules", "check", "--config", str(indexed))
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout.strip()
        == f"ok: 3 rule sets, 12 rules, 5 answer policies ({indexed.parent / 'rules.yaml'})"
    )


def edited(indexed: Path, path: Path, *replacements: tuple[str, str]) -> Path:
    """A copy of the example's rules file with text replaced."""
    text = (indexed.parent / "rules.yaml").read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)
    return path


def test_rules_check_lists_every_problem_and_fails(indexed: Path, tmp_path: Path) -> None:
    broken = edited(
        indexed,
        tmp_path / "broken.yaml",
        ("expression: days_elapsed <= window_days", "expression: days_elapsed <="),
        ("heading: Restocking fee for opened tents", "heading: Restocking fees"),
        ("source: customers", "source: clients"),
    )
    result = run("rules", "check", str(broken), "--config", str(indexed))
    assert result.returncode == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3, lines
    assert any("rule 'within_return_window', expression: syntax error" in line for line in lines)
    assert any("no heading 'Restocking fees' in handbook/refund-policy.md" in line for line in lines)
    assert any("unknown source 'clients'" in line for line in lines)
    assert all(line.startswith(f"{broken}:") for line in lines)
    assert "3 problems" in result.stderr and "Traceback" not in result.stderr


def test_rules_check_reports_every_type_error_with_rule_and_types(indexed: Path, tmp_path: Path) -> None:
    """What CEL would refuse on every call is caught before serving, by rule and operand types."""
    mistyped = edited(
        indexed,
        tmp_path / "mistyped.yaml",
        ("double(100 - restocking_fee_percent)) / 100.0", "(100 - restocking_fee_percent)) / 100"),
        ("expression: days_elapsed <= window_days", "expression: days_elapsed <= order.total - 1"),
        (
            "expression: coverage_months != 0\n",
            "expression: coverage_months != 0 && order.order_date > '2020'\n",
        ),
    )
    result = run("rules", "check", str(mistyped), "--config", str(indexed))
    assert result.returncode == 1, result.stdout
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 4, lines
    assert any(
        "value refund_amount: type error in `order.total * (100 - restocking_fee_percent)`: "
        "`*` is not defined for double and int" in line
        for line in lines
    )
    assert any("`math.round(order.total * (100 - restocking_fee_percent)) / 100`" in line for line in lines)
    assert any(
        "rule 'within_return_window', expression: type error in `order.total - 1`: `-` is not defined "
        "for double and int: CEL does not mix int and double in arithmetic" in line
        for line in lines
    )
    assert any(
        "rule 'covered_product_line', expression: type error in `order.order_date > '2020'`: "
        "`>` is not defined for timestamp and string" in line
        for line in lines
    )
    assert "4 problems" in result.stderr and "Traceback" not in result.stderr


def test_rules_check_reports_type_errors_beside_other_problems(indexed: Path, tmp_path: Path) -> None:
    """An unknown name or a syntax error in one rule hides no type error in another."""
    broken = edited(
        indexed,
        tmp_path / "broken.yaml",
        ('expression: "!order.last_call"', 'expression: "!order.last_call && nosuch"'),
        ("expression: days_elapsed <= window_days", "expression: days_elapsed <= order.total - 1"),
        ("when: \"order.category == 'hygiene'\"", "when: \"order.total == 'hygiene'\""),
        ("expression: original_purchaser\n", "expression: original_purchaser &&\n"),
        ("expression: \"order.brand == 'Acme'\"", "expression: \"order.order_date == 'Acme'\""),
    )
    result = run("rules", "check", str(broken), "--config", str(indexed))
    assert result.returncode == 1, result.stdout
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 5, lines
    assert any("rule 'not_final_sale', expression: unknown name 'nosuch'" in line for line in lines)
    assert any(
        "rule 'within_return_window', expression: type error in `order.total - 1`" in line for line in lines
    )
    # An equality that can never hold (CEL just says false) names the rule and the operand types.
    assert any(
        "rule 'hygiene_unopened', when: type error in `order.total == 'hygiene'`: `==` compares "
        "double with string, so it is always false" in line
        for line in lines
    )
    assert any("rule 'original_purchaser', expression: syntax error" in line for line in lines)
    assert any(
        "rule 'acme_brand', expression: type error in `order.order_date == 'Acme'`: `==` compares "
        "timestamp with string, so it is always false: write the date as date('YYYY-MM-DD')" in line
        for line in lines
    )
    assert "5 problems" in result.stderr and "Traceback" not in result.stderr


def test_rules_run_decides_a_case(indexed: Path) -> None:
    result = run(
        "rules", "run", "refund_eligibility", "order_id=4471", "opened=true",
        "--today", EXAMPLE_TODAY, "--config", str(indexed),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "refund_eligibility: approved"
    assert "✓ within_return_window: 16 days since 2025-03-04" in result.stdout
    as_json = run(
        "rules",
        "run",
        "warranty_claim",
        "order_id=4475",
        "--today",
        EXAMPLE_TODAY,
        "--json",
        "--config",
        str(indexed),
    )
    decision = json.loads(as_json.stdout)
    assert decision["decision"] == "not_covered"
    bad = run("rules", "run", "refund_eligibility", "order_id=abc", "--config", str(indexed))
    assert bad.returncode == 1 and "order_id" in bad.stderr and "Traceback" not in bad.stderr


def test_serve_stops_on_a_broken_rules_file_in_one_line(indexed: Path, tmp_path: Path) -> None:
    """Over stdio the rules compile once the client has its `initialize` answer: a broken file
    stops the server with one line before any tool is listed, though the client keeps stdin open."""
    rules = indexed.parent / "rules.yaml"
    original = rules.read_text()
    log = tmp_path / "serve.log"
    try:
        rules.write_text(
            original.replace("expression: days_elapsed <= window_days", "expression: days_elapsed <=")
        )
        peer = StdioPeer(indexed, log)
        try:
            peer.initialize()
            peer.send({"id": 1, "method": "tools/list"})
            returncode = peer.exit_code(timeout=60)
        finally:
            peer.proc.kill()
            peer.proc.wait()
    finally:
        rules.write_text(original)
    assert returncode == 1
    assert [m.get("id") for m in peer.lines] == [0]  # the handshake's answer; no tool list
    stderr = log.read_text()
    errors = [line for line in stderr.splitlines() if line.startswith("strongroom: error:")]
    assert len(errors) == 1, stderr
    assert "rules.yaml:" in errors[0] and "within_return_window" in errors[0] and "syntax error" in errors[0]
    assert "Traceback" not in stderr
