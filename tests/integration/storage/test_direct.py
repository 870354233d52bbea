"""Statements run on the driver (`storage.repositories._direct.Direct`), on SQLite and on
PostgreSQL: the same values as SQLAlchemy's `execute`, in the unit of work's transaction,
with SQLAlchemy's errors; and PostgreSQL's pooled connections pinged after they idled."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, insert, select, text, update
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import CommandRecord, CommandState, LockAction
from gateway.core.ports import Conflict
from storage import database
from storage.crypto import TokenCipher
from storage.repositories._direct import Direct
from storage.schema import commands, vehicles
from storage.transient import is_transient
from storage.uow import unit_of_work_factory
from tests.conftest import Postgres
from tests.integration.storage.builders import T0, vehicle

_VEHICLE = select(vehicles).where(vehicles.c.id == bindparam("vehicle_id"))
_LAST_ERROR = update(vehicles).where(vehicles.c.id == bindparam("key"))


async def test_a_row_reads_back_as_sqlalchemy_reads_it(
    migrated_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """Every column of a vehicle (times, JSON, integers, NULLs) comes back equal to what
    `execute` returns for the same statement."""
    factory = unit_of_work_factory(migrated_engine, cipher)
    async with factory() as uow:
        await uow.vehicles.add(vehicle("v1"))
        await uow.commit()
    async with factory.reader() as uow:
        connection = uow._require_connection()
        direct = (await Direct(_VEHICLE).run(connection, {"vehicle_id": "v1"})).one_or_none()
        expected = (await connection.execute(_VEHICLE, {"vehicle_id": "v1"})).one()._mapping
    assert direct == dict(expected)
    assert direct is not None
    assert direct["created_at"].utcoffset() == timedelta(0)
    assert isinstance(direct["permissions"], list)


async def test_a_write_belongs_to_the_unit_of_work(
    migrated_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """A direct write as a unit's first statement begins its transaction: rolled back
    when the unit leaves without committing, kept when it commits."""
    factory = unit_of_work_factory(migrated_engine, cipher)
    async with factory() as uow:
        await uow.vehicles.add(vehicle("v1"))
        await uow.commit()
    write = Direct(_LAST_ERROR)
    async with factory() as uow:
        changed = await write.run(uow._require_connection(), {"key": "v1", "last_error": "lost"})
        assert changed.rowcount == 1
    async with factory() as uow:
        assert (await uow.vehicles.get("v1")) == vehicle("v1")
        await write.run(uow._require_connection(), {"key": "v1", "last_error": "kept"})
        await uow.commit()
    async with factory.reader() as uow:
        found = await uow.vehicles.get("v1")
    assert found is not None
    assert found.last_error == "kept"


async def test_a_driver_error_is_raised_as_sqlalchemy_raises_it_without_values(
    migrated_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """A broken foreign key is SQLAlchemy's IntegrityError with the driver's error as
    `orig`, and the message names no parameter value."""
    factory = unit_of_work_factory(migrated_engine, cipher)
    values = {
        "request_id": "r1",
        "vehicle_id": "no-such-car",
        "action": "LOCK",
        "charge_limit_percent": None,
        "state": "PENDING",
        "created_at": T0,
        "completed_at": None,
        "error": {"secret": "do-not-print-me"},
    }
    async with factory() as uow:
        with pytest.raises(IntegrityError) as raised:
            await Direct(insert(commands)).run(uow._require_connection(), values)
    assert raised.value.orig is not None
    assert "do-not-print-me" not in str(raised.value)
    assert "no-such-car" not in str(raised.value)


async def test_a_missing_parameter_is_named(
    migrated_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """A statement run without one of its parameters fails naming it, binding no NULL."""
    factory = unit_of_work_factory(migrated_engine, cipher)
    async with factory.reader() as uow:
        with pytest.raises(ArgumentError, match="vehicle_id"):
            await Direct(_VEHICLE).run(uow._require_connection(), {"other": "v1"})


async def test_a_claim_of_a_taken_request_id_changes_nothing(
    migrated_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """The claim is an INSERT that changes no row on a taken id: Conflict, and the unit
    of work stays usable (on PostgreSQL too, without a savepoint)."""
    factory = unit_of_work_factory(migrated_engine, cipher)
    record = CommandRecord(
        request_id="r1",
        vehicle_id="v1",
        action=LockAction.LOCK,
        charge_limit_percent=None,
        state=CommandState.PENDING,
        created_at=T0,
    )
    async with factory() as uow:
        await uow.vehicles.add(vehicle("v1"))
        await uow.commands.add(record)
        await uow.commit()
    async with factory() as uow:
        with pytest.raises(Conflict):
            await uow.commands.add(record)
        assert await uow.commands.get("r1") == record  # the transaction is still good
        await uow.vehicles.note_telemetry("v1", at=T0, awake=True)
        await uow.commit()


@pytest.fixture
async def postgres_pool(postgres: Postgres, cipher: TokenCipher) -> AsyncIterator[AsyncEngine]:
    """A migrated PostgreSQL engine with one pooled connection, used once."""
    engine = database.create_engine(postgres.new_database())
    await database.migrate(engine)
    async with unit_of_work_factory(engine, cipher).reader() as uow:
        await uow.vehicles.get("warm")
    yield engine
    await engine.dispose()


async def _drop_pooled_sessions(engine: AsyncEngine) -> None:
    """End every session of `engine`'s database from another engine's connection (what a
    server restart does to the connections in `engine`'s pool)."""
    killer = database.create_engine(engine.url.render_as_string(hide_password=False))
    try:
        async with killer.connect() as connection:
            ended = await connection.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert ended.scalar_one() >= 1
    finally:
        await killer.dispose()


async def test_a_connection_dropped_while_idle_is_replaced_at_checkout(
    postgres_pool: AsyncEngine, cipher: TokenCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the idle window, a checkout pings: a connection the server dropped is
    replaced before the unit of work gets it."""
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 0.0)
    await _drop_pooled_sessions(postgres_pool)
    async with unit_of_work_factory(postgres_pool, cipher).reader() as uow:
        assert await uow.vehicles.get("v1") is None


async def test_a_connection_back_within_the_window_is_not_pinged(
    postgres_pool: AsyncEngine, cipher: TokenCipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the idle window no ping is sent: a connection dropped meanwhile fails its
    unit's first statement as a lost connection (retryable), and the pool replaces it."""
    monkeypatch.setattr(database, "PING_AFTER_IDLE_S", 3600.0)
    await _drop_pooled_sessions(postgres_pool)
    factory = unit_of_work_factory(postgres_pool, cipher)
    with pytest.raises(DBAPIError) as lost:
        async with factory.reader() as uow:
            await uow.vehicles.get("v1")
    assert is_transient(lost.value)
    async with factory.reader() as uow:
        assert await uow.vehicles.get("v1") is None


async def test_an_error_through_execute_names_no_parameter_value(
    migrated_engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """The engine hides parameters too: a statement run through `execute` that fails
    names its statement, not the values it carried."""
    factory = unit_of_work_factory(migrated_engine, cipher)
    async with factory() as uow:
        connection = uow._require_connection()
        with pytest.raises(IntegrityError) as raised:
            await connection.execute(
                insert(commands).values(
                    request_id="r1",
                    vehicle_id="no-such-car-either",
                    action="LOCK",
                    state="PENDING",
                    created_at=T0,
                )
            )
    assert "INSERT INTO commands" in str(raised.value)
    assert "no-such-car-either" not in str(raised.value)
