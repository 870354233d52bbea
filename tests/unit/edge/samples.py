"""Domain values used by the edge tests: one of each response, with every field set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.model import (
    Availability,
    Battery,
    Capability,
    Charge,
    ChargingState,
    CommandResult,
    CommandState,
    CompatibilityReport,
    ConnectionStatus,
    ConnectUrl,
    DoorState,
    EndpointCapability,
    EngineOil,
    FieldReading,
    FinalReading,
    FinalReadingState,
    Fuel,
    LastCommand,
    Location,
    LockAction,
    LockStatus,
    Odometer,
    PermissionCompatibility,
    ReadingSource,
    Rental,
    RentalPage,
    RentalRecord,
    SmartcarApi,
    SourcedReading,
    StatusTransition,
    Telemetry,
    TelemetryField,
    TelemetryValue,
    TirePressure,
    Vehicle,
    VehiclePage,
    VehiclePanel,
)
from gateway.core.vehicle_events import (
    Closure,
    ClosureKind,
    OpenAtEnd,
    VehicleEvent,
    VehicleEventKind,
)

NOW = datetime(2026, 11, 22, 9, 30, 15, 250000, tzinfo=UTC)
VEHICLE_ID = "car-1"
VIN = "5YJ3E1EA7KF317000"


def compatibility_report() -> CompatibilityReport:
    """A compatible car that can serve one required permission, not another, and one
    permission Smartcar said nothing about."""
    return CompatibilityReport(
        vin=VIN,
        country="US",
        compatible=True,
        reason=None,
        permissions=(
            PermissionCompatibility(
                permission="control_security",
                capability=Capability.CAPABLE,
                reason=None,
                required=True,
                endpoints=(
                    EndpointCapability(
                        permission="control_security", endpoint="/security", capable=True
                    ),
                ),
            ),
            PermissionCompatibility(
                permission="read_odometer",
                capability=Capability.NOT_CAPABLE,
                reason="SMARTCAR_NOT_CAPABLE",
                required=True,
                endpoints=(
                    EndpointCapability(
                        permission="read_odometer",
                        endpoint="/odometer",
                        capable=False,
                        reason="SMARTCAR_NOT_CAPABLE",
                    ),
                ),
            ),
            PermissionCompatibility(
                permission="read_tires",
                capability=Capability.UNKNOWN,
                reason=None,
                required=False,
            ),
        ),
        checked_at=NOW,
    )


def rental(*, ended: bool = False) -> Rental:
    """A rental of car-1, active unless `ended`."""
    return Rental(
        rental_id="rental-7",
        vehicle_id=VEHICLE_ID,
        started_at=NOW - timedelta(hours=2),
        ended_at=NOW if ended else None,
    )


def _sourced(
    field: TelemetryField,
    value: TelemetryValue | None,
    *,
    recorded_at: datetime | None,
    source: ReadingSource,
    taken_at: datetime,
    availability: Availability = Availability.AVAILABLE,
    reason: str | None = None,
) -> SourcedReading:
    """One field of a rental's reading, fetched 30 s after the car recorded it."""
    reading = FieldReading(
        field=field,
        availability=availability,
        value=value,
        recorded_at=recorded_at,
        fetched_at=recorded_at + timedelta(seconds=30) if recorded_at else None,
        reason=reason,
    )
    return SourcedReading(reading=reading, source=source, taken_at=taken_at)


