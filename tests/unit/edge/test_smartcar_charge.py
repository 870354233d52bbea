"""Charging through the Smartcar edge: the v2 adapter reads `/charge` and `/charge/limit`
in one batch and sends the v2 charge commands; the V3 adapter sends the V3 commands and
reads the charge signals; webhook events carry the charge too."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from clients import smartcar as sc
from clients.smartcar.v3 import SmartcarConnectionsV3, SmartcarVehiclesV3, parse_signals
from gateway.core.model import (
    Availability,
    Charge,
    ChargeAction,
    ChargingState,
    Command,
    LockAction,
    SmartcarAccess,
    SmartcarApi,
    TelemetryField,
)
from gateway.core.secret import Secret
from gateway.edge.clock import ManualClock
from gateway.edge.smartcar import signals as webhook_signals
from gateway.edge.smartcar.adapter import SmartcarV2
from gateway.edge.smartcar.v3_adapter import SmartcarV3
from gateway.edge.smartcar.v3_readings import batch_reading
from tests.unit.edge.webhook_samples import signal as webhook_signal
from tests.unit.smartcar.fakes import (
    ACCESS_TOKEN,
    CREDENTIALS,
    ENDPOINTS,
    NOW,
    USER_ID,
    VEHICLE_ID,
    FakeSmartcar,
    error_body,
    fixed_clock,
)
from tests.unit.smartcar.v3.fakes import APP_TOKEN, VEHICLES, signal
from tests.unit.smartcar.v3.fakes import ENDPOINTS as V3_ENDPOINTS

V2_ACCESS = SmartcarAccess.v2(Secret(ACCESS_TOKEN.reveal()))
V3_ACCESS = SmartcarAccess.v3(Secret(APP_TOKEN.reveal()), user_id=USER_ID)
CHARGE = frozenset({TelemetryField.CHARGE})
RECORDED = "2025-05-09T16:00:00Z"
SUCCESS = {"message": "Successfully sent request to vehicle", "status": "success"}
EXECUTED = {
    "data": {
        "id": "exec_1",
        "type": "command-execution",
        "attributes": {"status": {"value": "SUCCESS"}, "executionMode": "sync"},
    }
}


@pytest.fixture
def fake() -> FakeSmartcar:
    """A fresh scripted Smartcar."""
    return FakeSmartcar()


@pytest.fixture
async def http(fake: FakeSmartcar) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client whose every request the scripted Smartcar answers."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        yield client


@pytest.fixture
def v2(http: httpx.AsyncClient) -> SmartcarV2:
    """The v2 adapter on the scripted Smartcar."""
    return SmartcarV2(
        auth=sc.SmartcarAuth(
            http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=fixed_clock
        ),
        vehicles=sc.SmartcarVehicles(http=http, endpoints=ENDPOINTS, clock=fixed_clock),
        clock=ManualClock(NOW),
    )


@pytest.fixture
def v3(http: httpx.AsyncClient) -> SmartcarV3:
    """The V3 adapter on the scripted Smartcar."""
    return SmartcarV3(
        vehicles=SmartcarVehiclesV3(http=http, endpoints=V3_ENDPOINTS, clock=fixed_clock),
        connections=SmartcarConnectionsV3(http=http, endpoints=V3_ENDPOINTS),
        clock=ManualClock(NOW),
    )


def ok(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One successful batch item, recorded at RECORDED."""
    headers = {"sc-data-age": RECORDED, "sc-unit-system": "metric"}
    return {"path": path, "body": body, "code": 200, "headers": headers}


def refused(path: str, type_: str, code: str, status: int) -> dict[str, Any]:
    """One batch item Smartcar answered with an error."""
    return {"path": path, "code": status, "body": error_body(type_, code, status)}


async def read_v2(fake: FakeSmartcar, v2: SmartcarV2, *items: dict[str, Any]) -> Any:
    """Answer one batch with `items` and return the charge's result."""
    fake.reply(200, json_body={"responses": list(items)})
    return (await v2.read(V2_ACCESS, VEHICLE_ID, CHARGE)).results[TelemetryField.CHARGE]


