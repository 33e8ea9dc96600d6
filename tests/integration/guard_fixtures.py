"""A two-principal deployment of the example: alice (staff) and bob (finance), with tokens."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from strongroom.server.guard.auth import token_digest
from tests.support import EXAMPLE

ALICE_TOKEN = "sr_alice_test_token_0123456789"
BOB_TOKEN = "sr_bob_test_token_9876543210"

FINANCE_DOCS = {
    "q3-forecast.md": "# Q3 revenue forecast\n\nThe Q3 forecast projects revenue of $48.2 million, "
    "with gross margin at 41 percent after the supplier rebate renegotiation.",
    "payroll-calendar.md": "# Payroll calendar\n\nPayroll runs on the 15th and the last business day "
    "of each month; the payroll cut-off for overtime is three business days earlier.",
}


@dataclass(frozen=True)
class Deployment:
    config: Path
    root: Path


def write_deployment(root: Path, extra_toml: str = "") -> Deployment:
    """The example corpus plus a finance source, two principals and their token digests."""
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".strongroom"))
    finance = root / "finance"
    finance.mkdir(exist_ok=True)
    for name, text in FINANCE_DOCS.items():
        (finance / name).write_text(text)
    config = root / "strongroom.toml"
    config.write_text(
        config.read_text()
        + f"""
[[sources]]
name = "finance"
connector = "filesystem"
description = "Finance team documents"
path = "finance"
labels = ["finance"]

[[guard.principals]]
name = "alice"
labels = ["staff"]
token_sha256 = ["{token_digest(ALICE_TOKEN)}"]

[[guard.principals]]
name = "bob"
labels = ["finance"]
token_sha256 = ["{token_digest(BOB_TOKEN)}"]
"""
        + extra_toml
    )
    return Deployment(config, root)
