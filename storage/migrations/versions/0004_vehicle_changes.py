"""Index vehicles by updated_at, so replicas can ask which vehicles changed recently.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ix_vehicles_updated_at."""
    op.create_index(op.f("ix_vehicles_updated_at"), "vehicles", ["updated_at"])


def downgrade() -> None:
    """Drop ix_vehicles_updated_at."""
    op.drop_index(op.f("ix_vehicles_updated_at"), table_name="vehicles")
