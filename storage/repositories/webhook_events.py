"""Received Smartcar webhook events in the `webhook_events` table, deduplicated by event id.

A delivery is stored with INSERT … ON CONFLICT DO NOTHING: a redelivered event writes
nothing and raises nothing, so the transaction goes on (no savepoint needed).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import WebhookEvent
from storage.repositories._dialects import conflict_insert
from storage.schema import webhook_events

_events = webhook_events.c


class SqlWebhookEventRepository:
    """Webhook events by id, and the ones not applied yet."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, event: WebhookEvent) -> bool:
        """Store a new event; False (and nothing written) if its id was seen before."""
        statement = (
            conflict_insert(self._connection, webhook_events)
            .values(
                event_id=event.event_id,
                event_type=event.event_type,
                smartcar_vehicle_id=event.smartcar_vehicle_id,
                received_at=event.received_at,
                payload=dict(event.payload),
                applied_at=event.applied_at,
                error=event.error,
                failed_at=event.failed_at,
            )
            .on_conflict_do_nothing(index_elements=[_events.event_id])
            .returning(_events.event_id)
        )
        return (await self._connection.execute(statement)).one_or_none() is not None

    async def mark_applied(self, event_id: str, *, at: datetime, error: str | None) -> None:
        """Record that the event was applied at `at` (`error`: what was skipped or rejected);
        LookupError if there is no such event."""
        await self._mark(event_id, applied_at=at, failed_at=None, error=error)

    async def mark_failed(self, event_id: str, *, at: datetime, reason: str) -> None:
        """Record that the event could not be applied, and why; LookupError if unknown."""
        await self._mark(event_id, applied_at=None, failed_at=at, error=reason)

    async def _mark(self, event_id: str, **values: object) -> None:
        statement = update(webhook_events).where(_events.event_id == event_id).values(**values)
        result = await self._connection.execute(statement)
        if result.rowcount == 0:
            raise LookupError(f"no webhook event {event_id!r} to mark")

    async def get(self, event_id: str) -> WebhookEvent | None:
        """Return the stored event with this id, whatever its state, or None."""
        query = select(webhook_events).where(_events.event_id == event_id)
        row = (await self._connection.execute(query)).one_or_none()
        return None if row is None else _to_event(row)

    async def pending(self, *, limit: int) -> list[WebhookEvent]:
        """Return stored events neither applied nor failed, oldest first (then by id)."""
        query = (
            select(webhook_events)
            .where(_events.applied_at.is_(None), _events.failed_at.is_(None))
            .order_by(_events.received_at, _events.event_id)
            .limit(max(limit, 0))
        )
        return [_to_event(row) for row in await self._connection.execute(query)]


def _to_event(row: Row[Any]) -> WebhookEvent:
    """Return the event a row holds."""
    columns = row._mapping
    return WebhookEvent(
        event_id=columns["event_id"],
        event_type=columns["event_type"],
        smartcar_vehicle_id=columns["smartcar_vehicle_id"],
        received_at=columns["received_at"],
        payload=columns["payload"],
        applied_at=columns["applied_at"],
        error=columns["error"],
        failed_at=columns["failed_at"],
    )
