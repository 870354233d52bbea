"""SmartcarVehicles: each endpoint's request and decoded, normalised answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from clients.smartcar import (
    ActionResult,
    Attributes,
    Battery,
    ChargeLimit,
    ChargeStatus,
    Closure,
    EngineOil,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    PermissionPage,
    SmartcarProtocolError,
    SmartcarVehicles,
    TirePressure,
    UnitSystem,
    VehiclePage,
)
from tests.unit.smartcar.fakes import (
    ACCESS_TOKEN,
    ENDPOINTS,
    OTHER_TOKEN,
    VEHICLE_ID,
    FakeSmartcar,
    fixed_clock,
)

BASE = f"https://api.sc.test/v2.0/vehicles/{VEHICLE_ID}"


@dataclass(frozen=True)
class Case:
    """One endpoint: how to call it, what goes on the wire, what comes back."""

    method: str
    http_method: str
    url: str
    answer: Any
    expected: Any
    kwargs: dict[str, Any] = field(default_factory=dict)
    sent_json: Any = None
    vehicle: bool = True


CASES = {
    "user": Case(
        "user", "GET", "https://api.sc.test/v2.0/user", {"id": "u-1"}, "u-1", vehicle=False
    ),
    "list_vehicles": Case(
        "list_vehicles",
        "GET",
        "https://api.sc.test/v2.0/vehicles?limit=10&offset=20",
        {"vehicles": ["v-1", "v-2"], "paging": {"count": 22, "offset": 20}},
        VehiclePage(vehicle_ids=("v-1", "v-2"), count=22, offset=20),
        kwargs={"limit": 10, "offset": 20},
        vehicle=False,
    ),
    "attributes": Case(
        "attributes",
        "GET",
        BASE,
        {"id": VEHICLE_ID, "make": "TESLA", "model": "Model 3", "year": 2019},
        Attributes(id=VEHICLE_ID, make="TESLA", model="Model 3", year=2019),
    ),
    "vin": Case("vin", "GET", f"{BASE}/vin", {"vin": "5YJ3E1EA7KF317000"}, "5YJ3E1EA7KF317000"),
    "permissions": Case(
        "permissions",
        "GET",
        f"{BASE}/permissions?limit=5",
        {"permissions": ["read_vin", "read_odometer"], "paging": {"count": 2, "offset": 0}},
        PermissionPage(permissions=("read_vin", "read_odometer"), count=2, offset=0),
        kwargs={"limit": 5},
    ),
    "location": Case(
        "location",
        "GET",
        f"{BASE}/location",
        {"latitude": 37.4292, "longitude": -122.1381},
        Location(latitude=37.4292, longitude=-122.1381),
    ),
    "odometer": Case(
        "odometer", "GET", f"{BASE}/odometer", {"distance": 37829}, Odometer(distance_km=37829.0)
    ),
    "fuel": Case(
        "fuel",
        "GET",
        f"{BASE}/fuel",
        {"amountRemaining": 53.2, "percentRemaining": 0.3, "range": 40.5},
        Fuel(percent_remaining=30.0, amount_remaining_l=53.2, range_km=40.5),
    ),
    "battery": Case(
        "battery",
        "GET",
        f"{BASE}/battery",
        {"percentRemaining": 0.57, "range": 312.0},
        Battery(percent_remaining=57.0, range_km=312.0),
    ),
    "lock_status": Case(
        "lock_status",
        "GET",
        f"{BASE}/security",
        {
            "isLocked": False,
            "doors": [{"type": "frontLeft", "status": "CLOSED"}],
            "windows": [],
            "sunroof": [{"type": "sunroof", "status": "UNKNOWN"}],
            "storage": [{"type": "rear", "status": "OPEN"}],
            "chargingPort": [{"type": "chargingPort", "status": "CLOSED"}],
        },
        LockStatus(
            is_locked=False,
            doors=(Closure(type="frontLeft", status="CLOSED"),),
            sunroof=(Closure(type="sunroof", status="UNKNOWN"),),
            storage=(Closure(type="rear", status="OPEN"),),
            charging_port=(Closure(type="chargingPort", status="CLOSED"),),
        ),
    ),
    "tire_pressure": Case(
        "tire_pressure",
        "GET",
        f"{BASE}/tires/pressure",
        {"frontLeft": 219.3, "frontRight": 219.3, "backLeft": 206.8, "backRight": None},
        TirePressure(
            front_left_kpa=219.3, front_right_kpa=219.3, back_left_kpa=206.8, back_right_kpa=None
        ),
    ),
    "engine_oil": Case(
        "engine_oil",
        "GET",
        f"{BASE}/engine/oil",
        {"lifeRemaining": 0.35},
        EngineOil(life_remaining_percent=35.0),
    ),
    "lock": Case(
        "lock",
        "POST",
        f"{BASE}/security",
        {"message": "Successfully sent request to vehicle", "status": "success"},
        ActionResult(status="success", message="Successfully sent request to vehicle"),
        sent_json={"action": "LOCK"},
    ),
    "unlock": Case(
        "unlock",
        "POST",
        f"{BASE}/security",
        {"message": "Successfully sent request to vehicle", "status": "success"},
        ActionResult(status="success", message="Successfully sent request to vehicle"),
        sent_json={"action": "UNLOCK"},
    ),
    "disconnect": Case(
        "disconnect", "DELETE", f"{BASE}/application", {"status": "success"}, "success"
    ),
    # Smartcar's documented examples (api-reference/evs/get-charge-status, get-charge-limit,
    # set-charge-limit, control-charge).
    "charge": Case(
        "charge",
        "GET",
        f"{BASE}/charge",
        {"isPluggedIn": True, "state": "FULLY_CHARGED"},
        ChargeStatus(is_plugged_in=True, state="FULLY_CHARGED"),
    ),
    "charge_limit": Case(
        "charge_limit",
        "GET",
        f"{BASE}/charge/limit",
        {"limit": 0.8},
        ChargeLimit(limit_percent=80.0),
    ),
    "start_charge": Case(
        "start_charge",
        "POST",
        f"{BASE}/charge",
        {"message": "Successfully sent request to vehicle", "status": "success"},
        ActionResult(status="success", message="Successfully sent request to vehicle"),
        sent_json={"action": "START"},
    ),
    "stop_charge": Case(
        "stop_charge",
        "POST",
        f"{BASE}/charge",
        {"message": "Successfully sent request to vehicle", "status": "success"},
        ActionResult(status="success", message="Successfully sent request to vehicle"),
        sent_json={"action": "STOP"},
    ),
    "set_charge_limit": Case(
        "set_charge_limit",
        "POST",
        f"{BASE}/charge/limit",
        {"message": "Successfully sent request to vehicle", "status": "success"},
        ActionResult(status="success", message="Successfully sent request to vehicle"),
        kwargs={"percent": 80},
        sent_json={"limit": 0.8},
    ),
}


async def _call(vehicles: SmartcarVehicles, case: Case) -> Any:
    method = getattr(vehicles, case.method)
    args = (ACCESS_TOKEN, VEHICLE_ID) if case.vehicle else (ACCESS_TOKEN,)
    return await method(*args, **case.kwargs)


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
async def test_endpoint_request_and_answer(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, case: Case
) -> None:
    """Each endpoint sends its method, URL, bearer token, unit header and body; decodes."""
    fake.reply(200, json_body=case.answer, headers={"sc-request-id": "rid-1"})
    reading = await _call(vehicles, case)
    request = fake.last
    assert (request.method, str(request.url)) == (case.http_method, case.url)
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN.reveal()}"
    assert request.headers["sc-unit-system"] == "metric"
    sent = json.loads(request.content) if request.content else None
    assert sent == case.sent_json
    assert reading.value == case.expected
    assert reading.meta.request_id == "rid-1"


def test_every_public_endpoint_has_a_case() -> None:
    """The table above covers every public coroutine except batch (tested on its own)."""
    public = {
        name
        for name in dir(SmartcarVehicles)
        if not name.startswith("_") and callable(getattr(SmartcarVehicles, name))
    }
    assert public - {"batch"} == set(CASES)


async def test_meta_is_read_from_headers(fake: FakeSmartcar, vehicles: SmartcarVehicles) -> None:
    """sc-data-age, sc-fetched-at, sc-request-id and sc-unit-system fill Meta, any case."""
    fake.reply(
        200,
        json_body={"distance": 1},
        headers={
            "SC-Data-Age": "2025-05-09T15:40:52.000Z",
            "sc-fetched-at": "2025-05-09T17:27:25.401Z",
            "SC-Request-Id": "rid-2",
            "SC-Unit-System": "metric",
        },
    )
    meta = (await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)).meta
    assert meta.data_age == datetime(2025, 5, 9, 15, 40, 52, tzinfo=UTC)
    assert meta.fetched_at == datetime(2025, 5, 9, 17, 27, 25, 401000, tzinfo=UTC)
    assert meta.request_id == "rid-2"
    assert meta.unit_system is UnitSystem.METRIC


async def test_unparseable_timestamps_become_none(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """A garbled sc-data-age is None, not a crash; absent headers are None too."""
    fake.reply(200, json_body={"distance": 1}, headers={"sc-data-age": "yesterday-ish"})
    meta = (await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)).meta
    assert (meta.data_age, meta.fetched_at, meta.request_id) == (None, None, None)


async def test_imperial_answers_are_converted_to_metric(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """Miles, gallons and psi become km, litres and kPa; meta records the source system."""
    imperial = {"sc-unit-system": "imperial"}
    fake.reply(200, json_body={"distance": 100}, headers=imperial)
    fake.reply(
        200,
        json_body={"amountRemaining": 10, "percentRemaining": 0.25, "range": 50},
        headers=imperial,
    )
    fake.reply(200, json_body={"percentRemaining": 0.8, "range": 200}, headers=imperial)
    fake.reply(
        200,
        json_body={"frontLeft": 32, "frontRight": 32, "backLeft": 35, "backRight": None},
        headers=imperial,
    )
    odometer = await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    fuel = await vehicles.fuel(ACCESS_TOKEN, VEHICLE_ID)
    battery = await vehicles.battery(ACCESS_TOKEN, VEHICLE_ID)
    tires = await vehicles.tire_pressure(ACCESS_TOKEN, VEHICLE_ID)
    assert odometer.value == Odometer(distance_km=160.9344)
    assert odometer.meta.unit_system is UnitSystem.IMPERIAL
    assert fuel.value == Fuel(
        percent_remaining=25.0, amount_remaining_l=37.854118, range_km=80.4672
    )
    assert battery.value == Battery(percent_remaining=80.0, range_km=321.8688)
    assert tires.value.front_left_kpa == pytest.approx(220.632, abs=1e-3)
    assert tires.value.back_left_kpa == pytest.approx(241.317, abs=1e-3)
    assert tires.value.back_right_kpa is None


async def test_null_fuel_fields_stay_none(fake: FakeSmartcar, vehicles: SmartcarVehicles) -> None:
    """European vehicles send nulls for fuel; they are None, not zero."""
    fake.reply(200, json_body={"amountRemaining": None, "percentRemaining": 0.5, "range": None})
    fuel = (await vehicles.fuel(ACCESS_TOKEN, VEHICLE_ID)).value
    assert fuel == Fuel(percent_remaining=50.0, amount_remaining_l=None, range_km=None)


async def test_percentages_are_free_of_float_noise(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """0.3 becomes exactly 30.0 rather than 30.000000000000004."""
    fake.reply(200, json_body={"percentRemaining": 0.3, "range": 1})
    assert (await vehicles.battery(ACCESS_TOKEN, VEHICLE_ID)).value.percent_remaining == 30.0


async def test_unit_system_is_configurable(fake: FakeSmartcar) -> None:
    """An imperial client asks for imperial and, absent a header, converts from it."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        vehicles = SmartcarVehicles(
            http=http, endpoints=ENDPOINTS, unit_system=UnitSystem.IMPERIAL, clock=fixed_clock
        )
        fake.reply(200, json_body={"distance": 10})
        reading = await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert fake.last.headers["sc-unit-system"] == "imperial"
    assert reading.value == Odometer(distance_km=16.09344)
    assert reading.meta.unit_system is UnitSystem.IMPERIAL


