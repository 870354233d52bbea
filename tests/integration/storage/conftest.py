"""Fixtures: migrated databases (SQLite in tmp_path, PostgreSQL from the session's
throwaway cluster, see tests/conftest.py), a test keyring, and the storage backends.

The contract tests run against SQLite, PostgreSQL and the fake; each PostgreSQL test gets
a database of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import Grant, Vehicle
from gateway.core.ports import UnitOfWork
from storage.crypto import Keyring, TokenCipher
from storage.database import create_engine, migrate
from storage.uow import unit_of_work_factory
from tests.conftest import Postgres, copy_of
from tests.fakes import FakeUnitOfWorkFactory, ForeignKeyViolation


@pytest.fixture
def keyring() -> Keyring:
    """Return a keyring with one random key, `k1`."""
    return Keyring({"k1": secrets.token_bytes(32)}, active="k1")


@pytest.fixture
def cipher(keyring: Keyring) -> TokenCipher:
    """Return a cipher over the test keyring."""
    return TokenCipher(keyring)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Return where the test database file lives."""
    return tmp_path / "db" / "gateway.db"


@pytest.fixture
async def engine(db_path: Path, migrated_sqlite: Path) -> AsyncIterator[AsyncEngine]:
    """Return an engine on a migrated SQLite file of its own: a copy of the database the
    worker migrated once, as each PostgreSQL test database is a copy of a migrated template
    (migrating from nothing, ten times the cost of a copy, is the migration tests' subject)."""
    engine = create_engine(f"sqlite+aiosqlite:///{copy_of(migrated_sqlite, db_path)}")
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture
async def postgres_engine(postgres: Postgres) -> AsyncIterator[AsyncEngine]:
    """Return an engine on a freshly migrated PostgreSQL database of its own."""
    engine = create_engine(postgres.new_database())
    await migrate(engine)
    yield engine
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_engine(request: pytest.FixtureRequest) -> AsyncEngine:
    """Return a migrated SQLite engine, then a PostgreSQL one when configured."""
    name = "engine" if request.param == "sqlite" else "postgres_engine"
    engine: AsyncEngine = request.getfixturevalue(name)
    return engine


@dataclass(frozen=True)
class Backend:
    """One implementation of the storage ports, and the errors it raises for bugs."""

    name: str
    factory: Callable[[], UnitOfWork]
    foreign_key_error: type[Exception]
    naive_time_error: type[Exception]


@pytest.fixture(params=["sql", "fake", "postgres"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Return the SQL adapter on SQLite, the in-memory fake, and the SQL adapter on
    PostgreSQL: the contract holds for all of them."""
    if request.param == "fake":
        return Backend("fake", FakeUnitOfWorkFactory(), ForeignKeyViolation, ValueError)
    engine = request.getfixturevalue("engine" if request.param == "sql" else "postgres_engine")
    cipher = request.getfixturevalue("cipher")
    # SQLAlchemy wraps the ValueError of the UTC column type in a StatementError.
    return Backend(
        request.param, unit_of_work_factory(engine, cipher), IntegrityError, StatementError
    )


async def seed(backend: Backend, *rows: Vehicle | Grant) -> None:
    """Commit grants and vehicles (grants first, as vehicles point at them)."""
    async with backend.factory() as uow:
        for row in rows:
            if isinstance(row, Grant):
                await uow.grants.add(row)
        for row in rows:
            if isinstance(row, Vehicle):
                await uow.vehicles.add(row)
        await uow.commit()
