"""What every CLI command shares: the --config option, settings loading, error reporting."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from strongroom.connectors.api import ConnectorError
from strongroom.server.errors import StrongroomError
from strongroom.server.settings import ConfigError, Settings, load_settings


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"strongroom: error: {message}", err=True)
    sys.exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """A user's mistake is one line on stderr and a non-zero exit, never a traceback."""
    try:
        yield
    except StrongroomError as exc:
        fail(exc.for_operator().replace("\n", "\n  "))
    except (ConfigError, ConnectorError) as exc:
        fail(str(exc).replace("\n", "\n  "))


def setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)  # stdout belongs to the protocol in stdio mode
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Configuration file (default: $STRONGROOM_CONFIG, else ./strongroom.toml).",
)


def cli_settings(config_path: Path | None) -> Settings:
    with user_errors():
        return load_settings(config_path)