async def test_each_call_sends_only_its_own_token(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """Tokens are per call: a second vehicle's call never carries the first one's token."""
    fake.reply(200, json_body={"distance": 1})
    fake.reply(200, json_body={"distance": 2})
    await vehicles.odometer(ACCESS_TOKEN, "vehicle-a")
    await vehicles.odometer(OTHER_TOKEN, "vehicle-b")
    first, second = (r.headers["authorization"] for r in fake.requests)
    assert first == f"Bearer {ACCESS_TOKEN.reveal()}"
    assert second == f"Bearer {OTHER_TOKEN.reveal()}"


@pytest.mark.parametrize(
    "bad_id",
    ["", "../user", "a/b", "..", ".", "a b", "%2e%2e", "a?b=1", "a#b", "a\n", "é", "x" * 129],
)
async def test_vehicle_ids_are_validated_before_any_request(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, bad_id: str
) -> None:
    """Anything but a plain id is a ValueError, and nothing is sent."""
    with pytest.raises(ValueError, match="vehicle_id"):
        await vehicles.odometer(ACCESS_TOKEN, bad_id)
    assert fake.requests == []


async def test_tokens_must_be_secrets(fake: FakeSmartcar, vehicles: SmartcarVehicles) -> None:
    """A plain-string access token is a TypeError; nothing is sent."""
    with pytest.raises(TypeError, match="Secret"):
        await vehicles.odometer("plain-token", VEHICLE_ID)  # type: ignore[arg-type]
    assert fake.requests == []


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [({"limit": 0}, "limit"), ({"offset": -1}, "offset"), ({"limit": True}, "limit")],
)
async def test_paging_is_validated(
    vehicles: SmartcarVehicles, kwargs: dict[str, Any], named: str
) -> None:
    """A non-positive limit or negative offset is a ValueError naming it."""
    with pytest.raises(ValueError, match=named):
        await vehicles.list_vehicles(ACCESS_TOKEN, **kwargs)


