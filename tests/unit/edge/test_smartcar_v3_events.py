"""API V3 webhook events (payload 4.0): the envelope as live payloads and Smartcar's
reference shape it, the reports the V3 decoder makes of them, and the user they name."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core.model import (
    Battery,
    Fuel,
    Odometer,
    OwnerAction,
    TelemetryField,
    WebhookEvent,
)
from gateway.core.reports import ErrorReport, NotHandled, ReportedError, StateReport
from gateway.edge.smartcar.events import MalformedEvent, SmartcarV2Events, event_from
from gateway.edge.smartcar.v3_events import SmartcarV3Events, smartcar_user_id
from tests.unit.edge.webhook_samples import (
    error_event,
    failed_signal,
    millis,
    signal,
    state_event,
    verify_event,
)

ARRIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
RECORDED = ARRIVED - timedelta(minutes=3)
USER = "a1b2c3d4-0000-4000-8000-0000000000aa"
VEHICLE = "f1e2d3c4-0000-4000-8000-0000000000bb"


def live_state(*signals: dict[str, Any]) -> dict[str, Any]:
    """A VEHICLE_STATE as live V3 deliveries send it (smartcar-v3-notes §6.2): no top-level
    `vehicleId`, triggers at the top, `meta.mode` upper case."""
    return {
        "eventId": "bead8cd7-0000-4000-8000-000000000001",
        "eventType": "VEHICLE_STATE",
        "data": {
            "user": {"id": USER},
            "vehicle": {
                "id": VEHICLE,
                "make": "VOLKSWAGEN",
                "model": "ID.7",
                "year": 2025,
                "mode": "live",
                "powertrainType": None,
            },
            "signals": list(signals),
        },
        "triggers": [
            {
                "type": "SIGNAL_UPDATED",
                "signal": {"name": "IsCharging", "code": "charge-ischarging", "group": "Charge"},
            }
        ],
        "meta": {
            "deliveryId": "54e2e1a8-0000-4000-8000-000000000002",
            "deliveredAt": millis(ARRIVED),
            "version": "4.0",
            "webhookId": "cfa94613-0000-4000-8000-000000000003",
            "webhookName": "AutoData",
            "mode": "LIVE",
            "signalCount": len(signals),
        },
    }


def live_signal(
    code: str,
    body: dict[str, Any],
    *,
    status: str = "SUCCESS",
    error: dict[str, str] | None = None,
) -> dict[str, Any]:
    """One signal of a live delivery (`{code, name, group, body, meta, status}`)."""
    group, _, name = code.partition("-")
    status_value: dict[str, Any] = {"value": status}
    if error is not None:
        status_value["error"] = error
    return {
        "code": code,
        "name": name,
        "group": group,
        "body": body,
        "meta": {"oemUpdatedAt": millis(RECORDED), "retrievedAt": millis(ARRIVED)},
        "status": status_value,
    }


def decode(payload: dict[str, Any], decoder: Any = None) -> object:
    """Return what a decoder (the V3 one by default) reads from `payload`."""
    event = event_from(payload, received_at=ARRIVED)
    return (decoder or SmartcarV3Events()).decode(event)


def test_a_live_v3_envelope_names_its_vehicle_in_data() -> None:
    """A live V3 delivery has no top-level `vehicleId`: the event's vehicle is
    `data.vehicle.id`, and the body is kept whole."""
    payload = live_state()
    assert event_from(payload, received_at=ARRIVED) == WebhookEvent(
        event_id="bead8cd7-0000-4000-8000-000000000001",
        event_type="VEHICLE_STATE",
        smartcar_vehicle_id=VEHICLE,
        received_at=ARRIVED,
        payload=payload,
    )


def test_the_documented_top_level_vehicle_id_is_read_when_data_names_none() -> None:
    """Smartcar's event reference puts `vehicleId` at the top: read when `data.vehicle`
    names no id."""
    payload = live_state()
    del payload["data"]["vehicle"]
    payload["vehicleId"] = VEHICLE
    assert event_from(payload, received_at=ARRIVED).smartcar_vehicle_id == VEHICLE


def test_a_legacy_version_2_envelope_is_not_an_event() -> None:
    """The legacy 2.0 payload (`{version, webhookId, eventName, payload}`) has no top-level
    `eventId` or `eventType`: it is refused, as it always was."""
    legacy = {
        "version": "2.0",
        "webhookId": "w-1",
        "eventName": "eventBased",
        "mode": "live",
        "payload": {"eventId": "e-1", "vehicleId": VEHICLE, "eventType": "CHARGING_STARTED"},
    }
    with pytest.raises(MalformedEvent):
        event_from(legacy, received_at=ARRIVED)


def test_a_live_vehicle_state_is_a_state_report_without_the_failed_signals() -> None:
    """Signals become readings recorded at `oemUpdatedAt` and fetched on arrival; an ERROR
    signal (even one with a body) is skipped, so its field keeps its last reading."""
    payload = live_state(
        live_signal("tractionbattery-stateofcharge", {"value": 80, "unit": "percent"}),
        live_signal("tractionbattery-range", {"value": 472, "type": "DEFAULT", "unit": "km"}),
        live_signal(
            "odometer-traveleddistance",
            {"value": 16342, "unit": "km"},
            status="ERROR",
            error={"type": "VEHICLE_STATE", "code": "UNREACHABLE"},
        ),
        live_signal(
            "charge-chargerate",
            {"value": 30, "unit": "km/h"},
            status="ERROR",
            error={"type": "VEHICLE_STATE", "code": "NOT_CHARGING"},
        ),
    )
    report = decode(payload)
    assert isinstance(report, StateReport)
    [battery] = report.readings
    assert battery.field is TelemetryField.BATTERY
    assert battery.value == Battery(percent_remaining=80, range_km=472)
    assert (battery.recorded_at, battery.fetched_at) == (RECORDED, ARRIVED)
    assert (report.rejections, report.asleep) == ((), False)


def test_iso_times_in_a_delivery_are_read() -> None:
    """A signal time as an ISO-8601 string with a zone is read like epoch milliseconds."""
    carried = live_signal("odometer-traveleddistance", {"value": 12, "unit": "km"})
    carried["meta"] = {"oemUpdatedAt": "2026-03-10T11:57:00.000Z"}
    [reading] = report_of(live_state(carried)).readings
    assert (reading.value, reading.recorded_at) == (Odometer(distance_km=12), RECORDED)


def report_of(payload: dict[str, Any]) -> StateReport:
    """Return the V3 decoder's state report of `payload`."""
    report = decode(payload)
    assert isinstance(report, StateReport)
    return report


