"""Alembic migrations: they build the schema from nothing and match storage.schema exactly."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import SmartcarApi
from storage.crypto import TokenCipher
from storage.database import alembic_config, create_engine, migrate, schema_revision
from storage.schema import metadata
from storage.uow import unit_of_work_factory
from tests.conftest import Postgres
from tests.integration.storage.builders import bare_vehicle

FIRST_TABLES = {"smartcar_grants", "vehicles", "telemetry", "rentals", "commands", "oauth_states"}
LIFECYCLE_TABLES = {"status_transitions", "request_budget", "scheduler_leases", "webhook_events"}
AUDIT_TABLES = {"audit_log"}
APPLICATION_TOKEN_TABLES = {"smartcar_application_tokens"}
RENTAL_READING_TABLES = {"rental_readings", "rental_final_readings"}
EVENT_TABLES = {"vehicle_events", "vehicle_event_latches", "vehicle_event_horizon"}
TABLES = (
    FIRST_TABLES
    | LIFECYCLE_TABLES
    | AUDIT_TABLES
    | APPLICATION_TOKEN_TABLES
    | RENTAL_READING_TABLES
    | EVENT_TABLES
)
LIFECYCLE_COLUMNS = {"asleep_until", "failure_count", "last_error"}


def _diff(connection: Connection) -> list[Any]:
    """Return what autogenerate would change to turn the database into storage.schema."""
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def _downgrade(connection: Connection, revision: str) -> None:
    """Run the downgrades down to `revision` ("base": all of them)."""
    config = alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


def _layout(connection: Connection) -> tuple[set[str], set[str], set[str]]:
    """Return the tables, the vehicle columns and the grant indexes the database has."""
    inspector = inspect(connection)
    return (
        set(inspector.get_table_names()),
        {column["name"] for column in inspector.get_columns("vehicles")},
        {str(index["name"]) for index in inspector.get_indexes("smartcar_grants")},
    )


async def test_upgrade_on_an_empty_database_creates_the_schema(tmp_path: Path) -> None:
    """Migrating a new file creates every table and stamps the head revision."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = (
                await connection.execute(text("SELECT version_num FROM alembic_version"))
            ).scalar_one()
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert tables == TABLES | {"alembic_version"}
    assert version == head


async def test_concurrent_migrations_on_postgresql_run_one_after_the_other(
    postgres: Postgres,
) -> None:
    """Two replicas (or the migrate-schema Job and a replica) migrating an empty PostgreSQL
    database at once both succeed: the advisory lock makes the second wait, then find the
    schema at head with nothing to do."""
    url = postgres.new_database()
    first, second = create_engine(url), create_engine(url)
    try:
        async with first.begin() as connection:
            await connection.run_sync(_downgrade, "base")
        await asyncio.gather(migrate(first), migrate(second))
        assert await schema_revision(second) == (
            ScriptDirectory.from_config(alembic_config()).get_current_head()
        )
        async with first.connect() as connection:
            assert await connection.run_sync(_diff) == []
    finally:
        await first.dispose()
        await second.dispose()