async def test_lock_status_tolerates_missing_closure_lists(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """Partial support leaves closure lists out; they read as empty."""
    fake.reply(200, json_body={"isLocked": True})
    assert (await vehicles.lock_status(ACCESS_TOKEN, VEHICLE_ID)).value == LockStatus(
        is_locked=True
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"isPluggedIn": False, "state": "NOT_CHARGING"},
            ChargeStatus(is_plugged_in=False, state="NOT_CHARGING"),
        ),
        (
            {"isPluggedIn": True, "state": "charging"},
            ChargeStatus(is_plugged_in=True, state="CHARGING"),
        ),
        (
            {"isPluggedIn": True, "state": "PAUSED"},
            ChargeStatus(is_plugged_in=True, state="PAUSED"),
        ),
    ],
)
async def test_charge_states_are_upper_cased_and_passed_on(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, body: dict[str, Any], expected: ChargeStatus
) -> None:
    """A charge state is read in any case; one Smartcar has not documented is passed on
    for the caller to judge."""
    fake.reply(200, json_body=body)
    assert (await vehicles.charge(ACCESS_TOKEN, VEHICLE_ID)).value == expected


@pytest.mark.parametrize(
    ("path", "body", "key"),
    [
        ("charge", {"isPluggedIn": "yes", "state": "CHARGING"}, "isPluggedIn"),
        ("charge", {"isPluggedIn": True}, "state"),
        ("charge", {"isPluggedIn": True, "state": " "}, "state"),
        ("charge_limit", {"limit": 80}, "limit"),
        ("charge_limit", {"limit": None}, "limit"),
        ("charge_limit", {"limit": -0.1}, "limit"),
    ],
)
async def test_bad_charge_bodies_are_protocol_errors_naming_the_key(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, path: str, body: dict[str, Any], key: str
) -> None:
    """A charge body without its documented keys, or a limit that is no fraction (80 is a
    percentage: v2 sends 0.8), is a SmartcarProtocolError naming the key."""
    fake.reply(200, json_body=body)
    with pytest.raises(SmartcarProtocolError, match=key):
        await getattr(vehicles, path)(ACCESS_TOKEN, VEHICLE_ID)


@pytest.mark.parametrize("percent", [-1, 101, 80.0, True])
async def test_a_charge_limit_must_be_a_whole_percent(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, percent: Any
) -> None:
    """set_charge_limit takes an integer percent 0-100 and sends nothing otherwise."""
    with pytest.raises(ValueError, match="percent"):
        await vehicles.set_charge_limit(ACCESS_TOKEN, VEHICLE_ID, percent)
    assert fake.requests == []
