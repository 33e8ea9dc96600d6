"""Checks the CLI makes before it touches anything: is there a configuration, can the data
folder be used, is the port free. Each failure is one line saying what is wrong and what to do."""

from __future__ import annotations

import errno
import os
import socket
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from strongroom.server.errors import StrongroomError
from strongroom.server.settings import DEFAULT_CONFIG_NAME, Settings

ENV_PREFIX = "STRONGROOM_"
# Variables that say who or where, not what to index: they alone are not a configuration.
_NOT_CONFIGURATION = {"STRONGROOM_CONFIG", "STRONGROOM_PRINCIPAL"}


class NoConfiguration(StrongroomError):
    """No configuration file was found and the environment configures nothing."""


class DataFolderError(StrongroomError):
    """The data folder is missing (for a read) or cannot be written (for a sync or a server)."""


class PortInUse(StrongroomError):
    """The SSE/HTTP port is taken by another process."""


def configured_by_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """The ``STRONGROOM_*`` settings variables set in the environment (as an MCP Bundle sets them)."""
    env = os.environ if environ is None else environ
    return sorted(k for k in env if k.startswith(ENV_PREFIX) and k not in _NOT_CONFIGURATION)


def where_config_was_looked_for() -> str:
    return f"{Path.cwd() / DEFAULT_CONFIG_NAME} ($STRONGROOM_CONFIG is not set)"


def require_configuration(settings: Settings) -> None:
    """Refuse to work on defaults alone: they would index nothing and put a data folder in the cwd."""
    if settings.config_file is None and not configured_by_environment():
        raise NoConfiguration(
            f"no configuration found: looked for {where_config_was_looked_for()}; "
            "run `strongroom init` to write one, or pass --config FILE"
        )


def require_index(settings: Settings) -> None:
    """A read-only command on a data folder that does not exist: say so, and create nothing.
    (A PostgreSQL catalog is checked when it opens.)"""
    if settings.store.catalog_url is not None:
        return
    if not settings.catalog_path.exists():
        raise DataFolderError(f"nothing indexed yet: run `strongroom sync` (no index in {settings.data_dir})")
    if not os.access(settings.data_dir, os.R_OK | os.X_OK):
        raise DataFolderError(
            f"cannot read the data folder {settings.data_dir}: permission denied; "
            "fix its permissions or point store.path at your own copy"
        )


def writable_data_folder(settings: Settings) -> Path:
    """Create the data folder if needed and prove it can be written; DataFolderError says why not."""
    folder = settings.data_dir
    hint = f"set store.path in {settings.config_file or 'the configuration'} to a folder you can write"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except FileExistsError:
        raise DataFolderError(f"the data folder {folder} is a file, not a folder; {hint}") from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise DataFolderError(f"cannot write the data folder {folder}: {reason.lower()}; {hint}") from None
    return folder


def require_free_port(host: str, port: int) -> None:
    """Fail before start-up when another process listens on ``host:port``."""
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        if sys.platform != "win32":  # as the server will: a port in TIME_WAIT is free
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"port {port} on {host} is already in use: stop what runs there or pick another "
                    "with --port"
                ) from None
            if exc.errno == errno.EACCES:
                raise PortInUse(
                    f"not allowed to listen on port {port} of {host}: pick a port above 1023 with --port"
                ) from None
            raise PortInUse(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