# --- v2 -------------------------------------------------------------------------------------


async def test_v2_reads_the_charge_and_its_limit_in_one_batch(
    fake: FakeSmartcar, v2: SmartcarV2
) -> None:
    """CHARGE asks for `/charge` and `/charge/limit` in the same batch (each billed) and
    joins them: plugged in, the state, the limit in percent, recorded when the car
    reported the charge."""
    result = await read_v2(
        fake,
        v2,
        ok("/charge", {"isPluggedIn": True, "state": "FULLY_CHARGED"}),
        ok("/charge/limit", {"limit": 0.8}),
    )
    sent = json.loads(fake.last.content)
    assert sent == {"requests": [{"path": "/charge"}, {"path": "/charge/limit"}]}
    assert result.availability is Availability.AVAILABLE
    assert result.value == Charge(
        is_plugged_in=True, state=ChargingState.FULLY_CHARGED, limit_percent=80.0
    )
    assert result.recorded_at == datetime(2025, 5, 9, 16, tzinfo=UTC)


def test_v2_bills_the_charge_as_its_two_paths(v2: SmartcarV2) -> None:
    """The budget counts what Smartcar bills: each batch path, so CHARGE counts two."""
    fields = CHARGE | {TelemetryField.ODOMETER}
    assert v2.read_cost(SmartcarApi.V2, fields) == 3
    assert v2.read_cost(SmartcarApi.V2, frozenset({TelemetryField.ODOMETER})) == 1


def test_v3_counts_one_signals_request_per_read_unless_billed_per_signal(
    v3: SmartcarV3,
) -> None:
    """A V3 read is one `/signals` request whatever it asks for: it counts 1. A plan billed
    per signal (VG_V3_READ_BILLING=signal) counts each field asked for."""
    fields = CHARGE | {TelemetryField.ODOMETER, TelemetryField.FUEL}
    assert v3.read_cost(SmartcarApi.V3, fields) == 1
    assert v3.read_cost(SmartcarApi.V3, frozenset({TelemetryField.ODOMETER})) == 1


def test_v3_billed_per_signal_counts_each_field(http: httpx.AsyncClient) -> None:
    """With VG_V3_READ_BILLING=signal the count is the upper bound: one per field."""
    per_signal = SmartcarV3(
        vehicles=SmartcarVehiclesV3(http=http, endpoints=V3_ENDPOINTS, clock=fixed_clock),
        connections=SmartcarConnectionsV3(http=http, endpoints=V3_ENDPOINTS),
        clock=ManualClock(NOW),
        billed_per_signal=True,
    )
    fields = CHARGE | {TelemetryField.ODOMETER, TelemetryField.FUEL}
    assert per_signal.read_cost(SmartcarApi.V3, fields) == len(fields)


async def test_v2_without_a_limit_still_answers_the_charge(
    fake: FakeSmartcar, v2: SmartcarV2
) -> None:
    """Some makes give no limit while unplugged (409 CHARGING_PLUG_NOT_CONNECTED): the
    charge is still AVAILABLE, its limit not reported; an unknown state is not guessed."""
    result = await read_v2(
        fake,
        v2,
        ok("/charge", {"isPluggedIn": False, "state": "SOMETHING_NEW"}),
        refused("/charge/limit", "VEHICLE_STATE", "CHARGING_PLUG_NOT_CONNECTED", 409),
    )
    assert result.availability is Availability.AVAILABLE
    assert result.value == Charge(is_plugged_in=False, state=None, limit_percent=None)


async def test_v2_an_ice_car_cannot_report_its_charge(fake: FakeSmartcar, v2: SmartcarV2) -> None:
    """`/charge` answered 501 COMPATIBILITY makes the field NOT_CAPABLE, with Smartcar's
    type and code, whatever the limit path said."""
    not_capable = ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE", 501)
    result = await read_v2(
        fake, v2, refused("/charge", *not_capable), refused("/charge/limit", *not_capable)
    )
    assert (result.availability, result.value) == (Availability.NOT_CAPABLE, None)
    assert result.failure is not None
    assert (result.failure.type, result.failure.code) == ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE")


