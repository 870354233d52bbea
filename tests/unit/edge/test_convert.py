"""Converters: every request to validated values, every domain answer to its message."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core import validation
from gateway.core.errors import InvalidArgument
from gateway.core.model import (
    Availability,
    Capability,
    ChargeAction,
    ChargingState,
    CommandResult,
    CommandState,
    ConnectFailure,
    ConnectionStatus,
    FinalReadingState,
    LastCommand,
    LockAction,
    ReadingSource,
    RentalPage,
    TelemetryField,
)
from gateway.edge.grpc import convert, convert_events
from tests.unit.edge import samples

CONVERTERS: dict[str, Callable[[Any], object]] = {
    "GetConnectUrl": convert.connect_url_query,
    "Connect": convert.connect_args,
    "GetTelemetry": convert.telemetry_query,
    "Lock": lambda request: convert.command_args(request, LockAction.LOCK),
    "Unlock": lambda request: convert.command_args(request, LockAction.UNLOCK),
    "StartCharge": lambda request: convert.command_args(request, ChargeAction.START_CHARGE),
    "StopCharge": lambda request: convert.command_args(request, ChargeAction.STOP_CHARGE),
    "SetChargeLimit": convert.charge_limit_args,
    "Disconnect": convert.vehicle_id,
    "StartRental": convert.rental_args,
    "EndRental": convert.rental_args,
    "GetVehicle": convert.vehicle_id,
    "ListVehicles": convert.vehicle_list_query,
    "WatchVehicles": convert.watch_query,
    "CheckCompatibility": convert.compatibility_query,
    "SetRequestAllowance": convert.allowance_args,
    "GetRental": convert.rental_id,
    "ListRentals": convert.rental_list_query,
    "WatchVehicleEvents": convert_events.event_watch_query,
}
RPC_NAMES = {m.name for m in pb.DESCRIPTOR.services_by_name["VehicleGateway"].methods}


def ts(value: object) -> Timestamp:
    """Return the Timestamp of an aware datetime."""
    stamp = Timestamp()
    stamp.FromDatetime(value)  # type: ignore[arg-type]
    return stamp


# --- enums ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "wire", "unspecified"),
    [
        (TelemetryField, pb.TelemetryField, "TELEMETRY_FIELD_UNSPECIFIED"),
        (ConnectionStatus, pb.ConnectionStatus, "CONNECTION_STATUS_UNSPECIFIED"),
        (Availability, pb.Availability, "AVAILABILITY_UNSPECIFIED"),
        (LockAction, pb.LockAction, "LOCK_ACTION_UNSPECIFIED"),
        (ChargeAction, pb.ChargeAction, "CHARGE_ACTION_UNSPECIFIED"),
        (ChargingState, pb.ChargingState, "CHARGING_STATE_UNSPECIFIED"),
        (CommandState, pb.CommandState, "COMMAND_STATE_UNSPECIFIED"),
    ],
)
def test_enums_match_the_domain_one_to_one(
    domain: type[StrEnum], wire: EnumTypeWrapper, unspecified: str
) -> None:
    """Each proto enum is the domain enum by name, plus a zero UNSPECIFIED member."""
    assert wire.Value(unspecified) == 0
    assert set(wire.keys()) - {unspecified} == {member.name for member in domain}


def test_permission_capabilities_map_one_to_one() -> None:
    """Each domain capability has its own wire value, and the wire has nothing else."""
    wire = {convert._CAPABILITY_TO_PB[c] for c in Capability}
    assert len(wire) == len(Capability)
    assert wire == set(pb.PermissionCapability.values()) - {0}


@pytest.mark.parametrize(
    ("domain", "wire", "prefix"),
    [
        (ReadingSource, pb.ReadingSource, "READING_SOURCE_"),
        (FinalReadingState, pb.FinalReadingState, "FINAL_READING_"),
    ],
)
def test_prefixed_enums_match_the_domain_one_to_one(
    domain: type[StrEnum], wire: EnumTypeWrapper, prefix: str
) -> None:
    """The rental enums are the domain enums by name behind their prefix, plus a zero
    UNSPECIFIED member."""
    names = list(wire.keys())
    unspecified = [name for name in names if wire.Value(name) == 0]
    assert len(unspecified) == 1
    assert unspecified[0].endswith("_UNSPECIFIED")
    named = {name.removeprefix(prefix) for name in names} - {unspecified[0].removeprefix(prefix)}
    assert named == {member.name for member in domain}


def test_every_rpc_has_a_converter_and_bad_inputs() -> None:
    """The converter table and the malformed-request table cover every RPC of the service."""
    assert set(CONVERTERS) == RPC_NAMES
    assert {rpc for rpc, _, _ in samples.BAD_REQUESTS} == RPC_NAMES


# --- requests -------------------------------------------------------------------------------


@pytest.mark.parametrize(("sent", "kept"), [(0, None), (1, 1), (750, 750), (1_000_000, 1_000_000)])
def test_allowance_args_take_zero_as_the_fleets_allowance(sent: int, kept: int | None) -> None:
    """SetRequestAllowance's 0 means the fleet's allowance (None); 1 to 1,000,000 are kept."""
    request = pb.SetRequestAllowanceRequest(vehicle_id="car-1", monthly_allowance=sent)
    assert convert.allowance_args(request) == convert.AllowanceArgs(
        vehicle_id="car-1", monthly_allowance=kept
    )


def test_connect_url_query_upper_cases_the_vin() -> None:
    """GetConnectUrl keeps the vehicle id and normalises the optional VIN."""
    query = convert.connect_url_query(
        pb.GetConnectUrlRequest(vehicle_id="car-1", vin=samples.VIN.lower())
    )
    assert query == convert.ConnectUrlQuery(vehicle_id="car-1", vin=samples.VIN)


def test_connect_url_query_without_vin_is_none() -> None:
    """An empty VIN means no VIN."""
    query = convert.connect_url_query(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    assert query.vin is None


def test_connect_args() -> None:
    """Connect carries vehicle id, code, state and user id through unchanged; either code
    (v2) or user id (V3) may be missing, not both."""
    args = convert.connect_args(pb.ConnectRequest(vehicle_id="car-1", code="c-1", state="s-1"))
    assert args == convert.ConnectArgs(vehicle_id="car-1", code="c-1", state="s-1", user_id="")
    v3 = convert.connect_args(pb.ConnectRequest(vehicle_id="car-1", user_id="u-1", state="s-1"))
    assert v3 == convert.ConnectArgs(vehicle_id="car-1", code="", state="s-1", user_id="u-1")


def test_connect_args_carry_a_failed_redirects_error() -> None:
    """A redirect's `error` and `error_description` become the ConnectFailure passed on as
    given; neither code nor user id is needed then."""
    args = convert.connect_args(
        pb.ConnectRequest(
            vehicle_id="car-1",
            state="s-1",
            error="access_denied",
            error_description="User denied access to application",
        )
    )
    assert args.failure == ConnectFailure(
        error="access_denied", description="User denied access to application"
    )
    bare = convert.connect_args(
        pb.ConnectRequest(vehicle_id="car-1", state="s-1", error="a_code_nobody_documented")
    )
    assert bare.failure == ConnectFailure(error="a_code_nobody_documented", description="")
    assert (
        convert.connect_args(pb.ConnectRequest(vehicle_id="c", code="x", state="s")).failure is None
    )


def test_compatibility_query_upper_cases_vin_and_country() -> None:
    """CheckCompatibility takes the VIN and the country in any case, and passes them on in
    capitals."""
    query = convert.compatibility_query(
        pb.CheckCompatibilityRequest(vin=samples.VIN.lower(), country="de")
    )
    assert query == convert.CompatibilityQuery(vin=samples.VIN, country="DE")


def test_compatibility_message() -> None:
    """The report's verdict, each permission with its endpoints, and the required ones the
    car cannot serve reach the wire; absent reasons are empty strings."""
    message = convert.compatibility_message(samples.compatibility_report())
    assert (message.vin, message.country, message.compatible, message.reason) == (
        samples.VIN,
        "US",
        True,
        "",
    )
    assert [
        (p.permission, p.capability, p.reason, p.required, len(p.endpoints))
        for p in message.permissions
    ] == [
        ("control_security", pb.PERMISSION_CAPABLE, "", True, 1),
        ("read_odometer", pb.PERMISSION_NOT_CAPABLE, "SMARTCAR_NOT_CAPABLE", True, 1),
        ("read_tires", pb.PERMISSION_CAPABILITY_UNKNOWN, "", False, 0),
    ]
    assert message.permissions[1].endpoints[0] == pb.EndpointCapability(
        endpoint="/odometer", capable=False, reason="SMARTCAR_NOT_CAPABLE"
    )
    assert list(message.unsupported_required_permissions) == ["read_odometer"]
    assert message.checked_at == ts(samples.NOW)


def test_telemetry_query_defaults() -> None:
    """No fields means all fields (empty set) and no max_age means the server default."""
    query = convert.telemetry_query(pb.GetTelemetryRequest(vehicle_id="car-1"))
    assert query == convert.TelemetryQuery(vehicle_id="car-1", fields=frozenset(), max_age=None)


def test_telemetry_query_fields_and_max_age() -> None:
    """Requested fields map to domain fields (duplicates fold) and max_age to a timedelta."""
    query = convert.telemetry_query(
        pb.GetTelemetryRequest(
            vehicle_id="car-1",
            fields=[pb.ODOMETER, pb.LOCK_STATUS, pb.ODOMETER],
            max_age=Duration(seconds=90, nanos=500_000_000),
        )
    )
    assert query.fields == {TelemetryField.ODOMETER, TelemetryField.LOCK_STATUS}
    assert query.max_age == timedelta(seconds=90.5)


def test_zero_max_age_is_kept_apart_from_unset() -> None:
    """max_age 0s (always ask Smartcar) is a zero timedelta, not the default."""
    query = convert.telemetry_query(
        pb.GetTelemetryRequest(vehicle_id="car-1", max_age=Duration(seconds=0))
    )
    assert query.max_age == timedelta(0)


@pytest.mark.parametrize(
    ("request_type", "action"),
    [(pb.LockRequest, LockAction.LOCK), (pb.UnlockRequest, LockAction.UNLOCK)],
)
def test_command_args(request_type: type[pb.LockRequest], action: LockAction) -> None:
    """Lock/Unlock carry the vehicle, the action and the idempotency key."""
    args = convert.command_args(request_type(vehicle_id="car-1", request_id="req-1"), action)
    assert args == convert.CommandArgs(vehicle_id="car-1", action=action, request_id="req-1")


@pytest.mark.parametrize(
    ("request_type", "action"),
    [
        (pb.StartChargeRequest, ChargeAction.START_CHARGE),
        (pb.StopChargeRequest, ChargeAction.STOP_CHARGE),
    ],
)
def test_charge_command_args(
    request_type: type[pb.StartChargeRequest], action: ChargeAction
) -> None:
    """StartCharge/StopCharge carry the vehicle, the action and the idempotency key."""
    args = convert.command_args(request_type(vehicle_id="car-1", request_id="req-1"), action)
    assert args == convert.CommandArgs(vehicle_id="car-1", action=action, request_id="req-1")


@pytest.mark.parametrize("limit", [50, 80, 100])
def test_charge_limit_args_take_50_to_100_percent(limit: int) -> None:
    """SetChargeLimit carries the limit Smartcar accepts, 50-100 percent, as asked."""
    request = pb.SetChargeLimitRequest(vehicle_id="car-1", request_id="req-1", limit_percent=limit)
    assert convert.charge_limit_args(request) == convert.CommandArgs(
        vehicle_id="car-1",
        action=ChargeAction.SET_CHARGE_LIMIT,
        request_id="req-1",
        charge_limit_percent=limit,
    )


@pytest.mark.parametrize(("limit", "says"), [(0, "is required"), (49, "got 49"), (101, "got 101")])
def test_a_charge_limit_outside_50_to_100_is_named(limit: int, says: str) -> None:
    """A missing (0) or out-of-range limit is INVALID_ARGUMENT naming `limit_percent`."""
    request = pb.SetChargeLimitRequest(vehicle_id="car-1", limit_percent=limit)
    with pytest.raises(InvalidArgument) as caught:
        convert.charge_limit_args(request)
    [violation] = caught.value.violations
    assert violation.field == "limit_percent"
    assert says in violation.description
    assert "50 to 100" in violation.description


def test_command_request_id_is_optional() -> None:
    """An empty request id passes through for the gateway to fill in."""
    args = convert.command_args(pb.LockRequest(vehicle_id="car-1"), LockAction.LOCK)
    assert args.request_id == ""


@pytest.mark.parametrize("request_type", [pb.StartRentalRequest, pb.EndRentalRequest])
def test_rental_args(request_type: type[pb.StartRentalRequest]) -> None:
    """StartRental/EndRental carry the vehicle and rental ids."""
    args = convert.rental_args(request_type(vehicle_id="car-1", rental_id="rental-7"))
    assert args == convert.RentalArgs(vehicle_id="car-1", rental_id="rental-7")


@pytest.mark.parametrize("request_type", [pb.GetVehicleRequest, pb.DisconnectRequest])
def test_vehicle_id(request_type: type[pb.GetVehicleRequest]) -> None:
    """Requests naming only a vehicle give its id."""
    assert convert.vehicle_id(request_type(vehicle_id="car-1")) == "car-1"


def test_vehicle_list_query_defaults() -> None:
    """No filter means every status; page size 0 means the default page size."""
    query = convert.vehicle_list_query(pb.ListVehiclesRequest())
    assert query == convert.VehicleListQuery(
        status=None, page_size=validation.DEFAULT_PAGE_SIZE, page_token=""
    )


def test_vehicle_list_query_filter_and_paging() -> None:
    """A status filter maps to the domain status; size and token pass through."""
    query = convert.vehicle_list_query(
        pb.ListVehiclesRequest(status=pb.EXPIRED, page_size=10, page_token="tok")
    )
    assert query == convert.VehicleListQuery(
        status=ConnectionStatus.EXPIRED, page_size=10, page_token="tok"
    )


def test_rental_id() -> None:
    """GetRental gives its rental id."""
    assert convert.rental_id(pb.GetRentalRequest(rental_id="rental-7")) == "rental-7"


def test_rental_list_query_defaults() -> None:
    """No filters mean every vehicle and no end bounds; page size 0 means the default."""
    query = convert.rental_list_query(pb.ListRentalsRequest())
    assert query == convert.RentalListQuery(
        vehicle_id=None,
        ended_after=None,
        ended_before=None,
        page_size=validation.DEFAULT_PAGE_SIZE,
        page_token="",
    )


def test_rental_list_query_filters_and_paging() -> None:
    """The vehicle, the end bounds (as aware UTC times), size and token pass through."""
    after, before = samples.NOW - timedelta(days=1), samples.NOW
    query = convert.rental_list_query(
        pb.ListRentalsRequest(
            vehicle_id="car-1",
            ended_after=ts(after),
            ended_before=ts(before),
            page_size=10,
            page_token="tok",
        )
    )
    assert query == convert.RentalListQuery(
        vehicle_id="car-1", ended_after=after, ended_before=before, page_size=10, page_token="tok"
    )
    assert query.ended_after is not None
    assert query.ended_after.tzinfo is UTC


@pytest.mark.parametrize(
    ("rpc", "request_message", "paths"),
    samples.BAD_REQUESTS,
    ids=[f"{rpc}-{'+'.join(paths)}-{i}" for i, (rpc, _, paths) in enumerate(samples.BAD_REQUESTS)],
)
def test_malformed_requests_name_every_bad_field(
    rpc: str, request_message: Message, paths: tuple[str, ...]
) -> None:
    """Each malformed request raises one InvalidArgument naming every bad field path."""
    with pytest.raises(InvalidArgument) as caught:
        CONVERTERS[rpc](request_message)
    assert tuple(v.field for v in caught.value.violations) == paths


# --- responses ------------------------------------------------------------------------------


def test_connect_url_message() -> None:
    """GetConnectUrl answers url, state and expiry."""
    value = samples.connect_url()
    assert convert.connect_url_message(value) == pb.GetConnectUrlResponse(
        url=value.url, state=value.state, expires_at=ts(value.expires_at)
    )


def test_full_vehicle_message() -> None:
    """A full panel maps every field; permissions are sorted; internal ids stay out."""
    panel = samples.full_panel()
    v = panel.vehicle
    assert v.last_command is not None
    assert panel.active_rental is not None
    assert convert.vehicle_message(panel) == pb.Vehicle(
        vehicle_id="car-1",
        status=pb.ACTIVE,
        status_reason="connected",
        status_changed_at=ts(v.status_changed_at),
        smartcar_vehicle_id="sc-0a1b2c",
        make="TESLA",
        model="Model 3",
        year=2019,
        vin=samples.VIN,
        granted_permissions=["control_security", "read_odometer", "read_vin"],
        missing_permissions=["read_engine_oil", "read_tires"],
        last_command=pb.LastCommand(action=pb.LOCK, request_id="req-1", at=ts(v.last_command.at)),
        last_telemetry_at=ts(v.last_telemetry_at),
        active_rental=pb.Rental(
            rental_id="rental-7",
            vehicle_id="car-1",
            started_at=ts(panel.active_rental.started_at),
        ),
        smartcar_api=pb.SMARTCAR_API_V3,
        smartcar_user_id="user-1",
        requests_this_month=412,
        monthly_request_allowance=1000,
        request_reserve=100,
        request_allowance_overridden=True,
        request_budget_resets_at=ts(panel.request_budget_resets_at),
    )


def test_minimal_vehicle_message_leaves_unknowns_unset() -> None:
    """A never-connected vehicle has empty strings, year 0 and no sub-messages set."""
    message = convert.vehicle_message(samples.minimal_panel())
    assert message == pb.Vehicle(vehicle_id="car-2", status=pb.NOT_CONNECTED)
    for name in ("status_changed_at", "last_command", "last_telemetry_at", "active_rental"):
        assert not message.HasField(name)  # type: ignore[arg-type]


def test_vehicle_page_message() -> None:
    """ListVehicles answers each panel in order and the next page token."""
    page = samples.page()
    message = convert.vehicle_page_message(page)
    assert [v.vehicle_id for v in message.vehicles] == ["car-1", "car-2"]
    assert message.vehicles[0] == convert.vehicle_message(page.panels[0])
    assert message.next_page_token == "tok-2"


@pytest.mark.parametrize("ended", [False, True])
def test_rental_message(ended: bool) -> None:
    """A rental maps its ids and times; ended_at is set only once it ended."""
    rental = samples.rental(ended=ended)
    message = convert.rental_message(rental)
    assert message.rental_id == "rental-7"
    assert message.vehicle_id == "car-1"
    assert message.started_at == ts(rental.started_at)
    assert message.HasField("ended_at") is ended


def test_an_active_rental_has_its_start_reading_only() -> None:
    """An active rental shows its start reading, no end reading, no final reading state and
    no differences."""
    record = samples.rental_record()
    message = convert.rental_record_message(record)
    assert message.HasField("start_reading")
    assert not message.HasField("end_reading")
    assert message.final_reading_state == pb.FINAL_READING_STATE_UNSPECIFIED
    assert not message.final_reading_pending
    for name in ("distance_km", "fuel_percent_change", "battery_percent_change"):
        assert not message.HasField(name)  # type: ignore[arg-type]


def test_a_rental_field_reading_carries_value_source_and_age() -> None:
    """Each field of a rental's reading is GetTelemetry's reading plus where it came from,
    when the rental took it and how old it was then; a value kept from a sleeping car keeps
    its reason and its three hours."""
    record = samples.rental_record()
    start = convert.rental_record_message(record).start_reading
    odometer = record.start[TelemetryField.ODOMETER]
    assert start.odometer == pb.RentalFieldReading(
        reading=convert.field_reading_message(odometer.reading),
        source=pb.READING_SOURCE_LIVE,
        taken_at=ts(odometer.taken_at),
        age=Duration(seconds=600),
    )
    assert start.fuel.source == pb.READING_SOURCE_CACHE
    assert start.battery.reading.availability == pb.NOT_CAPABLE
    assert not start.battery.HasField("age")
    assert start.location.reading.reason == "VEHICLE_STATE:ASLEEP"
    assert start.location.reading.location == pb.Location(latitude=52.52, longitude=13.405)
    assert start.location.age == Duration(seconds=3 * 3600)


def test_an_ended_rental_shows_both_readings_and_the_differences() -> None:
    """An ended rental with a pending final reading: both readings, pending, the distance
    driven and the fuel used; no battery difference for a car without one."""
    message = convert.rental_record_message(samples.rental_record(ended=True))
    assert message.end_reading.odometer.source == pb.READING_SOURCE_WEBHOOK
    assert not message.end_reading.HasField("battery")
    assert message.final_reading_pending
    assert message.final_reading_state == pb.FINAL_READING_PENDING
    assert not message.HasField("final_reading_settled_at")
    assert message.distance_km == pytest.approx(41.5)
    assert message.fuel_percent_change == pytest.approx(-8.5)
    assert not message.HasField("battery_percent_change")


def test_a_settled_final_reading_says_when_and_why() -> None:
    """A given-up final reading is not pending, and carries when and why."""
    record = samples.rental_record(ended=True, final=FinalReadingState.GIVEN_UP)
    message = convert.rental_record_message(record)
    assert not message.final_reading_pending
    assert message.final_reading_state == pb.FINAL_READING_GIVEN_UP
    assert message.final_reading_reason == "the car's connection was removed"
    assert record.final is not None
    assert message.final_reading_settled_at == ts(record.final.settled_at)


def test_only_the_fields_a_caller_may_read_are_shown() -> None:
    """A caller allowed the odometer alone sees the odometer and the distance, nothing of
    fuel, battery or location (the readings themselves stay present, empty)."""
    message = convert.rental_record_message(
        samples.rental_record(ended=True), visible=frozenset({TelemetryField.ODOMETER})
    )
    for reading in (message.start_reading, message.end_reading):
        assert [f.name for f, _ in reading.ListFields()] == ["odometer"]
    assert message.HasField("distance_km")
    assert not message.HasField("fuel_percent_change")
    hidden = convert.rental_record_message(samples.rental_record(), visible=frozenset())
    assert hidden.HasField("start_reading")
    assert hidden.start_reading == pb.RentalReading()


def test_a_reading_not_taken_yet_is_absent() -> None:
    """A rental whose start reading is still on its way has no start_reading at all."""
    record = dataclasses.replace(samples.rental_record(), start={})
    assert not convert.rental_record_message(record).HasField("start_reading")


def test_rental_page_message() -> None:
    """ListRentals answers each rental in order, filtered alike, and the next page token."""
    records = (samples.rental_record(ended=True), samples.rental_record())
    page = RentalPage(records=records, next_page_token="tok-2")
    visible = frozenset({TelemetryField.FUEL})
    message = convert.rental_page_message(page, visible=visible)
    assert list(message.rentals) == [
        convert.rental_record_message(record, visible=visible) for record in records
    ]
    assert message.next_page_token == "tok-2"


def test_command_result_message() -> None:
    """A completed, replayed command maps every field."""
    result = samples.command_result()
    assert convert.command_result_message(result) == pb.CommandResult(
        request_id="req-9",
        vehicle_id="car-1",
        action=pb.UNLOCK,
        state=pb.SUCCEEDED,
        completed_at=ts(result.completed_at),
        replayed=True,
    )


def test_a_charge_command_result_names_its_charge_action() -> None:
    """A charge command's result sets `charge_action` and leaves the lock `action` unset;
    the panel's last command does the same."""
    result = CommandResult(
        request_id="req-3",
        vehicle_id="car-1",
        action=ChargeAction.SET_CHARGE_LIMIT,
        state=CommandState.SUCCEEDED,
        completed_at=samples.NOW,
    )
    message = convert.command_result_message(result)
    assert (message.action, message.charge_action) == (
        pb.LOCK_ACTION_UNSPECIFIED,
        pb.SET_CHARGE_LIMIT,
    )
    last = LastCommand(action=ChargeAction.START_CHARGE, request_id="req-4", at=samples.NOW)
    panel = samples.full_panel()
    vehicle = dataclasses.replace(panel.vehicle, last_command=last)
    shown = convert.vehicle_message(dataclasses.replace(panel, vehicle=vehicle)).last_command
    assert (shown.action, shown.charge_action) == (pb.LOCK_ACTION_UNSPECIFIED, pb.START_CHARGE)


