"""Webhook events that could not be applied: webhook_events.failed_at.

An event that fails is marked failed (with its reason in `error`) instead of staying pending,
so it never blocks start-up again. Plain ADD/DROP COLUMN, as in 0002.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add webhook_events.failed_at."""
    op.add_column(
        "webhook_events", sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Drop webhook_events.failed_at; failed events become applied ones (with their reason in
    `error`), so the older code does not retry what failed."""
    op.execute("UPDATE webhook_events SET applied_at = failed_at WHERE failed_at IS NOT NULL")
    op.drop_column("webhook_events", "failed_at")