def rental_record(*, ended: bool = False, final: FinalReadingState | None = None) -> RentalRecord:
    """rental-7 with its start reading (odometer live, 10 min old; fuel from cache; battery
    not capable; location asleep, 3 h old) and, once `ended`, its end reading (odometer
    recorded 5 min after the end, by webhook; fuel recorded before the end) and a final
    reading in state `final` (PENDING by default)."""
    hold = rental(ended=ended)
    started = hold.started_at
    start = {
        TelemetryField.ODOMETER: _sourced(
            TelemetryField.ODOMETER,
            Odometer(distance_km=12_000.5),
            recorded_at=started - timedelta(minutes=10),
            source=ReadingSource.LIVE,
            taken_at=started,
        ),
        TelemetryField.FUEL: _sourced(
            TelemetryField.FUEL,
            Fuel(percent_remaining=80.0, amount_remaining_l=None, range_km=None),
            recorded_at=started - timedelta(seconds=30),
            source=ReadingSource.CACHE,
            taken_at=started,
        ),
        TelemetryField.BATTERY: _sourced(
            TelemetryField.BATTERY,
            None,
            recorded_at=None,
            source=ReadingSource.CACHE,
            taken_at=started,
            availability=Availability.NOT_CAPABLE,
            reason="COMPATIBILITY:VEHICLE_NOT_CAPABLE",
        ),
        TelemetryField.LOCATION: _sourced(
            TelemetryField.LOCATION,
            Location(latitude=52.52, longitude=13.405),
            recorded_at=started - timedelta(hours=3),
            source=ReadingSource.CACHE,
            taken_at=started,
            availability=Availability.UNAVAILABLE,
            reason="VEHICLE_STATE:ASLEEP",
        ),
    }
    if not ended:
        return RentalRecord(rental=hold, start=start)
    end = {
        TelemetryField.ODOMETER: _sourced(
            TelemetryField.ODOMETER,
            Odometer(distance_km=12_042.0),
            recorded_at=NOW + timedelta(minutes=5),
            source=ReadingSource.WEBHOOK,
            taken_at=NOW + timedelta(minutes=6),
        ),
        TelemetryField.FUEL: _sourced(
            TelemetryField.FUEL,
            Fuel(percent_remaining=71.5, amount_remaining_l=None, range_km=None),
            recorded_at=NOW - timedelta(minutes=1),
            source=ReadingSource.LIVE,
            taken_at=NOW,
        ),
    }
    state = final or FinalReadingState.PENDING
    settled = state is not FinalReadingState.PENDING
    chase = FinalReading(
        state=state,
        attempts=2,
        last_attempt_at=NOW,
        next_attempt_at=None if settled else NOW + timedelta(minutes=4),
        settled_at=NOW + timedelta(hours=1) if settled else None,
        reason="the car's connection was removed" if state is FinalReadingState.GIVEN_UP else None,
    )
    return RentalRecord(rental=hold, start=start, end=end, final=chase)


def rental_page() -> RentalPage:
    """A page of two rentals, ended then active, and a next page token."""
    return RentalPage(records=(rental_record(ended=True), rental_record()), next_page_token="tok-2")


def timestamp(value: datetime) -> Timestamp:
    """Return the Timestamp of an aware datetime."""
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def full_panel(vehicle_id: str = VEHICLE_ID) -> VehiclePanel:
    """A connected vehicle with every panel field set."""
    vehicle = Vehicle(
        id=vehicle_id,
        status=ConnectionStatus.ACTIVE,
        status_reason="connected",
        status_changed_at=NOW - timedelta(days=1),
        smartcar_vehicle_id="sc-0a1b2c",
        grant_id="grant-1",
        make="TESLA",
        model="Model 3",
        year=2019,
        vin=VIN,
        permissions=frozenset({"read_vin", "control_security", "read_odometer"}),
        last_command=LastCommand(action=LockAction.LOCK, request_id="req-1", at=NOW),
        last_telemetry_at=NOW - timedelta(minutes=5),
        created_at=NOW - timedelta(days=30),
        api=SmartcarApi.V3,
        smartcar_user_id="user-1",
    )
    return VehiclePanel(
        vehicle=vehicle,
        missing_permissions=frozenset({"read_tires", "read_engine_oil"}),
        active_rental=rental(),
        requests_this_month=412,
        monthly_request_allowance=1000,
        request_reserve=100,
        request_allowance_overridden=True,
        request_budget_resets_at=datetime(2026, 12, 1, tzinfo=UTC),
    )


def minimal_panel(vehicle_id: str = "car-2") -> VehiclePanel:
    """A vehicle known to the gateway but never connected: every optional field empty."""
    return VehiclePanel(
        vehicle=Vehicle(id=vehicle_id, status=ConnectionStatus.NOT_CONNECTED),
        missing_permissions=frozenset(),
        active_rental=None,
    )


def connect_url() -> ConnectUrl:
    """A Connect URL with its state."""
    return ConnectUrl(
        url="https://connect.example/oauth/authorize?client_id=abc",
        state="st-123",
        expires_at=NOW + timedelta(minutes=10),
    )


def command_result(*, state: CommandState = CommandState.SUCCEEDED) -> CommandResult:
    """A replayed, completed Unlock."""
    return CommandResult(
        request_id="req-9",
        vehicle_id=VEHICLE_ID,
        action=LockAction.UNLOCK,
        state=state,
        completed_at=NOW if state is CommandState.SUCCEEDED else None,
        replayed=True,
    )


def _reading(field: TelemetryField, value: TelemetryValue) -> FieldReading:
    """An available reading recorded a minute before it was fetched."""
    return FieldReading(
        field=field,
        availability=Availability.AVAILABLE,
        value=value,
        recorded_at=NOW - timedelta(minutes=1),
        fetched_at=NOW,
    )


