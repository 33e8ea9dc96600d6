"""Imports that need care: a package without a submodule Strongroom never uses, and numpy
before the libraries that import it from several threads.

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


def import_numpy_first() -> None:
    """Import numpy whole before a library that imports it: ONNX Runtime, torch, Chroma.

    Python lets a thread import a submodule (``numpy._typing``, or ONNX Runtime's compiled
    ``numpy._core`` import) while another thread is still running ``numpy/__init__``; both then
    see half-initialised modules and fail with an ImportError. A plain ``import numpy`` waits for
    the other thread's import to finish instead. The model's load and Chroma's client start in
    separate threads, beside a search's, so each calls this first.
    """
    import numpy  # noqa: F401
