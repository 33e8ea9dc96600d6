"""The storage contract's backends: every test in this folder runs on each.

``backend.open()`` opens the same storage again, as another process or another replica would:
an SQLite file in the test's folder, or a fresh database on the session's throwaway PostgreSQL
server (the PostgreSQL runs are in the slow lane).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from strongroom.server.store.database import Database
from strongroom.server.store.sqlite import SqliteDatabase
from tests.integration.postgres import PostgresServer

_databases = itertools.count()


@dataclass
class Backend:
    name: str
    _open: Callable[[], Database]
    opened: list[Database] = field(default_factory=list)

    def open(self) -> Database:
        """The storage, opened once more (another process's view of it)."""
        database = self._open()
        self.opened.append(database)
        return database

    def sql(self, statement: str) -> None:
        """Run ``statement`` directly on the storage, as someone tampering with it would."""
        with self.open().tx("tamper") as db:
            db.execute(statement)


def _postgres(server: PostgresServer) -> Callable[[], Database]:
    import psycopg

    from strongroom.server.store.postgres import PostgresDatabase

    name = f"contract_{next(_databases)}"
    with psycopg.connect(server.admin_conninfo, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER {server.user}")
    url = f"postgresql://{server.user}@{server.host}:{server.port}/{name}"
    return lambda: PostgresDatabase(url, server.password, pool_size=4)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        backend = Backend("sqlite", lambda: SqliteDatabase(tmp_path / "catalog.sqlite3"))
    else:
        backend = Backend("postgresql", _postgres(request.getfixturevalue("postgres")))
    yield backend
    for database in backend.opened:
        database.close()
