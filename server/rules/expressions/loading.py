"""Importing CEL without its command-line tool.

The ``cel`` package's ``__init__`` imports ``cel.cli``, and with it typer, prompt_toolkit,
pygments and rich (about 0.4 s on a quiet machine, more than CEL itself), which the engine
never uses. The rules file compiles before the MCP server answers ``initialize``, so that time
would be on the handshake. An empty ``cel.cli`` stands in while the package imports;
``import cel.cli`` afterwards still finds the real one.
"""

from __future__ import annotations

import importlib
import sys
import types


def load_cel() -> None:
    """Import the ``cel`` package (once) without ``cel.cli``; then ``import cel`` is free."""
    if "cel" in sys.modules:
        return
    stub = types.ModuleType("cel.cli", "not imported by Strongroom")
    sys.modules.setdefault("cel.cli", stub)
    try:
        importlib.import_module("cel")
    finally:
        if sys.modules.get("cel.cli") is stub:
            del sys.modules["cel.cli"]
