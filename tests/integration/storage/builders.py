"""Domain values for storage tests, with every field filled unless a test says otherwise."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from gateway.core.model import (
    Availability,
    Battery,
    Charge,
    ChargingState,
    CommandError,
    CommandRecord,
    CommandState,
    ConnectionStatus,
    DoorState,
    EngineOil,
    FieldReading,
    Fuel,
    Grant,
    LastCommand,
    Location,
    LockAction,
    LockStatus,
    OAuthState,
    Odometer,
    Rental,
    StatusTransition,
    TelemetryField,
    TelemetryValue,
    TirePressure,
    TokenPair,
    Vehicle,
    WebhookEvent,
)
from gateway.core.secret import Secret

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
BERLIN_SUMMER = timezone(timedelta(hours=2))
"""A non-UTC offset: stored times must come back as the same instant, in UTC."""

ACCESS_TOKEN = "access-7f3c9e1a-PLAINTEXT-MARKER-A"
REFRESH_TOKEN = "refresh-0b8d2f6e-PLAINTEXT-MARKER-R"


def at(seconds: float) -> datetime:
    """Return T0 plus `seconds`."""
    return T0 + timedelta(seconds=seconds)


def tokens(access: str = ACCESS_TOKEN, refresh: str = REFRESH_TOKEN) -> TokenPair:
    """Return a token pair expiring 2 hours and 60 days after T0."""
    return TokenPair(
        access_token=Secret(access),
        refresh_token=Secret(refresh),
        access_expires_at=T0 + timedelta(hours=2),
        refresh_expires_at=T0 + timedelta(days=60),
    )


def grant(grant_id: str = "g1", **changes: Any) -> Grant:
    """Return a grant at version 1 of user `user-1`."""
    base = Grant(id=grant_id, smartcar_user_id="user-1", tokens=tokens(), version=1)
    return dataclasses.replace(base, **changes)


def vehicle(vehicle_id: str = "v1", **changes: Any) -> Vehicle:
    """Return a connected-looking vehicle with every field set (no grant unless given)."""
    base = Vehicle(
        id=vehicle_id,
        status=ConnectionStatus.ACTIVE,
        status_reason="connected",
        status_changed_at=at(1).astimezone(BERLIN_SUMMER),
        smartcar_vehicle_id=f"sc-{vehicle_id}",
        grant_id=None,
        make="TESLA",
        model="Model 3",
        year=2021,
        vin="5YJ3E1EA7MF000001",
        permissions=frozenset({"read_odometer", "control_security"}),
        last_command=LastCommand(action=LockAction.LOCK, request_id="req-0", at=at(2)),
        last_telemetry_at=at(3),
        created_at=T0,
        asleep_until=at(900).astimezone(BERLIN_SUMMER),
        failure_count=2,
        last_error="UPSTREAM:RATE_LIMIT",
    )
    return dataclasses.replace(base, **changes)


def bare_vehicle(vehicle_id: str, **changes: Any) -> Vehicle:
    """Return a vehicle with only its id and status NOT_CONNECTED."""
    return dataclasses.replace(
        Vehicle(id=vehicle_id, status=ConnectionStatus.NOT_CONNECTED), **changes
    )


def rental(rental_id: str = "r1", vehicle_id: str = "v1", **changes: Any) -> Rental:
    """Return an active rental started at T0."""
    return dataclasses.replace(
        Rental(rental_id=rental_id, vehicle_id=vehicle_id, started_at=T0), **changes
    )


def command(request_id: str = "req-1", vehicle_id: str = "v1", **changes: Any) -> CommandRecord:
    """Return a pending UNLOCK created at T0."""
    base = CommandRecord(
        request_id=request_id,
        vehicle_id=vehicle_id,
        action=LockAction.UNLOCK,
        state=CommandState.PENDING,
        created_at=T0,
    )
    return dataclasses.replace(base, **changes)


COMMAND_ERROR = CommandError(
    kind="VehicleStateBlocks",
    message="a door is open",
    smartcar_type="VEHICLE_STATE",
    smartcar_code="DOOR_OPEN",
    smartcar_request_id="sc-req-9",
)


def state(value: str = "state-abc", vehicle_id: str = "v1") -> OAuthState:
    """Return a state expiring ten minutes after T0."""
    return OAuthState(state=value, vehicle_id=vehicle_id, expires_at=at(600))


VALUES: dict[TelemetryField, TelemetryValue] = {
    TelemetryField.LOCATION: Location(latitude=52.520008, longitude=13.404954),
    TelemetryField.ODOMETER: Odometer(distance_km=104_713.25),
    TelemetryField.FUEL: Fuel(percent_remaining=41.5, amount_remaining_l=None, range_km=390.0),
    TelemetryField.BATTERY: Battery(percent_remaining=87.0, range_km=None),
    TelemetryField.LOCK_STATUS: LockStatus(
        is_locked=False,
        doors=(
            DoorState(door="front_left", status="OPEN"),
            DoorState(door="back_right", status="CLOSED"),
        ),
        windows=(DoorState(door="frontLeft", status="OPEN"),),
        trunks=(DoorState(door="rear", status="CLOSED"), DoorState(door="front", status="OPEN")),
    ),
    TelemetryField.TIRE_PRESSURE: TirePressure(
        front_left_kpa=230.0, front_right_kpa=231.5, back_left_kpa=None, back_right_kpa=229.0
    ),
    TelemetryField.ENGINE_OIL: EngineOil(life_remaining_percent=64.0),
    TelemetryField.CHARGE: Charge(
        is_plugged_in=True,
        state=ChargingState.FULLY_CHARGED,
        limit_percent=80.0,
        minutes_to_complete=None,
    ),
}
"""One value of every telemetry type, with a None wherever the type allows one."""


def reading(field: TelemetryField, **changes: Any) -> FieldReading:
    """Return an available reading of `field` with its sample value."""
    base = FieldReading(
        field=field,
        availability=Availability.AVAILABLE,
        value=VALUES[field],
        recorded_at=at(-30).astimezone(BERLIN_SUMMER),
        fetched_at=T0,
    )
    return dataclasses.replace(base, **changes)


def transition(vehicle_id: str = "v1", **changes: Any) -> StatusTransition:
    """Return an ACTIVE -> EXPIRED transition at T0, without an id."""
    base = StatusTransition(
        vehicle_id=vehicle_id,
        from_status=ConnectionStatus.ACTIVE,
        to_status=ConnectionStatus.EXPIRED,
        reason="refresh token rejected",
        at=T0,
    )
    return dataclasses.replace(base, **changes)


def event(event_id: str = "evt-1", **changes: Any) -> WebhookEvent:
    """Return an unapplied VEHICLE_STATE event received at T0, with a nested JSON payload."""
    base = WebhookEvent(
        event_id=event_id,
        event_type="VEHICLE_STATE",
        smartcar_vehicle_id="sc-v1",
        received_at=T0,
        payload={
            "eventId": event_id,
            "data": {"vehicle": {"id": "sc-v1"}, "signals": [{"code": "odometer", "value": 1.5}]},
            "meta": {"version": "4.0", "deliveredAt": None},
        },
    )
    return dataclasses.replace(base, **changes)