def test_command_outcome_unknown_has_no_completion_time() -> None:
    """A command whose outcome is unknown reports that state and no completed_at."""
    message = convert.command_result_message(
        samples.command_result(state=CommandState.OUTCOME_UNKNOWN)
    )
    assert message.state == pb.OUTCOME_UNKNOWN
    assert not message.HasField("completed_at")


def test_telemetry_message_orders_readings_by_field() -> None:
    """Readings come in TelemetryField order, with the cache flag and the vehicle id."""
    message = convert.telemetry_message(samples.telemetry(from_cache=True))
    assert message.vehicle_id == "car-1"
    assert message.from_cache is True
    assert [r.field for r in message.readings] == [
        pb.LOCATION,
        pb.ODOMETER,
        pb.FUEL,
        pb.BATTERY,
        pb.LOCK_STATUS,
        pb.TIRE_PRESSURE,
        pb.ENGINE_OIL,
        pb.CHARGE,
    ]


def test_telemetry_values_fill_the_matching_oneof_member() -> None:
    """Each value lands in the oneof member named after its field, units in the names."""
    readings = {r.field: r for r in convert.telemetry_message(samples.telemetry()).readings}
    assert readings[pb.LOCATION].location == pb.Location(latitude=52.52, longitude=13.405)
    assert readings[pb.ODOMETER].odometer == pb.Odometer(distance_km=12345.6)
    assert readings[pb.FUEL].fuel == pb.Fuel(percent_remaining=61.5, range_km=480.0)
    assert readings[pb.LOCK_STATUS].lock_status == pb.LockStatus(
        locked=True,
        doors=[
            pb.DoorState(door="front_left", status="CLOSED"),
            pb.DoorState(door="back_right", status="OPEN"),
        ],
    )
    assert readings[pb.TIRE_PRESSURE].tire_pressure == pb.TirePressure(
        front_left_kpa=230.0, front_right_kpa=231.5, back_left_kpa=228.0
    )
    assert readings[pb.ENGINE_OIL].engine_oil == pb.EngineOil()
    for field, reading in readings.items():
        member = reading.WhichOneof("value")
        no_value = (pb.BATTERY, pb.CHARGE)
        assert member == (None if field in no_value else pb.TelemetryField.Name(field).lower())


