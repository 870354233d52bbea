"""Vehicle events: vehicle_events, vehicle_event_latches, vehicle_event_horizon.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

`vehicle_events` is the outbox WatchVehicleEvents streams: one row per event, written in
the transaction of the change it reports, ids increasing (64-bit on PostgreSQL; on SQLite
an AUTOINCREMENT rowid, never reused even once retention has emptied the table).
`vehicle_event_latches` holds the low fuel and charge events reported and not re-armed yet;
`vehicle_event_horizon` how far retention has deleted events. Nothing is backfilled: the
stream starts with the first change after the upgrade. Self-contained like the others.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _event_id() -> sa.types.TypeEngine[int]:
    """An event id: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the three tables."""
    op.create_table(
        "vehicle_events",
        sa.Column("id", _event_id(), sa.Identity(), nullable=False),
        sa.Column("vehicle_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rental_id", sa.String(length=128), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(none_as_null=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vehicle_events")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "vehicle_event_latches",
        sa.Column("vehicle_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("latched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("vehicle_id", "kind", name=op.f("pk_vehicle_event_latches")),
    )
    op.create_table(
        "vehicle_event_horizon",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("pruned_through", _event_id(), nullable=False),
        sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_vehicle_event_horizon")),
    )


def downgrade() -> None:
    """Drop the three tables (the events are lost)."""
    op.drop_table("vehicle_event_horizon")
    op.drop_table("vehicle_event_latches")
    op.drop_table("vehicle_events")
