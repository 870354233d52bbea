"""Charge commands: the limit a SET_CHARGE_LIMIT asked for, on commands.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

The commands table keeps StartCharge, StopCharge and SetChargeLimit beside Lock and
Unlock (their action names fit the existing 16 characters). A SetChargeLimit's request id
is bound to its limit too, so a retry with another limit is refused and an unknown
outcome is settled against the limit asked for: `charge_limit_percent`, NULL for every
other command (existing rows included, which are all locks and unlocks).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add commands.charge_limit_percent."""
    op.add_column("commands", sa.Column("charge_limit_percent", sa.Integer(), nullable=True))


def downgrade() -> None:
    """Drop commands.charge_limit_percent."""
    op.drop_column("commands", "charge_limit_percent")