def telemetry(*, from_cache: bool = False) -> Telemetry:
    """Every telemetry field: six with values (some partial), battery and charge not
    capable."""
    readings = [
        _reading(TelemetryField.ENGINE_OIL, EngineOil(life_remaining_percent=None)),
        _reading(TelemetryField.LOCATION, Location(latitude=52.52, longitude=13.405)),
        _reading(TelemetryField.ODOMETER, Odometer(distance_km=12345.6)),
        _reading(
            TelemetryField.FUEL,
            Fuel(percent_remaining=61.5, amount_remaining_l=None, range_km=480.0),
        ),
        FieldReading(
            field=TelemetryField.BATTERY,
            availability=Availability.NOT_CAPABLE,
            fetched_at=NOW,
            reason="COMPATIBILITY:VEHICLE_NOT_CAPABLE",
        ),
        _reading(
            TelemetryField.LOCK_STATUS,
            LockStatus(
                is_locked=True,
                doors=(
                    DoorState(door="front_left", status="CLOSED"),
                    DoorState(door="back_right", status="OPEN"),
                ),
            ),
        ),
        _reading(
            TelemetryField.TIRE_PRESSURE,
            TirePressure(
                front_left_kpa=230.0,
                front_right_kpa=231.5,
                back_left_kpa=228.0,
                back_right_kpa=None,
            ),
        ),
        FieldReading(
            field=TelemetryField.CHARGE,
            availability=Availability.NOT_CAPABLE,
            fetched_at=NOW,
            reason="COMPATIBILITY:VEHICLE_NOT_CAPABLE",
        ),
    ]
    return Telemetry(
        vehicle_id=VEHICLE_ID,
        readings={r.field: r for r in readings},
        from_cache=from_cache,
    )


def battery_reading() -> FieldReading:
    """An EV's battery reading, range not reported."""
    return _reading(TelemetryField.BATTERY, Battery(percent_remaining=80.0, range_km=None))


def charge_reading(*, state: ChargingState | None = ChargingState.CHARGING) -> FieldReading:
    """An EV's charge reading: plugged in, charging to 80 %, no time to complete reported."""
    return _reading(
        TelemetryField.CHARGE,
        Charge(is_plugged_in=True, state=state, limit_percent=80.0, minutes_to_complete=None),
    )


def page() -> VehiclePage:
    """A page of two panels with a next page."""
    return VehiclePage(panels=(full_panel(), minimal_panel()), next_page_token="tok-2")


# --- malformed requests: (rpc, request, the field paths BadRequest must name, in order) ------


def _age(seconds: int, nanos: int = 0) -> Duration:
    """A max_age of `seconds` (+ `nanos`)."""
    return Duration(seconds=seconds, nanos=nanos)


def status_change() -> StatusTransition:
    """A recorded transition: car-1 went from ACTIVE to EXPIRED."""
    return StatusTransition(
        id=8,
        vehicle_id="car-1",
        from_status=ConnectionStatus.ACTIVE,
        to_status=ConnectionStatus.EXPIRED,
        reason="Smartcar rejected the refresh token (invalid_grant)",
        at=NOW,
    )


def vehicle_event() -> VehicleEvent:
    """A recorded event: rental-7 of car-1 ended with the front left door and the trunk
    open, the car unlocked."""
    return VehicleEvent(
        id=12,
        vehicle_id="car-1",
        kind=VehicleEventKind.DOORS_OPEN_AT_RENTAL_END,
        at=NOW,
        description="rental rental-7 ended with vehicle car-1 open: door front_left, trunk rear",
        detail=OpenAtEnd(
            open=(
                Closure(kind=ClosureKind.DOOR, name="front_left"),
                Closure(kind=ClosureKind.TRUNK, name="rear"),
            ),
            locked=False,
            recorded_at=NOW - timedelta(seconds=20),
        ),
        rental_id="rental-7",
    )


