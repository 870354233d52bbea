"""`Gateway`: the facade over the core's use cases, the one object the edge calls; it
implements the inbound port `gateway.core.inbound.GatewayAPI`.

Each use case hands over to the service that owns it. `gateway.core.assembly.build_gateway`
makes those services from the policies and puts this facade over them. Besides them the
facade holds the parts the composition root hands to other adapters: the background jobs
(`renewal`, `scheduler`, `reconciler`, `final_readings`, `audit_retention`,
`event_retention`), the audit
trail the gRPC call frame writes, and the telemetry cache and metrics the webhook receiver
shares.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.allowances import RequestAllowances
from gateway.core.audit import AuditRetention, AuditTrail
from gateway.core.budget import BudgetLedger
from gateway.core.cache import TelemetryCache
from gateway.core.commands import CommandService
from gateway.core.compatibility import CompatibilityService
from gateway.core.connections import ConnectionService
from gateway.core.event_feed import EventFeed
from gateway.core.event_retention import EventRetention
from gateway.core.final_readings import FinalReadings
from gateway.core.metrics import Metrics
from gateway.core.model import (
    CommandAction,
    CommandResult,
    CompatibilityReport,
    ConnectFailure,
    ConnectionStatus,
    ConnectUrl,
    RentalPage,
    RentalRecord,
    StatusTransition,
    Telemetry,
    TelemetryField,
    VehiclePage,
    VehiclePanel,
)
from gateway.core.ratelimit import Admission
from gateway.core.reconcile import CommandReconciler
from gateway.core.renewal import TokenRenewal
from gateway.core.rental_queries import RentalQueries
from gateway.core.rentals import RentalService
from gateway.core.rotation import TokenRotator
from gateway.core.scheduler import TelemetryScheduler
from gateway.core.telemetry import TelemetryService
from gateway.core.vehicle_events import VehicleEvent, VehicleEventKind
from gateway.core.vehicles import VehicleQueries
from gateway.core.watch import StatusFeed


@dataclass(frozen=True, slots=True, kw_only=True)
class Gateway:
    """The gateway's use cases, each served by its service; and the parts that other
    adapters are wired to. Made by `build_gateway`."""

    connections: ConnectionService
    telemetry: TelemetryService
    commands: CommandService
    rentals: RentalService
    rental_queries: RentalQueries
    final_readings: FinalReadings
    vehicles: VehicleQueries
    allowances: RequestAllowances
    feed: StatusFeed
    event_feed: EventFeed
    metrics: Metrics
    cache: TelemetryCache
    rotator: TokenRotator
    limiter: Admission
    ledger: BudgetLedger
    reconciler: CommandReconciler
    renewal: TokenRenewal
    scheduler: TelemetryScheduler
    audit: AuditTrail
    audit_retention: AuditRetention
    event_retention: EventRetention
    compatibility: CompatibilityService

    async def get_connect_url(self, vehicle_id: str, *, vin: str | None = None) -> ConnectUrl:
        """Issue a single-use state bound to the vehicle (registering it if new) and the URL."""
        return await self.connections.connect_url(vehicle_id, vin=vin)

    async def connect(
        self,
        vehicle_id: str,
        *,
        code: str,
        state: str,
        user_id: str = "",
        failure: ConnectFailure | None = None,
    ) -> VehiclePanel:
        """Link the vehicle (v2: exchange the code, store the tokens; V3: the redirect's user
        id), read info and permissions; status ACTIVE. A redirect that carried Smartcar's
        `failure` is recorded on the vehicle and raises ConnectFailed."""
        return await self.connections.connect(
            vehicle_id, code=code, state=state, user_id=user_id, failure=failure
        )

    async def get_telemetry(
        self,
        vehicle_id: str,
        *,
        fields: frozenset[TelemetryField],
        max_age: timedelta | None,
        held_when_limited: bool = False,
    ) -> Telemetry:
        """Serve `fields` (all when empty) no older than `max_age` (None: the default);
        `held_when_limited`: a rate limit's refusal is answered from what is held."""
        return await self.telemetry.get(
            vehicle_id, fields=fields, max_age=max_age, held_when_limited=held_when_limited
        )

    async def command(
        self,
        vehicle_id: str,
        *,
        action: CommandAction,
        request_id: str,
        charge_limit_percent: int | None = None,
    ) -> CommandResult:
        """Lock, unlock, start or stop charging, or set the charge limit (with
        `charge_limit_percent`), idempotently per `request_id` (empty: a new id)."""
        return await self.commands.run(
            vehicle_id,
            action=action,
            request_id=request_id,
            charge_limit_percent=charge_limit_percent,
        )

    async def disconnect(self, vehicle_id: str) -> VehiclePanel:
        """Revoke at Smartcar and erase the tokens unless a rental is active."""
        return await self.connections.disconnect(vehicle_id)

    async def start_rental(self, vehicle_id: str, *, rental_id: str) -> RentalRecord:
        """Hold a rentable vehicle for a rental (idempotent for the same rental id) and take
        its start reading."""
        return await self.rentals.start(vehicle_id, rental_id=rental_id)

    async def end_rental(self, vehicle_id: str, *, rental_id: str) -> RentalRecord:
        """Release the rental hold (idempotent for an already ended rental) and take its
        end reading; the final one may still be pending."""
        return await self.rentals.end(vehicle_id, rental_id=rental_id)

    async def get_rental(self, rental_id: str) -> RentalRecord:
        """Return one rental with its readings."""
        return await self.rental_queries.get(rental_id)

    async def list_rentals(
        self,
        *,
        vehicle_id: str | None,
        ended_after: datetime | None,
        ended_before: datetime | None,
        page_size: int,
        page_token: str,
    ) -> RentalPage:
        """Return one page of rentals with their readings, oldest start first."""
        return await self.rental_queries.page(
            vehicle_id=vehicle_id,
            ended_after=ended_after,
            ended_before=ended_before,
            page_size=page_size,
            page_token=page_token,
        )

    async def get_vehicle(self, vehicle_id: str) -> VehiclePanel:
        """Return the connection panel of one vehicle."""
        return await self.vehicles.get(vehicle_id)

    async def list_vehicles(
        self, *, status: ConnectionStatus | None, page_size: int, page_token: str
    ) -> VehiclePage:
        """Return one page of connection panels ordered by vehicle id."""
        return await self.vehicles.page(status=status, page_size=page_size, page_token=page_token)

    def watch_vehicles(
        self, *, vehicle_ids: frozenset[str], after_id: int | None, caller: str
    ) -> AsyncIterator[StatusTransition]:
        """Stream status changes after `after_id` (None: from now on), optionally filtered;
        at most `WatchPolicy.streams_per_caller` open streams per `caller`."""
        return self.feed.changes(vehicle_ids=vehicle_ids, after_id=after_id, caller=caller)

    def watch_vehicle_events(
        self,
        *,
        vehicle_ids: frozenset[str],
        kinds: frozenset[VehicleEventKind],
        after_id: int | None,
        caller: str,
    ) -> AsyncIterator[VehicleEvent]:
        """Stream vehicle events after `after_id` (None: from now on), optionally filtered
        by vehicle and kind; at most `WatchPolicy.streams_per_caller` open streams per
        `caller`; EventsPruned for an `after_id` before what retention kept."""
        return self.event_feed.events(
            vehicle_ids=vehicle_ids, kinds=kinds, after_id=after_id, caller=caller
        )

    async def check_compatibility(self, vin: str, *, country: str) -> CompatibilityReport:
        """Ask Smartcar whether the car can be connected, per permission the fleet asks for."""
        return await self.compatibility.check(vin, country=country)

    async def set_request_allowance(
        self, vehicle_id: str, *, monthly_allowance: int | None
    ) -> VehiclePanel:
        """Give the car its own monthly request allowance (None: the fleet's again)."""
        return await self.allowances.set(vehicle_id, monthly_allowance=monthly_allowance)
