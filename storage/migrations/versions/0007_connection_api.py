"""Which Smartcar API serves each connection, and its owner: vehicles.api, smartcar_user_id.

Every connection made before this is a v2 one (`api` 'v2'). Its owner's Smartcar user id
is copied from its grant, so a connection moving to API V3 (which names the owner on every
request) knows it already. Plain ADD/DROP COLUMN, as in 0002.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add vehicles.api (v2 for every existing row) and vehicles.smartcar_user_id (from the
    vehicle's grant)."""
    op.add_column("vehicles", sa.Column("api", sa.String(8), nullable=False, server_default="v2"))
    op.add_column("vehicles", sa.Column("smartcar_user_id", sa.String(128), nullable=True))
    op.create_index("ix_vehicles_smartcar_user_id", "vehicles", ["smartcar_user_id"])
    op.execute(
        "UPDATE vehicles SET smartcar_user_id = (SELECT g.smartcar_user_id FROM smartcar_grants g"
        " WHERE g.id = vehicles.grant_id) WHERE grant_id IS NOT NULL"
    )


def downgrade() -> None:
    """Drop both columns. Only v2 connections can go back: the older code has no V3."""
    op.drop_index("ix_vehicles_smartcar_user_id", table_name="vehicles")
    op.drop_column("vehicles", "smartcar_user_id")
    op.drop_column("vehicles", "api")
