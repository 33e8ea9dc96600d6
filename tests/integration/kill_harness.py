"""Run ``strongroom sync`` and SIGKILL the process at a chosen point of the write protocol.

Usage: ``python kill_harness.py CLASS.METHOD N before|after CONFIG``

The N-th call of the method (calls with an empty id list, which do nothing, are not counted)
kills the process before or after the real method runs. If the N-th call never comes, the
sync finishes normally and the harness exits with status 3, so a test notices a kill point
that the corpus no longer reaches.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from strongroom.server.store.catalog import Catalog
from strongroom.server.store.vectors import VectorStore

TARGETS: dict[str, tuple[type, str]] = {
    "Catalog.note_pending_vectors": (Catalog, "note_pending_vectors"),
    "Catalog.commit_document": (Catalog, "commit_document"),
    "Catalog.delete_document": (Catalog, "delete_document"),
    "Catalog.forget_vectors": (Catalog, "forget_vectors"),
    "VectorStore.upsert": (VectorStore, "upsert"),
    "VectorStore.delete": (VectorStore, "delete"),
}
# Methods whose first argument is a list of ids; an empty list is a no-op and not counted.
ID_LISTS = {"upsert", "delete", "forget_vectors"}


def install(target: str, n: int, when: str) -> None:
    cls, name = TARGETS[target]
    original = getattr(cls, name)
    calls = 0

    def die() -> None:
        sys.stderr.write(f"kill_harness: SIGKILL {when} call {n} of {target}\n")
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        if name in ID_LISTS and not list(args[0]):
            return original(self, *args, **kwargs)
        calls += 1
        if calls == n and when == "before":
            die()
        result = original(self, *args, **kwargs)
        if calls == n and when == "after":
            die()
        return result

    setattr(cls, name, wrapper)


def main(argv: list[str]) -> int:
    target, n, when, config = argv
    if when not in ("before", "after"):
        raise SystemExit(f"when must be 'before' or 'after', not {when!r}")
    install(target, int(n), when)
    from strongroom.server.cli import main as cli

    try:
        cli(["sync", "--config", config])
    except SystemExit as exc:
        sys.stderr.write(f"kill_harness: sync finished (exit {exc.code}) without reaching the kill point\n")
    return 3


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