@pytest.mark.parametrize("status", ["UNAVAILABLE", "unavailable", "STALE", 7])
def test_only_a_success_status_is_read_as_v3_reads_statuses(status: object) -> None:
    """A status other than SUCCESS (UNAVAILABLE, an unknown word, no text) keeps the
    field's last reading; the v2 decoder, which skips ERROR only, would read it."""
    carried = live_signal("odometer-traveleddistance", {"value": 12, "unit": "km"})
    carried["status"] = {"value": status}
    payload = live_state(carried)
    assert report_of(payload).readings == ()
    v2 = decode(payload, SmartcarV2Events())
    assert isinstance(v2, StateReport)
    assert len(v2.readings) == 1


@pytest.mark.parametrize(
    "status",
    [
        pytest.param({"value": " success "}, id="padded-lower-case"),
        pytest.param(None, id="absent"),
        pytest.param("SUCCESS", id="bare-string"),
    ],
)
def test_success_in_any_spelling_or_no_status_is_read(status: object) -> None:
    """SUCCESS in any case, a bare status string, or no status with a body is read."""
    carried = live_signal("odometer-traveleddistance", {"value": 12, "unit": "km"})
    carried["status"] = status
    [reading] = report_of(live_state(carried)).readings
    assert reading.value == Odometer(distance_km=12)