def test_unreported_values_are_absent_not_zero() -> None:
    """A value the car did not report is unset on the wire, telling null from zero."""
    readings = {r.field: r for r in convert.telemetry_message(samples.telemetry()).readings}
    assert not readings[pb.FUEL].fuel.HasField("amount_remaining_l")
    assert readings[pb.FUEL].fuel.HasField("percent_remaining")
    assert not readings[pb.TIRE_PRESSURE].tire_pressure.HasField("back_right_kpa")
    assert not readings[pb.ENGINE_OIL].engine_oil.HasField("life_remaining_percent")


def test_available_reading_carries_its_times() -> None:
    """An available reading has recorded_at and fetched_at, and no reason."""
    reading = samples.telemetry().readings[TelemetryField.ODOMETER]
    message = convert.field_reading_message(reading)
    assert message.availability == pb.AVAILABLE
    assert message.recorded_at == ts(reading.recorded_at)
    assert message.fetched_at == ts(reading.fetched_at)
    assert message.reason == ""


def test_unavailable_reading_says_why_and_has_no_value() -> None:
    """A field the car cannot report is marked, with the reason, and carries no value."""
    reading = samples.telemetry().readings[TelemetryField.BATTERY]
    message = convert.field_reading_message(reading)
    assert message.availability == pb.NOT_CAPABLE
    assert message.reason == "COMPATIBILITY:VEHICLE_NOT_CAPABLE"
    assert message.WhichOneof("value") is None
    assert not message.HasField("recorded_at")