@pytest.mark.parametrize(
    ("command", "path", "body"),
    [
        (Command(action=ChargeAction.START_CHARGE), "/charge", {"action": "START"}),
        (Command(action=ChargeAction.STOP_CHARGE), "/charge", {"action": "STOP"}),
        (
            Command(action=ChargeAction.SET_CHARGE_LIMIT, charge_limit_percent=85),
            "/charge/limit",
            {"limit": 0.85},
        ),
        (Command(action=LockAction.LOCK), "/security", {"action": "LOCK"}),
    ],
)
async def test_v2_sends_each_command_to_its_path(
    fake: FakeSmartcar, v2: SmartcarV2, command: Command, path: str, body: dict[str, Any]
) -> None:
    """Charge commands go to `POST /charge` (START, STOP) and `POST /charge/limit` (the
    limit as v2's fraction), locks to `/security`."""
    fake.reply(200, json_body=SUCCESS)
    await v2.command(V2_ACCESS, VEHICLE_ID, command)
    assert (fake.last.method, fake.last.url.path) == ("POST", f"/v2.0/vehicles/{VEHICLE_ID}{path}")
    assert json.loads(fake.last.content) == body


# --- V3 -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "path", "body"),
    [
        (Command(action=ChargeAction.START_CHARGE), "charge/start", None),
        (Command(action=ChargeAction.STOP_CHARGE), "charge/stop", None),
        (
            Command(action=ChargeAction.SET_CHARGE_LIMIT, charge_limit_percent=90),
            "charge/set-limit",
            {"data": {"attributes": {"percent": 90}}},
        ),
        (Command(action=LockAction.UNLOCK), "security/unlock", None),
    ],
)
async def test_v3_sends_each_command_to_its_path(
    fake: FakeSmartcar, v3: SmartcarV3, command: Command, path: str, body: Any
) -> None:
    """Charge commands go to `…/commands/charge/start|stop|set-limit` (the limit as V3's
    percent) with the owner's `sc-user-id`."""
    fake.reply(200, json_body=EXECUTED)
    await v3.command(V3_ACCESS, VEHICLE_ID, command)
    assert str(fake.last.url) == f"{VEHICLES}/{VEHICLE_ID}/commands/{path}"
    assert fake.last.headers["sc-user-id"] == USER_ID
    assert (json.loads(fake.last.content) if fake.last.content else None) == body


def v3_charge(*items: dict[str, Any]) -> Any:
    """Read the charge of a `/signals` answer holding `items`."""
    answer = parse_signals({"data": list(items)}, received_at=NOW)
    return batch_reading(answer, CHARGE, received_at=NOW).results[TelemetryField.CHARGE]


def test_v3_reads_the_charge_signals_into_one_charge() -> None:
    """Plug, detailed status, limits (the documented example: activeLimit) and minutes
    to complete make one charge."""
    result = v3_charge(
        signal("charge-ischarging", {"value": True}),
        signal("charge-ischargingcableconnected", {"value": True}),
        signal("charge-detailedchargingstatus", {"value": "CHARGING"}),
        signal("charge-chargelimits", {"values": [], "activeLimit": 90, "unit": "percent"}),
        signal("charge-timetocomplete", {"value": 45, "unit": "minute"}),
    )
    assert result.value == Charge(
        is_plugged_in=True,
        state=ChargingState.CHARGING,
        limit_percent=90,
        minutes_to_complete=45,
    )


