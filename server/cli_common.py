"""What every CLI command shares: the --config option, settings loading, error reporting."""

from __future__ import annotations

import logging
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from strongroom.connectors.api import ConnectorError
from strongroom.server.errors import StrongroomError
from strongroom.server.settings import ConfigError, Settings, load_settings

_KEPT = frozenset({"Zs", "Co"})  # spaces and private-use characters are shown as they are


def printable(value: object) -> str:
    """``value`` as text with control, format and line-separator characters escaped (``\\n``,
    ``\\x1b``, ``\\u202e``), so data from documents or the catalog can never forge a line,
    move the cursor or reverse text on a terminal. For every human-readable output; not for JSON."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        ch if ch.isprintable() or unicodedata.category(ch) in _KEPT else repr(ch)[1:-1] for ch in text
    )


def report(message: str) -> None:
    """One line on stderr (more only for a multi-line configuration error)."""
    lines = "\n".join(printable(line) for line in message.split("\n"))
    click.echo(f"strongroom: error: {lines}", err=True)


def fail(message: str, code: int = 1) -> NoReturn:
    """:func:`report`, then exit."""
    report(message)
    sys.exit(code)


def for_operator(exc: StrongroomError | ConfigError | ConnectorError) -> str:
    """What a user's mistake says on the command line."""
    text = exc.for_operator() if isinstance(exc, StrongroomError) else str(exc)
    return text.replace("\n", "\n  ")


@contextmanager
def user_errors() -> Iterator[None]:
    """A user's mistake is one line on stderr and a non-zero exit, never a traceback."""
    try:
        yield
    except (StrongroomError, ConfigError, ConnectorError) as exc:
        fail(for_operator(exc))


LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class EscapingFormatter(logging.Formatter):
    """Log lines whose message is :func:`printable`: a file name, URL or JWT subject holding a
    newline or an escape sequence cannot forge a log line. A traceback, added after the
    message, keeps its own lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


def setup_logging(level: str) -> None:
    """One handler and format on stderr for every logger: ours, the libraries' (pypdf, uvicorn,
    httpx) and Python warnings. stdout belongs to the protocol in stdio mode."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (default: $STRONGROOM_CONFIG, else ./strongroom.toml).",
)


def cli_settings(config_path: Path | None, *, require: bool = True) -> Settings:
    """The settings for a command; with ``require``, a configuration must exist (one line if not)."""
    from strongroom.server.cli_checks import require_configuration

    with user_errors():
        settings = load_settings(config_path)
        if require:
            require_configuration(settings)
        return settings