def test_battery_reading() -> None:
    """A battery reading maps percent and leaves an unreported range unset."""
    message = convert.field_reading_message(samples.battery_reading())
    assert message.battery == pb.Battery(percent_remaining=80.0)
    assert not message.battery.HasField("range_km")


def test_charge_reading() -> None:
    """A charge reading maps plugged in, state and limit, and leaves what is not reported
    unset (minutes to complete, and a state the car did not give)."""
    message = convert.field_reading_message(samples.charge_reading())
    assert message.WhichOneof("value") == "charge"
    assert message.charge == pb.Charge(plugged_in=True, state=pb.CHARGING, limit_percent=80.0)
    assert not message.charge.HasField("minutes_to_complete")
    unknown = convert.field_reading_message(samples.charge_reading(state=None))
    assert unknown.charge.state == pb.CHARGING_STATE_UNSPECIFIED


def test_telemetry_requests_asking_the_same_share_one_checked_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A request asking what one already validated asked (for any vehicle) gets its fields
    and max_age without checking them again, and only its vehicle id checked; an invalid
    request is refused every time, never kept."""
    first = pb.GetTelemetryRequest(vehicle_id="car-q", fields=[pb.ODOMETER])
    first.max_age.FromSeconds(60)
    assert convert.telemetry_query(first) == convert.TelemetryQuery(
        vehicle_id="car-q",
        fields=frozenset({TelemetryField.ODOMETER}),
        max_age=timedelta(seconds=60),
    )
    checked: list[pb.GetTelemetryRequest] = []
    check = convert._checked_telemetry_query
    monkeypatch.setattr(
        convert, "_checked_telemetry_query", lambda r: checked.append(r) or check(r)
    )
    again = pb.GetTelemetryRequest()
    again.CopyFrom(first)
    again.vehicle_id = "car-r"
    assert convert.telemetry_query(again) == convert.TelemetryQuery(
        vehicle_id="car-r",
        fields=frozenset({TelemetryField.ODOMETER}),
        max_age=timedelta(seconds=60),
    )
    assert checked == []
    other = pb.GetTelemetryRequest()
    other.CopyFrom(first)
    other.max_age.FromSeconds(61)
    assert convert.telemetry_query(other).max_age == timedelta(seconds=61)
    assert checked == [other]
    for bad in (pb.GetTelemetryRequest(vehicle_id="car q"), pb.GetTelemetryRequest()):
        bad.MergeFrom(pb.GetTelemetryRequest(fields=[pb.ODOMETER], max_age=first.max_age))
        for _ in range(2):
            with pytest.raises(InvalidArgument) as refused:
                convert.telemetry_query(bad)
            assert [v.field for v in refused.value.violations] == ["vehicle_id"]


def test_the_kept_queries_are_keyed_by_every_request_field() -> None:
    """The key of a kept query names every GetTelemetryRequest field: a field added to the
    request must be added to the key (`convert.telemetry_query`), or two requests differing
    only in it would share a query (the vehicle id is checked on every request instead)."""
    assert {f.name for f in pb.GetTelemetryRequest.DESCRIPTOR.fields} == {
        "vehicle_id",
        "fields",
        "max_age",
        "held_when_rate_limited",
    }


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 11, 30, 3, 4, 5, 123_456, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
        datetime(2028, 2, 29, 23, 59, 40, tzinfo=timezone(timedelta(hours=14))),
        datetime(2026, 11, 30, 3, 4, 5, 7),  # naive: protobuf reads it as UTC
    ],
)
def test_timestamps_are_protobufs_own(value: datetime) -> None:
    """`convert.timestamp` gives the seconds and nanos `Timestamp.FromDatetime` gives."""
    expected = Timestamp()
    expected.FromDatetime(value)
    assert convert.timestamp(value) == expected