@pytest.mark.parametrize(
    ("carried", "state"),
    [
        ([signal("charge-ischarging", {"value": False})], ChargingState.NOT_CHARGING),
        ([signal("charge-ischarging", {"value": True})], ChargingState.CHARGING),
        (
            [
                signal("charge-ischarging", {"value": False}),
                signal("charge-detailedchargingstatus", {"value": "fully_charged"}),
            ],
            ChargingState.FULLY_CHARGED,
        ),
        (
            [
                signal("charge-ischarging", {"value": False}),
                signal("charge-detailedchargingstatus", {"value": "PAUSED"}),
            ],
            ChargingState.NOT_CHARGING,
        ),
        ([signal("charge-detailedchargingstatus", {"value": "PAUSED"})], None),
    ],
)
def test_v3_state_is_the_detailed_status_else_is_charging(
    carried: list[dict[str, Any]], state: ChargingState | None
) -> None:
    """The detailed status names the state; without one the gateway knows (none, or a name
    not documented) `charge-ischarging` decides; with neither it is not reported."""
    assert v3_charge(*carried).value.state is state


def test_v3_an_ice_car_cannot_report_its_charge() -> None:
    """Charge signals failing COMPATIBILITY make the field NOT_CAPABLE."""
    error = {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}
    result = v3_charge(
        signal("charge-ischarging", {"value": None}, status="ERROR", error=error),
        signal("charge-ischargingcableconnected", {"value": None}, status="ERROR", error=error),
    )
    assert (result.availability, result.value) == (Availability.NOT_CAPABLE, None)


# --- webhooks -------------------------------------------------------------------------------

ARRIVED = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
REPORTED = ARRIVED - timedelta(minutes=5)


def webhook_charge(*carried: dict[str, Any]) -> Any:
    """Parse a VEHICLE_STATE's signals; return its report."""
    return webhook_signals.parse(webhook_signals.index(list(carried)), fetched_at=ARRIVED)


def test_a_webhook_reports_the_charge_from_any_of_its_signals() -> None:
    """An event carrying only the plug signal gives a charge (plugged in, the rest not
    reported), timed when the car reported it."""
    report = webhook_charge(
        webhook_signal("charge-ischargingcableconnected", {"value": True}, at=REPORTED)
    )
    [reading] = report.readings
    assert reading.field is TelemetryField.CHARGE
    assert reading.value == Charge(is_plugged_in=True, state=None, limit_percent=None)
    assert reading.recorded_at == REPORTED


def test_a_webhook_charge_reads_every_charge_signal() -> None:
    """Detailed status, limits (GLOBAL when no active limit) and minutes to complete."""
    report = webhook_charge(
        webhook_signal("charge-ischarging", {"value": True}, at=REPORTED),
        webhook_signal("charge-detailedchargingstatus", {"value": "CHARGING"}, at=REPORTED),
        webhook_signal(
            "charge-chargelimits",
            {"values": [{"type": "global", "limit": 80}], "activeLimit": None, "unit": "percent"},
            at=REPORTED,
        ),
        webhook_signal("charge-timetocomplete", {"value": 30}, at=REPORTED),
    )
    [reading] = report.readings
    assert reading.value == Charge(
        is_plugged_in=None,
        state=ChargingState.CHARGING,
        limit_percent=80.0,
        minutes_to_complete=30.0,
    )
    assert report.rejections == ()


def test_a_webhook_leaves_out_a_bad_charge_part_and_rejects_a_charge_with_none() -> None:
    """A limit over 100 % is left out (noted), the rest kept; an event whose every charge
    signal is unreadable is rejected, naming the first signal."""
    report = webhook_charge(
        webhook_signal("charge-ischarging", {"value": False}, at=REPORTED),
        webhook_signal("charge-chargelimits", {"activeLimit": 150}, at=REPORTED),
    )
    [reading] = report.readings
    assert reading.value == Charge(
        is_plugged_in=None, state=ChargingState.NOT_CHARGING, limit_percent=None
    )
    [noted] = report.rejections
    assert "charge-chargelimits" in noted.reason
    nothing = webhook_charge(webhook_signal("charge-ischarging", {"value": "yes"}, at=REPORTED))
    assert nothing.readings == ()
    assert [r.field for r in nothing.rejections] == [TelemetryField.CHARGE]
