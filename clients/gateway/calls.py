"""The gateway's calls, described once for the async and the sync client: which RPC, the
request, its default deadline, and whether repeating it is safe.

Safe to repeat after UNAVAILABLE: the reads, and the commands (Lock, Unlock, StartCharge,
StopCharge, SetChargeLimit) because each carries one request_id for all its attempts (the
gateway runs a request_id once and replays its outcome). Connect (single-use code),
Disconnect and the rental calls are never repeated by the client.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from google.protobuf import duration_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Call(Generic[R]):
    """One call: the RPC's name, its request, and how the client treats it."""

    method: str
    request: object
    response: type[R]
    command: bool = False
    """Commands get the longer default deadline (a car takes seconds to answer)."""
    safe: bool = True
    """Whether repeating it after UNAVAILABLE cannot do anything twice."""


def get_connect_url(vehicle_id: str, *, vin: str = "") -> Call[pb.GetConnectUrlResponse]:
    """A Connect URL for the vehicle's owner."""
    request = pb.GetConnectUrlRequest(vehicle_id=vehicle_id, vin=vin)
    return Call("GetConnectUrl", request, pb.GetConnectUrlResponse)


def connect(vehicle_id: str, *, code: str = "", state: str, user_id: str = "") -> Call[pb.Vehicle]:
    """Complete Connect with the redirect's state and its `user_id` (Smartcar API V3) or
    `code` (v2), never repeated: the state is single use."""
    request = pb.ConnectRequest(vehicle_id=vehicle_id, code=code, state=state, user_id=user_id)
    return Call("Connect", request, pb.Vehicle, safe=False)


def connect_failed(
    vehicle_id: str, *, state: str, error: str, error_description: str = ""
) -> Call[pb.Vehicle]:
    """Report a Connect redirect that carried Smartcar's `error` (and its description)
    instead of a code: the state is used up and the vehicle notes why; raises
    `errors.ConnectFailed`. Never repeated: the state is single use."""
    request = pb.ConnectRequest(
        vehicle_id=vehicle_id, state=state, error=error, error_description=error_description
    )
    return Call("Connect", request, pb.Vehicle, safe=False)


def check_compatibility(vin: str, *, country: str) -> Call[pb.CheckCompatibilityResponse]:
    """Whether Smartcar can connect the car with `vin` registered in `country` (ISO 3166-1
    alpha-2), per permission the fleet asks for."""
    request = pb.CheckCompatibilityRequest(vin=vin, country=country)
    return Call("CheckCompatibility", request, pb.CheckCompatibilityResponse)


def get_vehicle(vehicle_id: str) -> Call[pb.Vehicle]:
    """One vehicle's connection panel."""
    return Call("GetVehicle", pb.GetVehicleRequest(vehicle_id=vehicle_id), pb.Vehicle)


def list_vehicles(
    *, status: int = 0, page_size: int = 0, page_token: str = ""
) -> Call[pb.ListVehiclesResponse]:
    """One page of connection panels."""
    request = pb.ListVehiclesRequest(status=status, page_size=page_size, page_token=page_token)  # type: ignore[arg-type]
    return Call("ListVehicles", request, pb.ListVehiclesResponse)


def get_telemetry(
    vehicle_id: str,
    *,
    fields: Iterable[int] = (),
    max_age_s: float | None = None,
    held_when_rate_limited: bool = False,
) -> Call[pb.Telemetry]:
    """Telemetry fields (all when none are named), none older than `max_age_s`;
    `held_when_rate_limited`: a rate limit's refusal comes back as the values held, marked."""
    request = pb.GetTelemetryRequest(
        vehicle_id=vehicle_id,
        fields=list(fields),  # type: ignore[arg-type]
        held_when_rate_limited=held_when_rate_limited,
    )
    if max_age_s is not None:
        seconds = int(max_age_s)
        nanos = round((max_age_s - seconds) * 1e9)
        request.max_age.CopyFrom(duration_pb2.Duration(seconds=seconds, nanos=nanos))
    return Call("GetTelemetry", request, pb.Telemetry)


