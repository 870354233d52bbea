"""A car's own monthly request allowance, and the budget warning: vehicles.request_allowance,
request_budget.warned_at.

`request_allowance` is NULL for every existing car (the fleet's allowance applies).
`warned_at` is NULL for every existing month: a car already past the warning share is
reported once more, at its next billed request. Plain ADD/DROP COLUMN, as in 0007.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add vehicles.request_allowance and request_budget.warned_at, both nullable."""
    op.add_column("vehicles", sa.Column("request_allowance", sa.Integer(), nullable=True))
    op.add_column(
        "request_budget", sa.Column("warned_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Drop both columns: every car falls back to the fleet's allowance."""
    op.drop_column("request_budget", "warned_at")
    op.drop_column("vehicles", "request_allowance")
