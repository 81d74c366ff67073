"""Shared fixtures: real databases made by the migrations, an app wired to them, a clock.

Each backend's schema is made once per run by Alembic; every test then starts from empty tables.
Tables are emptied after the test rather than rolled back, because the code under test commits at
its own boundaries (endpoints, workers, the CLI) exactly as it does in production.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from hub.app import create_app
from hub.config import Settings
from hub.db import Base, Database
from hub.migrations import upgrade

PG_DB = os.environ.get("HUB_TEST_PG_DB", "sshub_test")
PG_SERVER = os.environ.get("HUB_TEST_PG_SERVER", "sshub:sshub@127.0.0.1:5432")
OPS_TOKEN = "test-ops-token"


class ManualClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def _fresh_postgres() -> str:
    with psycopg.connect(f"postgresql://{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DB}"')
    return f"postgresql+psycopg://{PG_SERVER}/{PG_DB}"


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    path: Path = tmp_path_factory.mktemp("sqlite") / "hub.db"
    url = f"sqlite:///{path}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = _fresh_postgres()
    upgrade(url)
    return url


def _empty_tables(db: Database) -> None:
    existing = set(inspect(db.engine).get_table_names())
    names = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name in existing]
    with db.engine.begin() as conn:
        if db.is_sqlite:
            for name in names:
                conn.execute(text(f"DELETE FROM {name}"))
        else:
            conn.execute(text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def _databases(request: pytest.FixtureRequest) -> Iterator[dict[str, Database]]:
    made: dict[str, Database] = {}
    yield made
    for db in made.values():
        db.dispose()


def _database(kind: str, request: pytest.FixtureRequest, cache: dict[str, Database]) -> Database:
    if kind not in cache:
        url = request.getfixturevalue(f"{kind}_url")
        cache[kind] = Database(url, pool_size=40)
    return cache[kind]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, _databases: dict[str, Database]) -> Iterator[Database]:
    """The same test on SQLite and on PostgreSQL."""
    database = _database(request.param, request, _databases)
    yield database
    _empty_tables(database)


@pytest.fixture
def pg(request: pytest.FixtureRequest, _databases: dict[str, Database]) -> Iterator[Database]:
    """PostgreSQL only: concurrency and locking tests."""
    database = _database("postgres", request, _databases)
    yield database
    _empty_tables(database)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def settings(db: Database) -> Settings:
    return Settings(database_url=db.url, ops_api_token=OPS_TOKEN, log_json=True)


@pytest.fixture
def client(settings: Settings, db: Database, clock: ManualClock) -> Iterator[TestClient]:
    app = create_app(settings, database=db, clock=clock, run_workers=False)
    with TestClient(app, headers={"Authorization": f"Bearer {OPS_TOKEN}"}) as test_client:
        yield test_client
