"""Importing a package without a submodule Strongroom never uses.

Some packages import their command-line tool from their ``__init__`` (``cel`` imports
``cel.cli``; ``httpx``, which Chroma imports, imports ``httpx._main`` whenever rich, pygments and
click are installed, as they are here). A server never runs those tools, and their imports are
on the path to the handshake or to the first search. An empty module stands in for the tool
while the package imports; importing the tool afterwards still finds the real one.
"""

from __future__ import annotations

import importlib
import sys
import types


def import_without(package: str, unused: str) -> None:
    """Import ``package`` (once) with ``unused``, one of its submodules, left out."""
    if package in sys.modules:
        return
    stub = types.ModuleType(unused, "not imported by Strongroom")
    sys.modules.setdefault(unused, stub)
    try:
        importlib.import_module(package)
    finally:
        if sys.modules.get(unused) is stub:
            del sys.modules[unused]
