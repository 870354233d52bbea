"""The whole simulated world of one simulator: the one object every HTTP handler works on.

It owns the settings (replaced whole by `/sim/config`), the simulated clock, the garage of
vehicles, the accounts (users, connections, tokens), the application's V3 credentials
(`iam`), the limits, the armed faults (and the answers they hold), the webhooks and their
V3 subscriptions, and the stats, plus the event that tells sleeping handlers (latency,
hangs, holds) the server is stopping. All of it lives on the server's
event loop; handlers never share it across threads.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from clients.simulator.accounts import Accounts, TokenLifetimes
from clients.simulator.clock import SimClock
from clients.simulator.config import SimulatorConfig
from clients.simulator.faults import FaultBook
from clients.simulator.holds import Holds
from clients.simulator.iam import Iam
from clients.simulator.limits import Limits
from clients.simulator.stats import Stats
from clients.simulator.subscriptions import Subscription, Subscriptions
from clients.simulator.vehicles import Garage, VehicleState
from clients.simulator.webhooks import Webhooks


class World:
    """Settings, time, vehicles, accounts, limits, faults, webhooks and stats of a simulator."""

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.clock = SimClock(config.start_at_s)
        now_s = self.clock.now_s()
        self.garage = Garage(seed=config.seed, catalog_size=config.vehicles, now_s=now_s)
        self.accounts = Accounts(seed=config.seed)
        self.iam = Iam(
            client_secret=config.client_secret, additional=config.additional_client_secrets
        )
        self.limits = Limits(
            vehicle=config.vehicle_rate_limit,
            app=config.app_rate_limit,
            monthly=config.monthly_request_limit,
        )
        self.faults = FaultBook()
        self.holds = Holds()
        self.stats = Stats()
        self.stopping = asyncio.Event()
        self.webhooks = Webhooks(self)
        self.subscriptions = Subscriptions()

    @property
    def lifetimes(self) -> TokenLifetimes:
        """Return the current code and token lifetimes."""
        config = self.config
        return TokenLifetimes(
            access_ttl_s=config.access_ttl_s,
            refresh_ttl_s=config.refresh_ttl_s,
            refresh_grace_s=config.refresh_grace_s,
            code_ttl_s=config.code_ttl_s,
        )

    def reconfigure(self, changes: dict[str, object]) -> SimulatorConfig:
        """Apply a runtime settings update (raises ConfigError naming a bad field)."""
        self.config = self.config.updated(changes)
        self.limits.reconfigure(
            vehicle=self.config.vehicle_rate_limit,
            app=self.config.app_rate_limit,
            monthly=self.config.monthly_request_limit,
        )
        return self.config

    def next_unowned_vehicle(self) -> VehicleState:
        """Return the first catalog vehicle without an owner, growing the catalog if needed."""
        for vehicle in self.garage.catalog():
            if vehicle.id not in self.accounts.owners:
                return vehicle
        return self.garage.extend_catalog(now_s=self.clock.now_s())

    def issued_secrets(self) -> list[str]:
        """Return every code, access, refresh and application token ever issued (a testing
        hook: leak scans look for them in a client's logs, database and answers)."""
        return [*self.accounts.issued_secrets(), *self.iam.tokens.issued_secrets()]

    def subscriptions_in_force(self) -> list[Subscription]:
        """Return the subscriptions that still hold: their webhook is registered and the
        connection they were made on still exists (spent ones are dropped)."""
        connections = self.accounts.connections

        def holds(subscription: Subscription) -> bool:
            connection = connections.get((subscription.user_id, subscription.vehicle_id))
            return (
                connection is not None
                and connection.serial == subscription.connection_serial
                and self.webhooks.get(subscription.webhook_id) is not None
            )

        return self.subscriptions.prune(holds)

    def vehicles_json(self) -> list[dict[str, Any]]:
        """Return every vehicle with its owner and connections, as `/sim/vehicles` lists them."""
        accounts = self.accounts
        return [
            vehicle.to_json(
                owner_user_id=accounts.owners.get(vehicle.id),
                connected_user_ids=accounts.users_of(vehicle.id),
            )
            for vehicle in self.garage.all()
        ]

    def stats_json(self) -> dict[str, Any]:
        """Return the stats snapshot, with this month's billed requests per vehicle."""
        billed = self.limits.allowance.this_month(now_s=self.clock.now_s())
        return self.stats.snapshot(billed_this_month=billed)

    async def pause(self, seconds: float) -> None:
        """Wait `seconds` of real time, or less if the server starts stopping."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)