BAD_REQUESTS: list[tuple[str, Message, tuple[str, ...]]] = [
    (
        "WatchVehicleEvents",
        pb.WatchVehicleEventsRequest(vehicle_ids=["ok", "bad id"], kinds=[0, 42], after_id=-3),
        ("vehicle_ids[1]", "kinds[0]", "kinds[1]", "after_id"),
    ),
    (
        "WatchVehicleEvents",
        pb.WatchVehicleEventsRequest(
            vehicle_ids=[f"car-{n}" for n in range(1001)],
            kinds=[pb.VEHICLE_EVENT_LOW_FUEL] * 10,
        ),
        ("vehicle_ids", "kinds"),
    ),
    ("WatchVehicles", pb.WatchVehiclesRequest(vehicle_ids=["ok", "bad id"]), ("vehicle_ids[1]",)),
    ("WatchVehicles", pb.WatchVehiclesRequest(after_id=-1), ("after_id",)),
    ("GetConnectUrl", pb.GetConnectUrlRequest(), ("vehicle_id",)),
    ("GetConnectUrl", pb.GetConnectUrlRequest(vehicle_id="car 1"), ("vehicle_id",)),
    ("GetConnectUrl", pb.GetConnectUrlRequest(vehicle_id="car-1", vin="123"), ("vin",)),
    (
        "GetConnectUrl",
        pb.GetConnectUrlRequest(vehicle_id="car-1", vin="5YJ3E1EA7KF31700I"),
        ("vin",),
    ),
    ("Connect", pb.ConnectRequest(), ("vehicle_id", "code", "state")),
    ("Connect", pb.ConnectRequest(vehicle_id="car-1", code="a b", state="st"), ("code",)),
    ("Connect", pb.ConnectRequest(vehicle_id="car-1", code="c" * 513, state="st"), ("code",)),
    (
        "Connect",
        pb.ConnectRequest(vehicle_id="car-1", user_id="u" * 129, state="st"),
        ("user_id",),
    ),
    ("Connect", pb.ConnectRequest(vehicle_id="car-1", user_id="a\tb", state="st"), ("user_id",)),
    ("Connect", pb.ConnectRequest(vehicle_id="car-1", code="c", state="s" * 129), ("state",)),
    ("Connect", pb.ConnectRequest(vehicle_id="-car", code="c", state="st"), ("vehicle_id",)),
    ("GetTelemetry", pb.GetTelemetryRequest(vehicle_id="a" * 129), ("vehicle_id",)),
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(vehicle_id="car-1", fields=[pb.ODOMETER, 0, pb.FUEL, 99]),
        ("fields[1]", "fields[3]"),
    ),
    ("GetTelemetry", pb.GetTelemetryRequest(vehicle_id="car-1", max_age=_age(-1)), ("max_age",)),
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(vehicle_id="car-1", max_age=_age(7 * 86400 + 1)),
        ("max_age",),
    ),
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(vehicle_id="car-1", max_age=_age(1, -5)),
        ("max_age",),
    ),
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(fields=[42], max_age=_age(-3)),
        ("vehicle_id", "fields[0]", "max_age"),
    ),
    ("Lock", pb.LockRequest(request_id="r1"), ("vehicle_id",)),
    ("Lock", pb.LockRequest(vehicle_id="car-1", request_id="bad id"), ("request_id",)),
    ("Unlock", pb.UnlockRequest(vehicle_id="car-1", request_id="r" * 129), ("request_id",)),
    ("Unlock", pb.UnlockRequest(vehicle_id="car/1"), ("vehicle_id",)),
    ("Disconnect", pb.DisconnectRequest(), ("vehicle_id",)),
    ("StartRental", pb.StartRentalRequest(vehicle_id="car-1"), ("rental_id",)),
    ("StartRental", pb.StartRentalRequest(rental_id="r-1"), ("vehicle_id",)),
    ("EndRental", pb.EndRentalRequest(vehicle_id="car-1", rental_id="r/1"), ("rental_id",)),
    ("GetVehicle", pb.GetVehicleRequest(vehicle_id="cär"), ("vehicle_id",)),
    ("ListVehicles", pb.ListVehiclesRequest(page_size=-1), ("page_size",)),
    ("ListVehicles", pb.ListVehiclesRequest(page_size=501), ("page_size",)),
    ("ListVehicles", pb.ListVehiclesRequest(status=42, page_size=-1), ("status", "page_size")),
    # Hostile sizes and values: each refused as a whole, before any loop over its values.
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(vehicle_id="car-1", fields=[99] * 100_000),
        ("fields",),
    ),
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(vehicle_id="car-1", fields=[pb.ODOMETER] * 9),
        ("fields",),
    ),
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(vehicle_id="car-1", max_age=_age(315_576_000_001)),
        ("max_age",),
    ),
    (
        "GetTelemetry",
        pb.GetTelemetryRequest(vehicle_id="car-1", max_age=_age(-315_576_000_000)),
        ("max_age",),
    ),
    (
        "WatchVehicles",
        pb.WatchVehiclesRequest(vehicle_ids=[f"car-{n}" for n in range(1001)]),
        ("vehicle_ids",),
    ),
    ("GetConnectUrl", pb.GetConnectUrlRequest(vehicle_id="car-1", vin="1" * 100_000), ("vin",)),
    ("ListVehicles", pb.ListVehiclesRequest(page_token="t" * 513), ("page_token",)),
    ("ListVehicles", pb.ListVehiclesRequest(page_token="eyJ9 =="), ("page_token",)),
    ("CheckCompatibility", pb.CheckCompatibilityRequest(), ("vin", "country")),
    ("CheckCompatibility", pb.CheckCompatibilityRequest(vin="1" * 100_000), ("vin", "country")),
    (
        "CheckCompatibility",
        pb.CheckCompatibilityRequest(vin="5YJ3E1EA7KF31700O", country="US"),
        ("vin",),
    ),
    ("CheckCompatibility", pb.CheckCompatibilityRequest(vin=VIN, country="USA"), ("country",)),
    ("CheckCompatibility", pb.CheckCompatibilityRequest(vin=VIN, country="UK"), ("country",)),
    ("CheckCompatibility", pb.CheckCompatibilityRequest(vin=VIN, country="Ü1"), ("country",)),
    (
        "Connect",
        pb.ConnectRequest(vehicle_id="car-1", state="st", error="access_denied", code="c"),
        ("error",),
    ),
    (
        "Connect",
        pb.ConnectRequest(vehicle_id="car-1", state="st", error="a b"),
        ("error",),
    ),
    ("Connect", pb.ConnectRequest(vehicle_id="car-1", state="st", error="e" * 65), ("error",)),
    (
        "Connect",
        pb.ConnectRequest(
            vehicle_id="car-1", state="st", error="no_vehicles", error_description="x\n"
        ),
        ("error_description",),
    ),
    (
        "Connect",
        pb.ConnectRequest(
            vehicle_id="car-1", state="st", error="no_vehicles", error_description="d" * 513
        ),
        ("error_description",),
    ),
    (
        "Connect",
        pb.ConnectRequest(vehicle_id="car-1", state="st", code="c", error_description="why"),
        ("error_description",),
    ),
    ("SetRequestAllowance", pb.SetRequestAllowanceRequest(), ("vehicle_id",)),
    (
        "SetRequestAllowance",
        pb.SetRequestAllowanceRequest(vehicle_id="car-1", monthly_allowance=-1),
        ("monthly_allowance",),
    ),
    (
        "SetRequestAllowance",
        pb.SetRequestAllowanceRequest(vehicle_id="car 1", monthly_allowance=1_000_001),
        ("vehicle_id", "monthly_allowance"),
    ),
    ("StartCharge", pb.StartChargeRequest(request_id="r1"), ("vehicle_id",)),
    ("StartCharge", pb.StartChargeRequest(vehicle_id="car-1", request_id="r 1"), ("request_id",)),
    ("StopCharge", pb.StopChargeRequest(vehicle_id="car/1"), ("vehicle_id",)),
    ("SetChargeLimit", pb.SetChargeLimitRequest(vehicle_id="car-1"), ("limit_percent",)),
    (
        "SetChargeLimit",
        pb.SetChargeLimitRequest(vehicle_id="car-1", limit_percent=49),
        ("limit_percent",),
    ),
    (
        "SetChargeLimit",
        pb.SetChargeLimitRequest(vehicle_id="car-1", limit_percent=101),
        ("limit_percent",),
    ),
    (
        "SetChargeLimit",
        pb.SetChargeLimitRequest(request_id="bad id", limit_percent=-80),
        ("vehicle_id", "request_id", "limit_percent"),
    ),
    ("GetRental", pb.GetRentalRequest(), ("rental_id",)),
    ("GetRental", pb.GetRentalRequest(rental_id="r" * 129), ("rental_id",)),
    (
        "ListRentals",
        pb.ListRentalsRequest(vehicle_id="car 1", page_size=501),
        ("vehicle_id", "page_size"),
    ),
    (
        "ListRentals",
        pb.ListRentalsRequest(
            ended_after=Timestamp(seconds=10), ended_before=Timestamp(seconds=10)
        ),
        ("ended_before",),
    ),
    (
        "ListRentals",
        pb.ListRentalsRequest(
            ended_after=Timestamp(seconds=253_402_300_800),
            ended_before=Timestamp(seconds=1, nanos=-1),
        ),
        ("ended_after", "ended_before"),
    ),
    ("ListRentals", pb.ListRentalsRequest(page_token="t" * 513), ("page_token",)),
]
"""Each RPC's malformed inputs; the unit tests feed them to the converters, the rpc tests to
a live server."""
