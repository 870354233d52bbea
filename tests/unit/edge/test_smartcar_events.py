"""Smartcar webhook events read by the v2 adapter: the envelope, and the reports it decodes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core.model import Odometer, OwnerAction, TelemetryField, WebhookEvent
from gateway.core.reports import ErrorReport, NotHandled, ReportedError, StateReport
from gateway.edge.smartcar.events import (
    MalformedEvent,
    SmartcarV2Events,
    event_from,
    smartcar_vehicle_id,
)
from tests.unit.edge.webhook_samples import error_event, signal, state_event

ARRIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RECORDED = ARRIVED - timedelta(minutes=5)


def nested(levels: int) -> dict[str, Any]:
    """Return an event body whose `data` nests `levels` deep."""
    data: Any = {}
    for _ in range(levels - 1):
        data = {"d": data}
    return {"eventId": "evt-1", "eventType": "VEHICLE_STATE", "data": data}


@pytest.mark.parametrize(
    "payload",
    [
        {"eventType": "VEHICLE_STATE"},
        {"eventId": "", "eventType": "VEHICLE_STATE"},
        {"eventId": 7, "eventType": "VEHICLE_STATE"},
        {"eventId": "evt-1"},
        {"eventId": "evt-\ud800", "eventType": "VEHICLE_STATE"},
        {"eventId": "evt-\x00", "eventType": "VEHICLE_STATE"},
        {"eventId": "e" * 129, "eventType": "VEHICLE_STATE"},
        {"eventId": "evt-1", "eventType": "VEHICLE_\udc00"},
        {"eventId": "evt-1", "eventType": "VEHICLE_STATE", "vehicleId": "v" * 129},
        nested(32),
    ],
)
def test_a_body_without_event_id_or_type_is_malformed(payload: dict[str, Any]) -> None:
    """`event_from` refuses bodies without an event id and type that storage keeps (1-128
    characters, no lone surrogate, no NUL), with a vehicle id too long, or nested too deep."""
    with pytest.raises(MalformedEvent):
        event_from(payload, received_at=ARRIVED)


def test_the_envelope_becomes_a_pending_event_keeping_the_whole_body() -> None:
    """An event's id, type and vehicle come from its envelope; the body is kept as received,
    dated when it was received."""
    payload = state_event("evt-1", "sc-1", [])
    event = event_from(payload, received_at=ARRIVED)
    assert event == WebhookEvent(
        event_id="evt-1",
        event_type="VEHICLE_STATE",
        smartcar_vehicle_id="sc-1",
        received_at=ARRIVED,
        payload=payload,
    )
    assert event.pending


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"vehicleId": "top", "data": {"vehicle": {"id": "nested"}}}, "nested"),
        ({"vehicleId": "top", "data": {"vehicle": {"id": 7}}}, "top"),
        ({"data": {"vehicle": {"id": "nested"}}}, "nested"),
        ({"vehicleId": "", "data": {"vehicle": "sc-1"}}, None),
        ({"data": "none"}, None),
    ],
)
def test_the_vehicle_is_data_vehicle_id_else_vehicle_id(
    payload: dict[str, Any], expected: str | None
) -> None:
    """`data.vehicle.id` names the vehicle (as in live payloads), else the documented
    top-level `vehicleId`; neither a non-empty string: no vehicle."""
    assert smartcar_vehicle_id(payload) == expected


def test_text_no_store_keeps_makes_an_event_failed_on_arrival() -> None:
    """A lone surrogate past the envelope gives an event failed when received, its text
    replaced, the vehicle id made printable, with the path in the reason."""
    payload = state_event("evt-1", "sc-\ud800", [])
    event = event_from(payload, received_at=ARRIVED)
    assert (event.pending, event.failed_at) == (False, ARRIVED)
    assert event.smartcar_vehicle_id == "sc-\ufffd"
    assert event.error == (
        "not applied: vehicleId holds a lone UTF-16 surrogate; stored with U+FFFD in its place"
    )
    assert event.payload["vehicleId"] == "sc-\ufffd"


def decode(payload: dict[str, Any]) -> object:
    """Return what the v2 decoder reads from `payload`, received at ARRIVED."""
    return SmartcarV2Events().decode(event_from(payload, received_at=ARRIVED))


def test_a_vehicle_state_event_is_a_state_report() -> None:
    """VEHICLE_STATE reports its signals' readings, fetched when the event arrived, and
    whether the car says it is asleep."""
    carried = [
        signal("odometer-traveleddistance", {"unit": "km", "value": 12}, at=RECORDED),
        signal("connectivitystatus-isasleep", {"value": True}, at=RECORDED),
    ]
    report = decode(state_event("evt-1", "sc-1", carried))
    assert isinstance(report, StateReport)
    [reading] = report.readings
    assert (reading.field, reading.value) == (TelemetryField.ODOMETER, Odometer(distance_km=12))
    assert (reading.recorded_at, reading.fetched_at) == (RECORDED, ARRIVED)
    assert (report.rejections, report.asleep) == ((), True)


def test_a_vehicle_error_event_is_an_error_report() -> None:
    """VEHICLE_ERROR reports each error object in order: labelled TYPE:CODE (UNKNOWN with
    neither), its type, code and description if they are text, resolved when its state is
    RESOLVED, with Smartcar's resolution (an object with a type and a url, or a bare type)."""
    payload = error_event("e1", "sc-1", error_type="VEHICLE_STATE", code="UNREACHABLE")
    reauthenticate = "https://connect.smartcar.com/oauth/reauthenticate?vehicle_id=sc-1"
    payload["data"]["errors"] += [
        "not an object",
        {"type": "COMPATIBILITY", "state": "RESOLVED", "description": 7, "resolution": 3},
        {"description": "no type, no code", "resolution": "CONTACT_SUPPORT"},
        {
            "type": "CONNECTED_SERVICES_ACCOUNT",
            "code": "AUTHENTICATION_FAILED",
            "state": "ERROR",
            "resolution": {"type": "REAUTHENTICATE", "url": reauthenticate},
        },
    ]
    assert decode(payload) == ErrorReport(
        (
            ReportedError(
                label="VEHICLE_STATE:UNREACHABLE",
                description="unreachable (test)",
                type="VEHICLE_STATE",
                code="UNREACHABLE",
                resolution_type="RETRY_LATER",
            ),
            ReportedError(label="COMPATIBILITY", resolved=True, type="COMPATIBILITY"),
            ReportedError(
                label="UNKNOWN", description="no type, no code", resolution_type="CONTACT_SUPPORT"
            ),
            ReportedError(
                label="CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED",
                type="CONNECTED_SERVICES_ACCOUNT",
                code="AUTHENTICATION_FAILED",
                resolution_type="REAUTHENTICATE",
                resolution_url=reauthenticate,
                owner_action=OwnerAction(
                    error="CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED",
                    resolution_type="REAUTHENTICATE",
                    resolution_url=reauthenticate,
                ),
            ),
        )
    )


def test_a_vehicle_error_event_without_an_error_list_reports_none() -> None:
    """`data.errors` that is no list is an error report without errors."""
    payload = error_event("e1", "sc-1", error_type="VEHICLE_STATE", code="ASLEEP")
    payload["data"]["errors"] = {"type": "VEHICLE_STATE"}
    assert decode(payload) == ErrorReport(())


def test_an_event_type_the_gateway_does_not_handle_says_so() -> None:
    """Any other event type is not handled, and the reason names it."""
    payload = state_event("evt-1", "sc-1", [])
    payload["eventType"] = "VEHICLE_NICKNAME"
    assert decode(payload) == NotHandled("event type VEHICLE_NICKNAME is not handled")