async def test_the_migrated_schema_matches_the_metadata(migrated_engine: AsyncEngine) -> None:
    """Autogenerate finds nothing to change between the head revision and storage.schema."""
    async with migrated_engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_migrating_again_changes_nothing(engine: AsyncEngine) -> None:
    """A second migrate() on an up-to-date database is a no-op."""
    await migrate(engine)
    async with engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_downgrade_removes_everything_and_upgrade_restores_it(
    migrated_engine: AsyncEngine,
) -> None:
    """Downgrading to base drops every table; upgrading again rebuilds them."""
    async with migrated_engine.begin() as connection:
        await connection.run_sync(_downgrade, "base")
    async with migrated_engine.connect() as connection:
        left = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
    assert left & TABLES == set()
    await migrate(migrated_engine)
    async with migrated_engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_downgrade_to_the_first_revision_removes_the_lifecycle_schema(
    migrated_engine: AsyncEngine,
) -> None:
    """Going back to 0001 drops the lifecycle tables, columns and index; upgrading restores."""
    async with migrated_engine.begin() as connection:
        await connection.run_sync(_downgrade, "0001")
    async with migrated_engine.connect() as connection:
        tables, vehicle_columns, grant_indexes = await connection.run_sync(_layout)
    assert tables & TABLES == FIRST_TABLES
    assert vehicle_columns & LIFECYCLE_COLUMNS == set()
    assert "ix_smartcar_grants_refresh_expires_at" not in grant_indexes
    await migrate(migrated_engine)
    async with migrated_engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_downgrade_to_the_lifecycle_revision_removes_the_audit_log(
    migrated_engine: AsyncEngine,
) -> None:
    """Going back to 0002 drops audit_log and nothing else; upgrading restores it."""
    async with migrated_engine.begin() as connection:
        await connection.run_sync(_downgrade, "0002")
    async with migrated_engine.connect() as connection:
        tables, _, _ = await connection.run_sync(_layout)
    assert tables & TABLES == FIRST_TABLES | LIFECYCLE_TABLES
    await migrate(migrated_engine)
    async with migrated_engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_downgrade_to_command_outcomes_removes_the_application_tokens(
    migrated_engine: AsyncEngine,
) -> None:
    """Going back to 0006 drops smartcar_application_tokens and what came after it (the
    rental readings, the vehicle events) and nothing else; upgrading restores them."""
    async with migrated_engine.begin() as connection:
        await connection.run_sync(_downgrade, "0006")
    async with migrated_engine.connect() as connection:
        tables, _, _ = await connection.run_sync(_layout)
    assert tables & TABLES == (
        TABLES - APPLICATION_TOKEN_TABLES - RENTAL_READING_TABLES - EVENT_TABLES
    )
    await migrate(migrated_engine)
    async with migrated_engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_downgrade_below_rental_readings_keeps_the_rentals(tmp_path: Path) -> None:
    """Going back to 0008 drops the rental readings, their chases and the rentals' listing
    indexes, and keeps the rentals; upgrading again restores the schema, the rentals
    without readings."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'down.db'}")
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO vehicles (id, status, permissions) VALUES ('v1', 'ACTIVE', '[]')")
            )
            await connection.execute(
                text(
                    "INSERT INTO rentals (rental_id, vehicle_id, started_at, ended_at) VALUES"
                    " ('r1', 'v1', '2026-03-10 11:00:00', '2026-03-10 12:00:00')"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO rental_final_readings (rental_id, state, attempts) VALUES"
                    " ('r1', 'PENDING', 0)"
                )
            )
            await connection.run_sync(_downgrade, "0008")
        async with engine.connect() as connection:
            tables, _, _ = await connection.run_sync(_layout)
            indexes = await connection.run_sync(
                lambda c: {str(i["name"]) for i in inspect(c).get_indexes("rentals")}
            )
            rentals = (await connection.execute(text("SELECT rental_id FROM rentals"))).all()
        assert tables & TABLES == TABLES - RENTAL_READING_TABLES - EVENT_TABLES
        assert indexes == {"uq_rentals_active_vehicle"}
        assert [row[0] for row in rentals] == ["r1"]
        await migrate(engine)
        async with engine.connect() as connection:
            assert await connection.run_sync(_diff) == []
    finally:
        await engine.dispose()


async def test_downgrade_below_webhook_failures_keeps_failed_events_out_of_pending(
    tmp_path: Path,
) -> None:
    """Going back to 0004 turns failed events into applied ones, so older code does not
    retry them; pending ones stay pending."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'down.db'}")
    try:
        await migrate(engine)
        async with engine.begin() as connection:
            for event_id, failed_at in (("e-failed", "2026-03-10 12:00:00"), ("e-wait", None)):
                await connection.execute(
                    text(
                        "INSERT INTO webhook_events (event_id, event_type, received_at, payload,"
                        " failed_at) VALUES (:event_id, 'VEHICLE_STATE',"
                        " '2026-03-10 11:00:00', '{}', :failed_at)"
                    ),
                    {"event_id": event_id, "failed_at": failed_at},
                )
            await connection.run_sync(_downgrade, "0004")
        async with engine.connect() as connection:
            rows = await connection.execute(
                text("SELECT event_id, applied_at FROM webhook_events ORDER BY event_id")
            )
            applied = {event_id: applied_at is not None for event_id, applied_at in rows}
        assert applied == {"e-failed": True, "e-wait": False}
    finally:
        await engine.dispose()


