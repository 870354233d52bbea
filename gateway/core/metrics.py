"""Metrics hooks: what the core reports for operators. The metrics endpoint (an adapter)
implements `Metrics`; until one is wired, `NoMetrics` discards everything.

Status changes need no hook: every one is a recorded transition, which the metrics adapter
(like any watcher) reads from `gateway.core.watch.StatusFeed`. Vehicle events written are
counted by storage once their transaction commits (`vehicle_event`): an event exists only
if the change it reports committed, and so does its count."""

from __future__ import annotations

from typing import Protocol


class Metrics(Protocol):
    """Observations the core makes; every method must be cheap and never raise."""

    def scheduler_tick(self, *, polls: int, paths: int, lag_s: float) -> None:
        """A scheduler tick ended; `lag_s` is how overdue the most overdue field was."""

    def rental_final_reading(self, *, outcome: str, after_s: float) -> None:
        """An ended rental's final reading was settled, `after_s` after the rental ended:
        recorded (every field recorded after the end) or given_up."""

    def budget_spent(
        self, *, requests: int, month_total: int, allowance: int, projected_total: int
    ) -> None:
        """Billed requests were spent for one vehicle; its month total, allowance, and the
        month total its pace so far projects (`gateway.core.budget.projected_month_total`)."""

    def budget_warning(self) -> None:
        """A car's month reached the warning share of its allowance (once per car and month)."""

    def budget_refused(self, *, purpose: str) -> None:
        """The budget refused a read of `purpose` (`gateway.core.purpose.ReadPurpose`): it
        was answered from what is held, or refused."""

    def renewal(self, *, renewed: int, failed: int) -> None:
        """A refresh-token renewal pass ended."""

    def telemetry_read(self, *, cached: bool, coalesced: bool) -> None:
        """A telemetry read was answered from cache (`cached`), or needed Smartcar;
        `coalesced`: it waited for another caller's fetch and used its answer."""

    def rate_limited(self, *, limit: str) -> None:
        """An upstream call was refused by a rate limit (ours, or Smartcar's 429)."""

    def token_refresh(self, *, result: str) -> None:
        """A token refresh ended: ok, rejected (invalid_grant), failed, or lost (another
        worker rotated first); or its answer was lost and it is retried (retried)."""

    def application_token_grant(self, *, result: str) -> None:
        """An application token was asked for: ok, refused (the client credentials),
        failed (Smartcar unreachable or failing), or lost (another worker stored first)."""

    def webhook_event(self, *, outcome: str) -> None:
        """A stored webhook event was settled: applied, skipped (no linked vehicle, a type
        not handled) or failed (nothing applied; its row says why)."""

    def webhook_value_rejected(self, *, field: str) -> None:
        """A webhook event carried a value of `field` the gateway refused (out of range,
        wrong type, unknown unit); the event's other fields still applied."""

    def vehicle_event(self, *, kind: str) -> None:
        """A vehicle event of `kind` (`gateway.core.vehicle_events.VehicleEventKind`) was
        committed."""

    def watch_streams(self, *, rpc: str, open: int) -> None:
        """`open` streams of `rpc` (WatchVehicles, WatchVehicleEvents) are open on this
        replica now."""


class NoMetrics:
    """Discards every observation."""

    def scheduler_tick(self, *, polls: int, paths: int, lag_s: float) -> None:
        """Discard."""

    def rental_final_reading(self, *, outcome: str, after_s: float) -> None:
        """Discard."""

    def budget_spent(
        self, *, requests: int, month_total: int, allowance: int, projected_total: int
    ) -> None:
        """Discard."""

    def budget_warning(self) -> None:
        """Discard."""

    def budget_refused(self, *, purpose: str) -> None:
        """Discard."""

    def renewal(self, *, renewed: int, failed: int) -> None:
        """Discard."""

    def telemetry_read(self, *, cached: bool, coalesced: bool) -> None:
        """Discard."""

    def rate_limited(self, *, limit: str) -> None:
        """Discard."""

    def token_refresh(self, *, result: str) -> None:
        """Discard."""

    def application_token_grant(self, *, result: str) -> None:
        """Discard."""

    def webhook_event(self, *, outcome: str) -> None:
        """Discard."""

    def webhook_value_rejected(self, *, field: str) -> None:
        """Discard."""

    def vehicle_event(self, *, kind: str) -> None:
        """Discard."""

    def watch_streams(self, *, rpc: str, open: int) -> None:
        """Discard."""


NO_METRICS: Metrics = NoMetrics()


class RecordingMetrics:
    """Keeps every observation in lists; a testing hook that ships with the code."""

    def __init__(self) -> None:
        self.ticks: list[tuple[int, int, float]] = []
        self.final_readings: list[tuple[str, float]] = []
        self.spends: list[tuple[int, int, int]] = []
        self.projections: list[int] = []
        self.budget_warnings = 0
        self.budget_refusals: list[str] = []
        self.renewals: list[tuple[int, int]] = []
        self.reads: list[tuple[bool, bool]] = []
        self.refusals: list[str] = []
        self.refreshes: list[str] = []
        self.application_grants: list[str] = []
        self.webhook_events: list[str] = []
        self.webhook_rejections: list[str] = []
        self.vehicle_events: list[str] = []
        self.open_streams: dict[str, int] = {}

    def scheduler_tick(self, *, polls: int, paths: int, lag_s: float) -> None:
        """Record a tick."""
        self.ticks.append((polls, paths, lag_s))

    def rental_final_reading(self, *, outcome: str, after_s: float) -> None:
        """Record a settled final reading."""
        self.final_readings.append((outcome, after_s))

    def budget_spent(
        self, *, requests: int, month_total: int, allowance: int, projected_total: int
    ) -> None:
        """Record a spend (requests, month total, allowance) and its projected month."""
        self.spends.append((requests, month_total, allowance))
        self.projections.append(projected_total)

    def budget_warning(self) -> None:
        """Count a budget warning."""
        self.budget_warnings += 1

    def budget_refused(self, *, purpose: str) -> None:
        """Record a read the budget refused, by purpose."""
        self.budget_refusals.append(purpose)

    def renewal(self, *, renewed: int, failed: int) -> None:
        """Record a renewal pass."""
        self.renewals.append((renewed, failed))

    def telemetry_read(self, *, cached: bool, coalesced: bool) -> None:
        """Record a read."""
        self.reads.append((cached, coalesced))

    def rate_limited(self, *, limit: str) -> None:
        """Record a refusal."""
        self.refusals.append(limit)

    def token_refresh(self, *, result: str) -> None:
        """Record a refresh."""
        self.refreshes.append(result)

    def application_token_grant(self, *, result: str) -> None:
        """Record an application token grant's result."""
        self.application_grants.append(result)

    def webhook_event(self, *, outcome: str) -> None:
        """Record a settled webhook event's outcome."""
        self.webhook_events.append(outcome)

    def webhook_value_rejected(self, *, field: str) -> None:
        """Record a rejected webhook value's field."""
        self.webhook_rejections.append(field)

    def vehicle_event(self, *, kind: str) -> None:
        """Record a committed vehicle event's kind."""
        self.vehicle_events.append(kind)

    def watch_streams(self, *, rpc: str, open: int) -> None:
        """Record how many streams of `rpc` are open."""
        self.open_streams[rpc] = open