def lock(vehicle_id: str, *, request_id: str | None = None) -> Call[pb.CommandResult]:
    """Lock; every attempt carries the same request_id (a fresh one unless given)."""
    request = pb.LockRequest(vehicle_id=vehicle_id, request_id=request_id or _new_id())
    return Call("Lock", request, pb.CommandResult, command=True)


def unlock(vehicle_id: str, *, request_id: str | None = None) -> Call[pb.CommandResult]:
    """Unlock; every attempt carries the same request_id (a fresh one unless given)."""
    request = pb.UnlockRequest(vehicle_id=vehicle_id, request_id=request_id or _new_id())
    return Call("Unlock", request, pb.CommandResult, command=True)


def start_charge(vehicle_id: str, *, request_id: str | None = None) -> Call[pb.CommandResult]:
    """Start charging; every attempt carries the same request_id (a fresh one unless given)."""
    request = pb.StartChargeRequest(vehicle_id=vehicle_id, request_id=request_id or _new_id())
    return Call("StartCharge", request, pb.CommandResult, command=True)


def stop_charge(vehicle_id: str, *, request_id: str | None = None) -> Call[pb.CommandResult]:
    """Stop charging; every attempt carries the same request_id (a fresh one unless given)."""
    request = pb.StopChargeRequest(vehicle_id=vehicle_id, request_id=request_id or _new_id())
    return Call("StopCharge", request, pb.CommandResult, command=True)


def set_charge_limit(
    vehicle_id: str, *, limit_percent: int, request_id: str | None = None
) -> Call[pb.CommandResult]:
    """Set the charge limit (50-100 %); every attempt carries the same request_id (a fresh
    one unless given)."""
    request = pb.SetChargeLimitRequest(
        vehicle_id=vehicle_id, request_id=request_id or _new_id(), limit_percent=limit_percent
    )
    return Call("SetChargeLimit", request, pb.CommandResult, command=True)


def start_rental(vehicle_id: str, *, rental_id: str) -> Call[pb.Rental]:
    """Hold the vehicle for a rental."""
    request = pb.StartRentalRequest(vehicle_id=vehicle_id, rental_id=rental_id)
    return Call("StartRental", request, pb.Rental, safe=False)


def end_rental(vehicle_id: str, *, rental_id: str) -> Call[pb.Rental]:
    """Release a rental hold."""
    request = pb.EndRentalRequest(vehicle_id=vehicle_id, rental_id=rental_id)
    return Call("EndRental", request, pb.Rental, safe=False)


def get_rental(rental_id: str) -> Call[pb.Rental]:
    """One rental with its start and end readings, distance and fuel/charge difference."""
    return Call("GetRental", pb.GetRentalRequest(rental_id=rental_id), pb.Rental)


def list_rentals(
    *,
    vehicle_id: str = "",
    ended_after: datetime | None = None,
    ended_before: datetime | None = None,
    page_size: int = 0,
    page_token: str = "",
) -> Call[pb.ListRentalsResponse]:
    """One page of rentals, oldest start first: optionally one vehicle's, optionally those
    that ended in [`ended_after`, `ended_before`) (aware datetimes)."""
    request = pb.ListRentalsRequest(
        vehicle_id=vehicle_id, page_size=page_size, page_token=page_token
    )
    if ended_after is not None:
        request.ended_after.FromDatetime(ended_after)
    if ended_before is not None:
        request.ended_before.FromDatetime(ended_before)
    return Call("ListRentals", request, pb.ListRentalsResponse)


def disconnect(vehicle_id: str) -> Call[pb.Vehicle]:
    """Disconnect the vehicle from Smartcar (refused during a rental)."""
    return Call("Disconnect", pb.DisconnectRequest(vehicle_id=vehicle_id), pb.Vehicle, safe=False)


def set_request_allowance(vehicle_id: str, *, monthly_allowance: int) -> Call[pb.Vehicle]:
    """Give the vehicle its own monthly request allowance (0: the fleet's again); safe to
    repeat, it sets a value."""
    request = pb.SetRequestAllowanceRequest(
        vehicle_id=vehicle_id, monthly_allowance=monthly_allowance
    )
    return Call("SetRequestAllowance", request, pb.Vehicle)


def _new_id() -> str:
    return f"cmd-{uuid.uuid4()}"
