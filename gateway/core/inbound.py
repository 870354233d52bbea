"""The inbound port: what the gateway offers its callers, in domain terms, as the use cases
the servicer calls.

`gateway.core.facade.Gateway` implements it; the gRPC servicer depends only on this
Protocol, so it can be tested against a fake. (The outbound ports, which adapters
implement for the core, are in `gateway.core.ports`.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Protocol

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
from gateway.core.vehicle_events import VehicleEvent, VehicleEventKind


class GatewayAPI(Protocol):
    """The use cases behind `vehiclegateway.v1.VehicleGateway`. Inputs are already validated."""

    async def get_connect_url(self, vehicle_id: str, *, vin: str | None = None) -> ConnectUrl:
        """Issue a single-use state bound to the vehicle (registering it if new) and the URL."""
        ...

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
        ...

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
        ...

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
        ...

    async def disconnect(self, vehicle_id: str) -> VehiclePanel:
        """Revoke at Smartcar and erase the tokens unless a rental is active."""
        ...

    async def start_rental(self, vehicle_id: str, *, rental_id: str) -> RentalRecord:
        """Hold a rentable vehicle for a rental (idempotent for the same rental id) and take
        its start reading."""
        ...

    async def end_rental(self, vehicle_id: str, *, rental_id: str) -> RentalRecord:
        """Release the rental hold (idempotent for an already ended rental) and take its
        end reading; the final one may still be pending."""
        ...

    async def get_rental(self, rental_id: str) -> RentalRecord:
        """Return one rental with its readings."""
        ...

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
        ...

    async def get_vehicle(self, vehicle_id: str) -> VehiclePanel:
        """Return the connection panel of one vehicle."""
        ...

    async def list_vehicles(
        self, *, status: ConnectionStatus | None, page_size: int, page_token: str
    ) -> VehiclePage:
        """Return one page of connection panels ordered by vehicle id."""
        ...

    def watch_vehicles(
        self, *, vehicle_ids: frozenset[str], after_id: int | None, caller: str
    ) -> AsyncIterator[StatusTransition]:
        """Stream status changes after `after_id` (None: from now on), optionally filtered;
        at most `WatchPolicy.streams_per_caller` open streams per `caller`."""
        ...

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
        ...

    async def check_compatibility(self, vin: str, *, country: str) -> CompatibilityReport:
        """Ask Smartcar whether the car with `vin`, registered in `country`, can be
        connected, and which permissions the fleet asks for it can serve."""

    async def set_request_allowance(
        self, vehicle_id: str, *, monthly_allowance: int | None
    ) -> VehiclePanel:
        """Give the car its own monthly request allowance (None: the fleet's again); return
        its panel with the figures that now apply."""
        ...