async def test_upgrading_keeps_existing_vehicles_with_no_failures(
    tmp_path: Path, cipher: TokenCipher
) -> None:
    """A vehicle written under 0001 reads back after the upgrade: not asleep, no failures."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate(engine, "0001")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO vehicles (id, status, permissions) "
                    "VALUES ('v1', 'NOT_CONNECTED', '[]')"
                )
            )
        await migrate(engine)
        async with unit_of_work_factory(engine, cipher)() as uow:
            assert await uow.vehicles.get("v1") == bare_vehicle("v1")
    finally:
        await engine.dispose()


async def test_upgrading_makes_existing_connections_v2_with_their_grants_owner(
    tmp_path: Path, cipher: TokenCipher
) -> None:
    """Connections made before 0007 are v2 ones, and each learns its owner's Smartcar user
    id from its grant; a vehicle without a grant gets none."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate(engine, "0006")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO smartcar_grants (id, smartcar_user_id, tokens, key_id,"
                    " access_expires_at, refresh_expires_at, version) VALUES ('g1', 'user-1',"
                    " x'00', 'k', '2026-03-10 12:00:00', '2026-05-10 12:00:00', 1)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO vehicles (id, status, permissions, grant_id, smartcar_vehicle_id)"
                    " VALUES ('v1', 'ACTIVE', '[]', 'g1', 'sc-1'),"
                    " ('v2', 'NOT_CONNECTED', '[]', NULL, NULL)"
                )
            )
        await migrate(engine)
        async with unit_of_work_factory(engine, cipher)() as uow:
            linked, bare = await uow.vehicles.get("v1"), await uow.vehicles.get("v2")
        assert linked is not None
        assert bare is not None
        assert (linked.api, linked.smartcar_user_id) == (SmartcarApi.V2, "user-1")
        assert (bare.api, bare.smartcar_user_id) == (SmartcarApi.V2, None)
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade, "0006")
            columns = (await connection.run_sync(_layout))[1]
        assert {"api", "smartcar_user_id"}.isdisjoint(columns)
    finally:
        await engine.dispose()


async def test_upgrading_leaves_every_car_on_the_fleets_allowance_and_unwarned(
    tmp_path: Path, cipher: TokenCipher
) -> None:
    """Cars and budget months written before 0009 read back with no allowance of their own
    and not warned (the next charge past 80 % reports them); going back to 0008 drops both
    columns and keeps the counts."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
    try:
        await migrate(engine, "0008")
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO vehicles (id, status, permissions) "
                    "VALUES ('v1', 'NOT_CONNECTED', '[]')"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO request_budget (vehicle_id, month, billed) "
                    "VALUES ('v1', '2026-03', 420)"
                )
            )
        await migrate(engine)
        async with unit_of_work_factory(engine, cipher)() as uow:
            assert await uow.vehicles.get("v1") == bare_vehicle("v1")
            charged = await uow.budget.charge("v1", "2026-03", 1, limit=None)  # not committed
        assert (charged.billed, charged.warned) == (421, False)
        async with engine.begin() as connection:
            await connection.run_sync(_downgrade, "0008")
            assert "request_allowance" not in (await connection.run_sync(_layout))[1]
            billed = await connection.execute(text("SELECT billed FROM request_budget"))
            assert billed.scalar_one() == 420
    finally:
        await engine.dispose()


async def test_active_rental_index_is_partial(engine: AsyncEngine) -> None:
    """The unique index on rentals.vehicle_id only covers rentals that have not ended."""
    query = text("SELECT sql FROM sqlite_master WHERE name = 'uq_rentals_active_vehicle'")
    async with engine.connect() as connection:
        ddl = (await connection.execute(query)).scalar_one()
    assert "UNIQUE" in ddl
    assert "WHERE ended_at IS NULL" in ddl
