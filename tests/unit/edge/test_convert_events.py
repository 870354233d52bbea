"""WatchVehicleEvents converters: the request to validated values, each event kind to its
message, and what a caller whose roles may not read some fields is shown."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

import pytest
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.access import Caller, Role
from gateway.core.errors import AccessDenied, Refusal
from gateway.core.model import ConnectionStatus, FinalReadingState, TelemetryField
from gateway.core.vehicle_events import (
    BudgetWarningDetail,
    ClosureKind,
    ErrorState,
    FinalReadingDetail,
    LockChange,
    LowLevel,
    ReadingOrigin,
    StatusChange,
    VehicleErrorReport,
    VehicleEvent,
    VehicleEventKind,
)
from gateway.edge.grpc.access import AccessGuard
from gateway.edge.grpc.convert_events import (
    EventWatchQuery,
    event_watch_query,
    shown_kinds,
    vehicle_event_message,
)
from tests.unit.edge import samples

K = VehicleEventKind
NOW = samples.NOW
WATCH_EVENTS = "/vehiclegateway.v1.VehicleGateway/WatchVehicleEvents"
BILLING = frozenset({TelemetryField.ODOMETER, TelemetryField.FUEL, TelemetryField.BATTERY})


@pytest.mark.parametrize(
    ("domain", "wire", "prefix"),
    [
        (VehicleEventKind, pb.VehicleEventKind, "VEHICLE_EVENT_"),
        (ReadingOrigin, pb.ReadingOrigin, "READING_ORIGIN_"),
        (ClosureKind, pb.ClosureKind, "CLOSURE_"),
        (ErrorState, pb.VehicleErrorState, "VEHICLE_ERROR_"),
    ],
)
def test_event_enums_match_the_domain_one_to_one(
    domain: type[StrEnum], wire: EnumTypeWrapper, prefix: str
) -> None:
    """Each event enum is the domain enum by name behind its prefix, plus a zero
    UNSPECIFIED member."""
    names = [name for name in wire.keys() if wire.Value(name) != 0]  # noqa: SIM118 - an enum wrapper
    assert {name.removeprefix(prefix) for name in names} == {member.name for member in domain}
    assert all(name.startswith(prefix) for name in names)


def test_a_valid_request_becomes_its_query() -> None:
    """Ids, kinds (a repeat is kept once) and the cursor come through; empty means all."""
    request = pb.WatchVehicleEventsRequest(
        vehicle_ids=["car-1", "car-2"],
        kinds=[
            pb.VEHICLE_EVENT_LOW_FUEL,
            pb.VEHICLE_EVENT_LOW_FUEL,
            pb.VEHICLE_EVENT_VEHICLE_ERROR,
        ],
        after_id=0,
    )
    assert event_watch_query(request) == EventWatchQuery(
        vehicle_ids=frozenset({"car-1", "car-2"}),
        kinds=frozenset({K.LOW_FUEL, K.VEHICLE_ERROR}),
        after_id=0,
    )
    assert event_watch_query(pb.WatchVehicleEventsRequest()) == EventWatchQuery(
        vehicle_ids=frozenset(), kinds=frozenset(), after_id=None
    )


def _event(kind: VehicleEventKind, detail: object) -> VehicleEvent:
    return VehicleEvent(
        id=40,
        vehicle_id="car-1",
        kind=kind,
        at=NOW,
        description="what happened",
        detail=detail,  # type: ignore[arg-type]
    )


FINAL = FinalReadingDetail(
    state=FinalReadingState.RECORDED,
    ended_at=NOW - timedelta(hours=1),
    distance_km=42.5,
    fuel_percent_change=-8.0,
    battery_percent_change=None,
)


@pytest.mark.parametrize(
    ("event", "member", "expected"),
    [
        (
            _event(
                K.LOCK_STATE_CHANGED,
                LockChange(
                    locked=True, origin=ReadingOrigin.COMMAND, recorded_at=NOW, request_id="l-1"
                ),
            ),
            "lock_state",
            pb.LockStateChange(
                locked=True,
                origin=pb.READING_ORIGIN_COMMAND,
                recorded_at=samples.timestamp(NOW),
                request_id="l-1",
            ),
        ),
        (
            _event(
                K.VEHICLE_ERROR,
                VehicleErrorReport(
                    type="CONNECTED_SERVICES_ACCOUNT",
                    code="AUTHENTICATION_FAILED",
                    description=None,
                    state=ErrorState.ACTIVE,
                    resolution_type="REAUTHENTICATE",
                    resolution_url="https://connect.smartcar.com/oauth/reauthenticate",
                ),
            ),
            "vehicle_error",
            pb.VehicleErrorReport(
                type="CONNECTED_SERVICES_ACCOUNT",
                code="AUTHENTICATION_FAILED",
                state=pb.VEHICLE_ERROR_ACTIVE,
                resolution_type="REAUTHENTICATE",
                resolution_url="https://connect.smartcar.com/oauth/reauthenticate",
            ),
        ),
        (
            _event(
                K.LOW_CHARGE,
                LowLevel(percent=17.5, threshold_percent=20, origin=ReadingOrigin.WEBHOOK),
            ),
            "low_level",
            pb.LowLevel(percent=17.5, threshold_percent=20, origin=pb.READING_ORIGIN_WEBHOOK),
        ),
        (
            _event(
                K.CONNECTION_STATUS_CHANGED,
                StatusChange(
                    from_status=ConnectionStatus.ACTIVE,
                    to_status=ConnectionStatus.DISCONNECTED,
                    reason="revoked",
                ),
            ),
            "status_change",
            pb.ConnectionStatusChange(
                from_status=pb.ACTIVE, to_status=pb.DISCONNECTED, reason="revoked"
            ),
        ),
        (
            _event(
                K.BUDGET_WARNING,
                BudgetWarningDetail(
                    month="2026-11",
                    requests_this_month=400,
                    monthly_allowance=500,
                    warning_percent=80,
                ),
            ),
            "budget_warning",
            pb.BudgetWarning(
                month="2026-11", requests_this_month=400, monthly_allowance=500, warning_percent=80
            ),
        ),
        (
            _event(K.FINAL_READING_RECORDED, FINAL),
            "final_reading",
            pb.RentalFinalReading(
                state=pb.FINAL_READING_RECORDED,
                ended_at=samples.timestamp(NOW - timedelta(hours=1)),
                distance_km=42.5,
                fuel_percent_change=-8.0,
            ),
        ),
        (
            samples.vehicle_event(),
            "open_at_end",
            pb.OpenAtRentalEnd(
                open=[
                    pb.Closure(kind=pb.CLOSURE_DOOR, name="front_left"),
                    pb.Closure(kind=pb.CLOSURE_TRUNK, name="rear"),
                ],
                locked=False,
                recorded_at=samples.timestamp(NOW - timedelta(seconds=20)),
            ),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_kind_fills_its_own_detail(event: VehicleEvent, member: str, expected: object) -> None:
    """The envelope carries id, vehicle, kind, time, rental and words; the one detail
    member of the kind is set, as the domain detail says."""
    message = vehicle_event_message(event)
    assert message.WhichOneof("detail") == member
    assert getattr(message, member) == expected
    assert (message.id, message.vehicle_id, message.description) == (
        event.id,
        "car-1",
        event.description,
    )
    assert message.kind == pb.VehicleEventKind.Value(f"VEHICLE_EVENT_{event.kind.name}")
    assert message.rental_id == (event.rental_id or "")
    assert message.at == samples.timestamp(NOW)


def test_a_final_reading_shows_only_the_differences_the_caller_may_read() -> None:
    """A caller that may read the odometer only sees the distance, not the fuel change."""
    message = vehicle_event_message(
        _event(K.FINAL_READING_RECORDED, FINAL), visible=frozenset({TelemetryField.ODOMETER})
    )
    assert message.final_reading.HasField("distance_km")
    assert not message.final_reading.HasField("fuel_percent_change")


def test_a_caller_sees_the_kinds_its_fields_allow() -> None:
    """Every kind for a caller that reads everything; no lock events for billing (no
    LOCK_STATUS); the kinds asked for, as far as it may see them, and never an empty set
    (which would mean all): none visible is AccessDenied."""
    assert shown_kinds(frozenset(), frozenset(TelemetryField)) == frozenset(K)
    billing = shown_kinds(frozenset(), BILLING)
    assert billing == frozenset(K) - {K.LOCK_STATE_CHANGED, K.DOORS_OPEN_AT_RENTAL_END}
    asked = frozenset({K.LOW_FUEL, K.FINAL_READING_RECORDED})
    assert shown_kinds(asked, BILLING) == asked
    with pytest.raises(AccessDenied) as none:
        shown_kinds(frozenset({K.LOW_CHARGE}), frozenset({TelemetryField.FUEL}))
    assert "LOW_CHARGE" in none.value.message


def test_asking_for_a_kind_that_shows_a_field_not_readable_is_denied() -> None:
    """Billing asking for lock events is refused at admission, naming the field; asking
    for final readings, or for every kind, is admitted."""
    billing = Caller(
        name="billing-service",
        roles=(Role(methods=frozenset({"WatchVehicleEvents"}), telemetry_fields=BILLING),),
    )
    locks = pb.WatchVehicleEventsRequest(
        kinds=[pb.VEHICLE_EVENT_FINAL_READING_RECORDED, pb.VEHICLE_EVENT_DOORS_OPEN_AT_RENTAL_END]
    )
    with pytest.raises(AccessDenied) as denied:
        AccessGuard._check_event_kinds(billing, WATCH_EVENTS, locks)
    assert denied.value.refusal is Refusal.FIELDS_DENIED
    assert denied.value.metadata == {"caller": "billing-service", "fields": "LOCK_STATUS"}
    assert "DOORS_OPEN_AT_RENTAL_END" in denied.value.message
    finals = pb.WatchVehicleEventsRequest(kinds=[pb.VEHICLE_EVENT_FINAL_READING_RECORDED])
    AccessGuard._check_event_kinds(billing, WATCH_EVENTS, finals)
    AccessGuard._check_event_kinds(billing, WATCH_EVENTS, pb.WatchVehicleEventsRequest())
