"""Webhook subscriptions made through the API V3 Management API (`POST /v3/subscriptions`).

A subscription sends one vehicle's events, as one user's connection to it, to one webhook.
It holds only while that connection does: it records the connection's serial, and once the
connection is removed (the owner revoked it, the application deleted it or the user)
the subscription no longer counts, even when the user connects the vehicle again (a new
serial: Smartcar forgets a disconnected vehicle's subscriptions; the application
subscribes it again). Such spent subscriptions are dropped when next looked at.

Webhooks registered under `/sim/webhooks` with a list of vehicles (or "all") receive those
vehicles' events as well: that list stands for the dashboard's subscriptions and
auto-subscription, and is not listed here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Subscription:
    """One vehicle's events, as one user's connection to it, going to one webhook."""

    id: str
    webhook_id: str
    user_id: str
    vehicle_id: str
    connection_serial: int
    created_at_s: float


class Subscriptions:
    """Every subscription of one simulator, oldest first."""

    def __init__(self) -> None:
        self._items: dict[str, Subscription] = {}

    def add(
        self,
        *,
        webhook_id: str,
        user_id: str,
        vehicle_id: str,
        connection_serial: int,
        now_s: float,
    ) -> Subscription:
        """Record a new subscription and return it."""
        subscription = Subscription(
            id=str(uuid.uuid4()),
            webhook_id=webhook_id,
            user_id=user_id,
            vehicle_id=vehicle_id,
            connection_serial=connection_serial,
            created_at_s=now_s,
        )
        self._items[subscription.id] = subscription
        return subscription

    def get(self, subscription_id: str) -> Subscription | None:
        """Return the subscription with this id."""
        return self._items.get(subscription_id)

    def remove(self, subscription_id: str) -> bool:
        """Remove a subscription; return whether there was one."""
        return self._items.pop(subscription_id, None) is not None

    def prune(self, holds: Callable[[Subscription], bool]) -> list[Subscription]:
        """Drop the subscriptions that no longer hold; return those that do."""
        spent = [s.id for s in self._items.values() if not holds(s)]
        for subscription_id in spent:
            del self._items[subscription_id]
        return list(self._items.values())

    def to_json(self) -> list[dict[str, Any]]:
        """Return every subscription as JSON-ready data."""
        return [dataclasses.asdict(s) for s in self._items.values()]

    @classmethod
    def from_json(cls, data: list[dict[str, Any]]) -> Subscriptions:
        """Rebuild what `to_json` returned (raises TypeError/ValueError on a malformed one)."""
        subscriptions = cls()
        for item in data:
            subscription = Subscription(
                id=str(item["id"]),
                webhook_id=str(item["webhook_id"]),
                user_id=str(item["user_id"]),
                vehicle_id=str(item["vehicle_id"]),
                connection_serial=int(item["connection_serial"]),
                created_at_s=float(item["created_at_s"]),
            )
            subscriptions._items[subscription.id] = subscription
        return subscriptions