def test_a_status_without_a_value_but_with_an_error_is_not_read() -> None:
    """A status naming an error and no value is a failure, not a success."""
    carried = live_signal("odometer-traveleddistance", {"value": 12, "unit": "km"})
    carried["status"] = {"error": {"type": "VEHICLE_STATE", "code": "UNREACHABLE"}}
    assert report_of(live_state(carried)).readings == ()


def test_the_keyed_signal_form_is_read_too() -> None:
    """The delivery-behaviour page's keyed form (`{"Group.Name": {value, …}}`) is read."""
    payload = live_state()
    payload["data"]["signals"] = {
        "TractionBattery.StateOfCharge": {"value": 85, "meta": {"oemUpdatedAt": millis(RECORDED)}}
    }
    [reading] = report_of(payload).readings
    assert reading.value == Battery(percent_remaining=85, range_km=None)


@pytest.mark.parametrize(
    "carried",
    [
        pytest.param(
            signal("odometer-traveleddistance", {"unit": "km", "value": 1e20}, at=RECORDED),
            id="odometer-out-of-bounds",
        ),
        pytest.param(
            signal("odometer-traveleddistance", {"unit": "parsecs", "value": 1}, at=RECORDED),
            id="unknown-unit",
        ),
        pytest.param(
            signal("location-preciselocation", {"latitude": 200, "longitude": 1}, at=RECORDED),
            id="latitude",
        ),
        pytest.param(
            signal("closure-islocked", {"value": "yes"}, at=RECORDED), id="lock-not-boolean"
        ),
        pytest.param(
            {
                **signal("closure-islocked", {"value": True}, at=RECORDED),
                "meta": {"oemUpdatedAt": millis(RECORDED) * 1000},
            },
            id="microseconds-as-milliseconds",
        ),
        pytest.param(
            signal(
                "internalcombustionengine-fuellevel", {"value": 40, "unit": "percent"}, at=RECORDED
            ),
            id="valid-fuel",
        ),
    ],
)
def test_values_are_rejected_field_by_field_as_the_v2_decoder_does(carried: dict[str, Any]) -> None:
    """The V3 decoder reuses the v2 signal parser: the same readings and the same
    rejections, each naming its field and why."""
    payload = state_event(
        "evt-1",
        VEHICLE,
        [
            carried,
            failed_signal(
                "tractionbattery-stateofcharge",
                error_type="COMPATIBILITY",
                error_code="VEHICLE_NOT_CAPABLE",
            ),
        ],
    )
    v3, v2 = decode(payload), decode(payload, SmartcarV2Events())
    assert v3 == v2
    assert isinstance(v3, StateReport)
    assert len(v3.readings) + len(v3.rejections) == 1


def test_an_ice_car_reports_fuel_and_its_sleep() -> None:
    """Fuel level, amount and range make one reading; `connectivitystatus-isasleep` true
    reports the car asleep."""
    payload = live_state(
        live_signal("internalcombustionengine-fuellevel", {"value": 65, "unit": "percent"}),
        live_signal("internalcombustionengine-amountremaining", {"value": 10, "unit": "gallons"}),
        live_signal("internalcombustionengine-range", {"value": 239}),
        live_signal("connectivitystatus-isasleep", {"value": True}),
    )
    report = report_of(payload)
    [fuel] = report.readings
    assert isinstance(fuel.value, Fuel)
    assert (fuel.value.percent_remaining, fuel.value.range_km) == (65, 239)
    assert fuel.value.amount_remaining_l == pytest.approx(37.854, abs=0.001)
    assert report.asleep


