"""Feed notifications: on PostgreSQL, a NOTIFY for each statement that inserts into
status_transitions or vehicle_events.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-29

Replicas watching those tables (WatchVehicles, WatchVehicleEvents) LISTEN on channel
`vehicle_gateway_feed` (`storage.notifications`) and read at once instead of at their next
poll. The trigger runs inside the inserting transaction and PostgreSQL delivers its
notification only when that transaction commits, never for one rolled back, so a
notification always announces a committed row; its payload is the table's name, and a
transaction's notifications with equal payloads are delivered as one. Statement-level, so
a bulk insert costs one call. SQLite has no notifications: nothing changes there (the
process that commits wakes its own watchers, see `storage.uow`). Self-contained like the
others: the channel name is repeated here, not imported.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTION = "vehicle_gateway_feed_notify"
_TABLES = ("status_transitions", "vehicle_events")


def _on_postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    """Create the notifying function and one statement trigger per feed table."""
    if not _on_postgresql():
        return
    op.execute(
        f"""
        CREATE FUNCTION {_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('vehicle_gateway_feed', TG_TABLE_NAME);
            RETURN NULL;
        END
        $$
        """
    )
    for table in _TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_feed_notify AFTER INSERT ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
        )


def downgrade() -> None:
    """Drop the triggers and the function."""
    if not _on_postgresql():
        return
    for table in _TABLES:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_feed_notify ON {table}")
    op.execute(f"DROP FUNCTION IF EXISTS {_FUNCTION}()")
