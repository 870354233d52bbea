"""Fleet lifecycle: vehicle health columns, status history, request budget, leases, webhooks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29

Self-contained like 0001 (plain SQLAlchemy types only). Columns are added and dropped with
plain ALTER TABLE, which SQLite (3.35+, as RETURNING already requires) and PostgreSQL both
run in place: batch mode would copy `vehicles`, which other tables' foreign keys point at.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_VEHICLE_COLUMNS = ("asleep_until", "failure_count", "last_error")
_TABLES = ("webhook_events", "scheduler_leases", "request_budget", "status_transitions")


def _time(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    """Return a timezone-aware time column."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _id(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    """Return an id column."""
    return sa.Column(name, sa.String(length=128), nullable=nullable)


def _vehicle_fk(table: str) -> sa.ForeignKeyConstraint:
    """Return the foreign key from `table`.vehicle_id to vehicles.id."""
    return sa.ForeignKeyConstraint(
        ["vehicle_id"], ["vehicles.id"], name=op.f(f"fk_{table}_vehicle_id_vehicles")
    )


def upgrade() -> None:
    """Add the vehicle and grant columns and indexes, then the four new tables."""
    op.add_column("vehicles", _time("asleep_until"))
    # Existing vehicles start with no failures; the default fills their rows.
    op.add_column(
        "vehicles",
        sa.Column("failure_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("vehicles", sa.Column("last_error", sa.Text(), nullable=True))
    op.create_index(
        op.f("ix_smartcar_grants_refresh_expires_at"), "smartcar_grants", ["refresh_expires_at"]
    )
    _create_status_transitions()
    _create_budget_and_leases()
    _create_webhook_events()


def _create_status_transitions() -> None:
    """Create status_transitions: the audit trail of connection status changes."""
    op.create_table(
        "status_transitions",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        _id("vehicle_id"),
        sa.Column("from_status", sa.String(length=32), nullable=False),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _time("at", nullable=False),
        _vehicle_fk("status_transitions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_transitions")),
    )
    op.create_index(
        op.f("ix_status_transitions_vehicle_id_id"), "status_transitions", ["vehicle_id", "id"]
    )


def _create_budget_and_leases() -> None:
    """Create request_budget (billed requests per vehicle and month) and scheduler_leases."""
    op.create_table(
        "request_budget",
        _id("vehicle_id"),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("billed", sa.Integer(), nullable=False),
        _vehicle_fk("request_budget"),
        sa.PrimaryKeyConstraint("vehicle_id", "month", name=op.f("pk_request_budget")),
    )
    op.create_table(
        "scheduler_leases",
        _id("name"),
        _id("holder"),
        _time("expires_at", nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )


def _create_webhook_events() -> None:
    """Create webhook_events: deliveries by event id, and whether each was applied."""
    op.create_table(
        "webhook_events",
        _id("event_id"),
        sa.Column("event_type", sa.String(length=128), nullable=False),
        _id("smartcar_vehicle_id", nullable=True),
        _time("received_at", nullable=False),
        sa.Column("payload", sa.JSON(none_as_null=True), nullable=False),
        _time("applied_at"),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_webhook_events")),
    )
    op.create_index(
        op.f("ix_webhook_events_applied_at_received_at"),
        "webhook_events",
        ["applied_at", "received_at"],
    )


def downgrade() -> None:
    """Drop the new tables (with their indexes), the grant index and the vehicle columns."""
    for table in _TABLES:
        op.drop_table(table)
    op.drop_index(op.f("ix_smartcar_grants_refresh_expires_at"), table_name="smartcar_grants")
    for column in _VEHICLE_COLUMNS:
        op.drop_column("vehicles", column)
