"""Building the guard for a data directory."""

from __future__ import annotations

from strongroom.server.guard.digest_key import digest_key
from strongroom.server.guard.gate import Guard, Inventory
from strongroom.server.settings import Settings
from strongroom.server.store.audit import AuditLog
from strongroom.server.store.exposure import ExposureLedger


def build_guard(settings: Settings, inventory: Inventory) -> Guard:
    """The guard for this data directory (its state lives in the catalog file)."""
    path = settings.catalog_path
    busy = settings.store.busy_timeout_s
    return Guard(
        settings.guard,
        AuditLog(path, busy),
        ExposureLedger(path, busy),
        inventory,
        digest_key=digest_key(settings),
    )
