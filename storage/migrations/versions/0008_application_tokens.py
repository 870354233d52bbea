"""The API V3 application token: smartcar_application_tokens.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29

One row per Smartcar client id: the application token (client credentials, one hour,
shared by the whole fleet) as an AES-256-GCM ciphertext with its key id, its issue and
expiry times, and the version and claim that make one grant per expiry across replicas.
Self-contained like the others (plain SQLAlchemy types only).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLE = "smartcar_application_tokens"


def upgrade() -> None:
    """Create smartcar_application_tokens."""
    op.create_table(
        _TABLE,
        sa.Column("client_id", sa.String(length=128), nullable=False),
        sa.Column("token", sa.LargeBinary(), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("client_id", name=op.f(f"pk_{_TABLE}")),
    )


def downgrade() -> None:
    """Drop smartcar_application_tokens (the next grant after an upgrade makes a new token)."""
    op.drop_table(_TABLE)
