"""Importing CEL without its command-line tool.

The ``cel`` package's ``__init__`` imports ``cel.cli``, and with it typer, prompt_toolkit,
pygments and rich (about 0.4 s on a quiet machine, more than CEL itself), which the engine
never uses and which would be on the path to the first tool list.
"""

from __future__ import annotations

from strongroom.server.lazy_imports import import_without


def load_cel() -> None:
    """Import the ``cel`` package (once) without ``cel.cli``; then ``import cel`` is free."""
    import_without("cel", "cel.cli")