def test_a_live_vehicle_error_is_an_error_report() -> None:
    """VEHICLE_ERROR items (`type`, `code`, `state`, `resolution`, `signals`, …) become
    ReportedErrors with their type, code and resolution, resolved when their state is
    RESOLVED; a CONNECTED_SERVICES_ACCOUNT item also says what the owner must do (its
    resolution, page and message)."""
    payload = live_state()
    payload["eventType"] = "VEHICLE_ERROR"
    payload["data"]["errors"] = [
        {
            "type": "CONNECTED_SERVICES_ACCOUNT",
            "code": "SUBSCRIPTION",
            "description": "The vehicle's connected services subscription is inactive.",
            "docURL": "https://smartcar.com/docs/errors/api-errors/connected-services-account-errors",
            "resolution": {"type": "CONTACT_SUPPORT"},
            "suggestedUserMessage": "Renew the subscription.",
            "state": "ERROR",
            "signals": [{"name": "IsLocked", "group": "Closure", "code": "closure-islocked"}],
        },
        {"type": "VEHICLE_STATE", "code": "ASLEEP", "state": "RESOLVED", "signals": []},
    ]
    assert decode(payload) == ErrorReport(
        (
            ReportedError(
                label="CONNECTED_SERVICES_ACCOUNT:SUBSCRIPTION",
                description="The vehicle's connected services subscription is inactive.",
                owner_action=OwnerAction(
                    error="CONNECTED_SERVICES_ACCOUNT:SUBSCRIPTION",
                    resolution_type="CONTACT_SUPPORT",
                    doc_url="https://smartcar.com/docs/errors/api-errors/connected-services-account-errors",
                    user_message="Renew the subscription.",
                ),
                type="CONNECTED_SERVICES_ACCOUNT",
                code="SUBSCRIPTION",
                resolution_type="CONTACT_SUPPORT",
            ),
            ReportedError(
                label="VEHICLE_STATE:ASLEEP", resolved=True, type="VEHICLE_STATE", code="ASLEEP"
            ),
        )
    )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(state_event("evt-1", VEHICLE, []), id="empty-state"),
        pytest.param(
            state_event(
                "evt-2",
                VEHICLE,
                [
                    signal(
                        "odometer-traveleddistance", {"unit": "miles", "value": 10}, at=RECORDED
                    ),
                    signal("closure-islocked", {"value": False}, at=RECORDED),
                    signal("connectivitystatus-isasleep", {"value": False}, at=RECORDED),
                ],
            ),
            id="state",
        ),
        pytest.param(
            error_event("evt-3", VEHICLE, error_type="VEHICLE_STATE", code="UNREACHABLE"),
            id="error",
        ),
        pytest.param(verify_event("challenge"), id="verify"),
    ],
)
def test_every_event_the_v2_decoder_reads_reads_the_same(payload: dict[str, Any]) -> None:
    """Cars still on v2 send the same 4.0 events: the V3 decoder reads each as the v2
    decoder does, so one decoder serves a fleet migrating between them."""
    assert decode(payload) == decode(payload, SmartcarV2Events())


def test_other_event_types_are_not_handled() -> None:
    """VERIFY (answered by the receiver, never stored) and unknown types are NotHandled."""
    assert decode(verify_event("c")) == NotHandled("event type VERIFY is not handled")
    payload = live_state()
    payload["eventType"] = "VEHICLE_CONNECTION_STATUS"
    assert decode(payload) == NotHandled("event type VEHICLE_CONNECTION_STATUS is not handled")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"user": {"id": USER}}, USER),
        ({"user": {"id": USER, "externalId": "user-external-id-123"}}, USER),
        ({"user": {"id": None}}, None),
        ({"user": {"id": ""}}, None),
        ({"user": {"id": 42}}, None),
        ({"user": {"id": "u" * 129}}, None),
        ({"user": {"id": "u-\ud800"}}, None),
        ({"user": {"id": "u-\x00"}}, None),
        ({"user": USER}, None),
        ({}, None),
    ],
)
def test_the_user_is_data_user_id_when_a_store_can_keep_it(
    data: dict[str, Any], expected: str | None
) -> None:
    """`data.user.id` names the Smartcar user (V3's `sc-user-id`); anything that is not a
    1-128 character string without a lone surrogate or NUL names none."""
    assert smartcar_user_id({"eventId": "e", "eventType": "VEHICLE_STATE", "data": data}) == (
        expected
    )
    assert smartcar_user_id({"data": "not an object"}) is None
