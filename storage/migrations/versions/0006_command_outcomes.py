"""Index commands by state and creation, so the reconciler finds open outcomes cheaply.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29

The commands table is also the audit trail of every Lock/Unlock, so it grows without end;
the reconciler asks it every pass for the few commands whose outcome is still open
(OUTCOME_UNKNOWN, or PENDING left by a worker that stopped).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ix_commands_state_created_at."""
    op.create_index(op.f("ix_commands_state_created_at"), "commands", ["state", "created_at"])


def downgrade() -> None:
    """Drop ix_commands_state_created_at."""
    op.drop_index(op.f("ix_commands_state_created_at"), table_name="commands")
