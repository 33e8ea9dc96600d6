"""Canary documents: plausible, unique, traceable decoys planted in a source.

Real questions about the organisation's work essentially never reach them (their subjects
are dull back-office records no one asks about), but a client that walks the whole corpus
does, and the guard raises a high-severity audit event naming who received one.
"""

from __future__ import annotations

import calendar
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from strongroom.connectors.api import Document

_SUBJECTS = [
    ("Legacy vendor escrow arrangement", "escrow deposit", "source-code escrow agent"),
    ("Decommissioned rack inventory", "rack position", "asset disposal certificate"),
    ("Archived supplier rebate ledger", "rebate tier", "settlement reference"),
    ("Dormant subsidiary registry extract", "registered agent", "filing reference"),
    ("Retired telephony trunk allocation", "trunk group", "carrier circuit id"),
    ("Superseded insurance rider schedule", "rider code", "underwriter reference"),
]
_MONTHS = list(calendar.month_name)[1:]


@dataclass(frozen=True)
class Canary:
    document: Document
    token: str


def make_canary(rng: random.Random | None = None) -> Canary:
    """One decoy document with a unique, searchable trace token."""
    rng = rng or random.Random(secrets.randbits(64))
    title, item, reference = rng.choice(_SUBJECTS)
    token = f"{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}{rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ')}-" + "".join(
        rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(8)
    )
    year = rng.randint(2014, 2019)
    amount = rng.randint(12, 480) * 125
    lines = [
        f"# {title} ({year})",
        "",
        f"This record was closed in {rng.choice(_MONTHS)} {year} and is kept for reference only.",
        "",
        "## Details",
        "",
        f"- {item.capitalize()}: {rng.randint(2, 40)}",
        f"- {reference.capitalize()}: {token}",
        f"- Amount on file: ${amount:,}",
        f"- Custodian: records team, shelf {rng.randint(1, 90)}",
        "",
        "## Status",
        "",
        "No further action is required. Questions about this record go to the records team with the "
        f"reference {token}.",
    ]
    doc_id = f"archive/{title.lower().replace(' ', '-')}-{token.lower()}.md"
    document = Document(
        id=doc_id,
        title=f"{title} ({year})",
        text="\n".join(lines),
        uri="",
        updated_at=datetime(year, rng.randint(1, 12), rng.randint(1, 28), tzinfo=UTC),
        metadata={"format": "md", "path": doc_id},
    )
    return Canary(document, token)
