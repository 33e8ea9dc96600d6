"""A throwaway PostgreSQL server for the tests: initdb into a temporary folder, start, stop.

Import the ``postgres`` fixture into a test module (``from tests.integration.postgres import
postgres``). It never touches a cluster the Debian package may have created: it runs its own
``initdb`` data directory, on a free loopback port, with its socket in its own folder. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` system user (created by
the Debian package) over folders handed to that user.

Without PostgreSQL's server binaries the tests that use it are skipped, or fail when ``CI=true``
(``.ci/run`` installs them).
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import IN_CI, free_port

SERVER_USER = "postgres"  # the system user of the Debian package, used when the tests run as root
APP_USER = "strongroom_app"
DATABASE = "shop"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    database: str
    user: str
    password: str
    admin_conninfo: str
    """Superuser connection over the server's private Unix socket (trust authentication)."""

    @property
    def dsn(self) -> str:
        """``postgresql://`` URL of the application role (password authentication over TCP)."""
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.database}"

    def url(self, password: str | None = None) -> str:
        """The URL with another password (or none when ``password=""``)."""
        secret = self.password if password is None else password
        userinfo = f"{self.user}:{secret}" if secret else self.user
        return f"postgresql://{userinfo}@{self.host}:{self.port}/{self.database}"


def postgres_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb, or one on PATH."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name or 0)
    )
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: .ci/run installs the postgresql package)")
    pytest.skip(reason)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL's server binaries, or the user to run them as, are missing."""


@contextmanager
def running_postgres(app_user: str = APP_USER, database: str = DATABASE) -> Iterator[PostgresServer]:
    """A fresh server with ``database`` owned by a password-protected ``app_user``, stopped and
    deleted afterwards (also used by benchmarks/pg_keyword.py)."""
    import psycopg

    bindir = postgres_bindir()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL server binaries not found (apt-get install postgresql)")
    as_root = os.geteuid() == 0
    run_as: list[str] = []
    if as_root:
        try:
            server_user = pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as"
            ) from None
        run_as = ["runuser", "-u", SERVER_USER, "--"]
    # Not under pytest's tmp_path: its parent folder is private to the current user (0700).
    root = Path(tempfile.mkdtemp(prefix="strongroom-pg-"))
    data, sockets, log = root / "data", root / "run", root / "server.log"
    sockets.mkdir()
    if as_root:
        for path in (root, sockets):
            os.chown(path, server_user.pw_uid, server_user.pw_gid)
    port = free_port()

    def run(*args: str | Path) -> None:
        done = subprocess.run(
            [*run_as, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=root
        )
        if done.returncode != 0:
            logged = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{Path(str(args[0])).name} failed:\n{done.stdout}{done.stderr}{logged}")

    try:
        run(
            bindir / "initdb",
            "-D",
            data,
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -k {sockets} -c fsync=off -c full_page_writes=off"
        )
        run(bindir / "pg_ctl", "-D", data, "-o", options, "-l", log, "-w", "-t", "60", "start")
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        password = "pw-" + secrets.token_hex(12)
        admin = f"host={sockets} port={port} user=postgres dbname=postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {app_user} LOGIN PASSWORD '{password}'")
            conn.execute(f"CREATE DATABASE {database} OWNER {app_user}")
        yield PostgresServer(
            host="127.0.0.1",
            port=port,
            database=database,
            user=app_user,
            password=password,
            admin_conninfo=f"host={sockets} port={port} user=postgres dbname={database}",
        )
    finally:
        try:
            run(bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL server with a database and a password-protected role."""
    pytest.importorskip("psycopg")
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres())
        except PostgresUnavailable as exc:
            _unavailable(str(exc))
            raise AssertionError from exc  # unreachable: skip/fail raise
        yield server
