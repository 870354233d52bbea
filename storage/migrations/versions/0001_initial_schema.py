"""The first schema: grants, vehicles, telemetry, rentals, commands, OAuth states.

Revision ID: 0001
Revises:
Create Date: 2026-11-22

Self-contained on purpose: a revision must keep creating the schema it created, whatever
later becomes of storage.schema, so it uses only plain SQLAlchemy types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    """Return a timezone-aware time column."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _stamp(name: str) -> sa.Column[Any]:
    """Return a row time stamp filled by the database."""
    return sa.Column(name, sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def _id(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """Return an id column."""
    return sa.Column(name, sa.String(length=128), nullable=nullable)


def _vehicle_fk(table: str) -> sa.ForeignKeyConstraint:
    """Return the foreign key from `table`.vehicle_id to vehicles.id."""
    return sa.ForeignKeyConstraint(
        ["vehicle_id"], ["vehicles.id"], name=op.f(f"fk_{table}_vehicle_id_vehicles")
    )


def upgrade() -> None:
    """Create every table."""
    _create_grants()
    _create_vehicles()
    _create_vehicle_history()


def _create_grants() -> None:
    """Create smartcar_grants: one Smartcar user's encrypted token pair."""
    op.create_table(
        "smartcar_grants",
        _id("id"),
        _id("smartcar_user_id"),
        sa.Column("tokens", sa.LargeBinary(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        _time("access_expires_at", nullable=False),
        _time("refresh_expires_at", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _time("refresh_claimed_until"),
        _stamp("created_at"),
        _stamp("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smartcar_grants")),
    )
    op.create_index(
        op.f("ix_smartcar_grants_smartcar_user_id"), "smartcar_grants", ["smartcar_user_id"]
    )


def _create_vehicles() -> None:
    """Create vehicles: the fleet's cars and their connection panel."""
    op.create_table(
        "vehicles",
        _id("id"),
        _id("smartcar_vehicle_id", nullable=True),
        _id("grant_id", nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        _time("status_changed_at"),
        sa.Column("make", sa.String(length=128), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=True),
        sa.Column("year", sa.Integer(), nullable=True),
        sa.Column("vin", sa.String(length=32), nullable=True),
        sa.Column("permissions", sa.JSON(none_as_null=True), nullable=False),
        sa.Column("last_command_action", sa.String(length=16), nullable=True),
        _id("last_command_request_id", nullable=True),
        _time("last_command_at"),
        _time("last_telemetry_at"),
        _time("created_at"),
        _stamp("updated_at"),
        sa.ForeignKeyConstraint(
            ["grant_id"],
            ["smartcar_grants.id"],
            name=op.f("fk_vehicles_grant_id_smartcar_grants"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicles")),
        sa.UniqueConstraint("smartcar_vehicle_id", name=op.f("uq_vehicles_smartcar_vehicle_id")),
    )
    op.create_index(op.f("ix_vehicles_grant_id"), "vehicles", ["grant_id"])
    op.create_index(op.f("ix_vehicles_status"), "vehicles", ["status"])


def _create_vehicle_history() -> None:
    """Create the tables that hang off a vehicle: telemetry, rentals, commands, states."""
    op.create_table(
        "telemetry",
        _id("vehicle_id"),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("availability", sa.String(length=32), nullable=False),
        sa.Column("value", sa.JSON(none_as_null=True), nullable=True),
        _time("recorded_at"),
        _time("fetched_at"),
        sa.Column("reason", sa.Text(), nullable=True),
        _vehicle_fk("telemetry"),
        sa.PrimaryKeyConstraint("vehicle_id", "field", name=op.f("pk_telemetry")),
    )
    op.create_table(
        "rentals",
        _id("rental_id"),
        _id("vehicle_id"),
        _time("started_at", nullable=False),
        _time("ended_at"),
        _vehicle_fk("rentals"),
        sa.PrimaryKeyConstraint("rental_id", name=op.f("pk_rentals")),
    )
    active = sa.text("ended_at IS NULL")
    op.create_index(
        "uq_rentals_active_vehicle",
        "rentals",
        ["vehicle_id"],
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )
    op.create_table(
        "commands",
        _id("request_id"),
        _id("vehicle_id"),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        _time("created_at", nullable=False),
        _time("completed_at"),
        sa.Column("error", sa.JSON(none_as_null=True), nullable=True),
        _vehicle_fk("commands"),
        sa.PrimaryKeyConstraint("request_id", name=op.f("pk_commands")),
    )
    op.create_index(
        op.f("ix_commands_vehicle_id_created_at"), "commands", ["vehicle_id", "created_at"]
    )
    op.create_table(
        "oauth_states",
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        _id("vehicle_id"),
        _time("expires_at", nullable=False),
        _vehicle_fk("oauth_states"),
        sa.PrimaryKeyConstraint("state_hash", name=op.f("pk_oauth_states")),
    )


def downgrade() -> None:
    """Drop every table (and with them their indexes), dependents first."""
    for table in (
        "oauth_states",
        "commands",
        "rentals",
        "telemetry",
        "vehicles",
        "smartcar_grants",
    ):
        op.drop_table(table)
