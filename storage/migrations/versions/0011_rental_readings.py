"""Rental readings: rental_readings, rental_final_readings, and rentals indexed for listing.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29

`rental_readings` keeps the reading of each field taken at a rental's start and end (value,
availability, when the car recorded it, when the gateway fetched it, where it came from,
when the rental took it); `rental_final_readings` the chase of an ended rental's final
reading (state, attempts, next attempt). Rentals ended before this revision have no
readings and no chase: they list without readings, never pending. Three indexes on
`rentals` serve ListRentals. Self-contained like the others (plain SQLAlchemy types only).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RENTAL_INDEXES = (
    ("ix_rentals_started_at_rental_id", ["started_at", "rental_id"]),
    ("ix_rentals_vehicle_id_started_at_rental_id", ["vehicle_id", "started_at", "rental_id"]),
    ("ix_rentals_ended_at", ["ended_at"]),
)


def _time(name: str, *, nullable: bool = True) -> sa.Column[Any]:
    """Return a timezone-aware time column."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _rental_fk(table: str) -> sa.ForeignKeyConstraint:
    """Return the foreign key from `table`.rental_id to rentals.rental_id."""
    return sa.ForeignKeyConstraint(
        ["rental_id"], ["rentals.rental_id"], name=op.f(f"fk_{table}_rental_id_rentals")
    )


def upgrade() -> None:
    """Create the two tables and the rentals' listing indexes."""
    for name, columns in _RENTAL_INDEXES:
        op.create_index(op.f(name), "rentals", columns)
    op.create_table(
        "rental_readings",
        sa.Column("rental_id", sa.String(length=128), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("availability", sa.String(length=32), nullable=False),
        sa.Column("value", sa.JSON(none_as_null=True), nullable=True),
        _time("recorded_at"),
        _time("fetched_at"),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        _time("taken_at", nullable=False),
        _rental_fk("rental_readings"),
        sa.PrimaryKeyConstraint("rental_id", "phase", "field", name=op.f("pk_rental_readings")),
    )
    op.create_table(
        "rental_final_readings",
        sa.Column("rental_id", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _time("last_attempt_at"),
        _time("next_attempt_at"),
        _time("settled_at"),
        sa.Column("reason", sa.Text(), nullable=True),
        _rental_fk("rental_final_readings"),
        sa.PrimaryKeyConstraint("rental_id", name=op.f("pk_rental_final_readings")),
    )
    op.create_index(
        op.f("ix_rental_final_readings_state_next_attempt_at"),
        "rental_final_readings",
        ["state", "next_attempt_at"],
    )


def downgrade() -> None:
    """Drop the two tables (the readings and chases are lost) and the listing indexes."""
    op.drop_index(
        op.f("ix_rental_final_readings_state_next_attempt_at"),
        table_name="rental_final_readings",
    )
    op.drop_table("rental_final_readings")
    op.drop_table("rental_readings")
    for name, _ in reversed(_RENTAL_INDEXES):
        op.drop_index(op.f(name), table_name="rentals")
