"""What a car waiting for its owner must have done: vehicles.owner_* (status
NEEDS_REAUTHENTICATION).

Smartcar's CONNECTED_SERVICES_ACCOUNT errors make a car wait for its owner; these columns
keep what Smartcar asked for: its `TYPE:CODE` (`owner_error`), resolution type and URL,
documentation page and message for the owner, whether only commands are concerned, and when
the scheduler last probed whether the owner acted. NULL (false) for every existing car: none
waits yet. Plain ADD/DROP COLUMN, as in 0009.

Going back, the older code knows no NEEDS_REAUTHENTICATION: such cars become ERROR (served
again, ACTIVE at the next answer), and their recorded transitions name ERROR instead.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT_COLUMNS = (
    "owner_error",
    "owner_resolution_type",
    "owner_resolution_url",
    "owner_doc_url",
    "owner_message",
)


def upgrade() -> None:
    """Add the owner_* columns, all NULL (owner_commands_only false)."""
    for name in _TEXT_COLUMNS:
        op.add_column("vehicles", sa.Column(name, sa.Text(), nullable=True))
    op.add_column(
        "vehicles",
        sa.Column("owner_commands_only", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "vehicles", sa.Column("owner_probed_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    """Turn waiting cars ERROR (in their history too), then drop the columns."""
    reason = "NEEDS_REAUTHENTICATION is unknown to this version: the owner may still need to act"
    op.execute(
        sa.text(
            "UPDATE vehicles SET status = 'ERROR', status_reason = :reason "
            "WHERE status = 'NEEDS_REAUTHENTICATION'"
        ).bindparams(reason=reason)
    )
    for column in ("from_status", "to_status"):
        op.execute(
            f"UPDATE status_transitions SET {column} = 'ERROR' "  # noqa: S608 - fixed names
            f"WHERE {column} = 'NEEDS_REAUTHENTICATION'"
        )
    for name in ("owner_probed_at", "owner_commands_only"):
        op.drop_column("vehicles", name)
    for name in reversed(_TEXT_COLUMNS):
        op.drop_column("vehicles", name)
