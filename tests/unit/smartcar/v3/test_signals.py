"""Vehicle API V3 reads: vehicle, signals (list and single), in every documented shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from clients.smartcar import (
    CompatibilityError,
    Location,
    Odometer,
    PermissionDenied,
    ResourceNotFound,
    SmartcarProtocolError,
    UnitSystem,
    ValidationError,
    VehicleNotCapable,
    VehicleStateError,
)
from clients.smartcar.v3 import (
    Page,
    Signal,
    SignalFailure,
    SignalField,
    SignalStatus,
    SignalValue,
    SmartcarVehiclesV3,
    Vehicle,
)
from tests.unit.smartcar.fakes import USER_ID, VEHICLE_ID, FakeSmartcar, fixed_clock
from tests.unit.smartcar.v3.fakes import APP_TOKEN, ENDPOINTS, VEHICLES, signal, v3_error

BASE = f"{VEHICLES}/{VEHICLE_ID}"

# The list example of Smartcar's signals page: meta.page, epoch seconds, links.previous.
DOCUMENTED_LIST = {
    "data": [
        {
            "id": "<string>",
            "type": "signal",
            "attributes": {
                "code": "charge-voltage",
                "name": "Voltage",
                "group": "Charge",
                "status": {"value": "SUCCESS"},
                "body": {"unit": "volts", "value": 85},
            },
            "meta": {"retrievedAt": 1696156800, "oemUpdatedAt": 1696156799},
            "links": {"self": "<string>", "values": "<string>", "vehicle": "<string>"},
        }
    ],
    "meta": {"page": 1, "pageSize": 10, "totalCount": 5},
    "links": {
        "self": "/vehicles/vehicle123/signals?page=1&pageSize=10",
        "first": "...",
        "previous": None,
        "next": "/vehicles/vehicle123/signals?page=2&pageSize=10",
        "last": "...",
    },
    "included": {
        "vehicle": {
            "id": "vehicle123",
            "type": "vehicle",
            "attributes": {"make": "TESLA", "model": "Model 3", "year": 2021},
            "links": {"self": "/vehicles/vehicle123"},
        }
    },
}

# A live capture (third-party, 2026-09): meta.pageNumber, ISO-8601 times, units "km",
# per-signal ERROR items inside the 200, errors carrying only ingestedAt.
LIVE_LIST = {
    "data": [
        signal(
            "odometer-traveleddistance",
            {"value": 32208, "unit": "km"},
            meta={
                "ingestedAt": "2026-09-22T12:43:14.379Z",
                "retrievedAt": "2026-09-22T12:43:14.000Z",
                "oemUpdatedAt": "2026-09-22T12:41:16.476Z",
            },
        ),
        signal(
            "tractionbattery-range",
            {"value": 472, "type": "DEFAULT", "additionalValues": [], "unit": "km"},
            meta={"retrievedAt": "2026-09-22T12:43:14Z", "oemUpdatedAt": "2026-09-22T12:40:00Z"},
        ),
        signal(
            "tractionbattery-stateofcharge",
            {"value": 80, "unit": "percent"},
            meta={"retrievedAt": "2026-09-22T12:43:14Z", "oemUpdatedAt": "2026-09-22T12:41:00Z"},
        ),
        signal(
            "connectivitystatus-isonline",
            {"value": None},
            status="ERROR",
            error={
                "type": "COMPATIBILITY",
                "code": "VEHICLE_NOT_CAPABLE",
                "title": "Vehicle Not Capable",
                "detail": "The vehicle cannot report this signal.",
                "resolution": {"type": "UNKNOWN_RESOLUTION_TYPE"},
            },
            meta={"ingestedAt": "2026-09-22T12:43:14.379Z"},
        ),
    ],
    "meta": {"totalCount": 4, "pageSize": 25, "pageNumber": 1},
    "links": {"self": "https://vehicle.api.smartcar.com/v3/vehicles/v/signals"},
}


async def test_signals_request_carries_token_user_and_unit_system(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """GET /v3/vehicles/{id}/signals with Bearer, sc-user-id and sc-unit-system."""
    fake.reply(200, json_body=LIVE_LIST)
    await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    request = fake.last
    assert (request.method, str(request.url)) == ("GET", f"{BASE}/signals")
    assert request.headers["authorization"] == f"Bearer {APP_TOKEN.reveal()}"
    assert request.headers["sc-user-id"] == USER_ID
    assert request.headers["sc-unit-system"] == "metric"


async def test_documented_list_shape(fake: FakeSmartcar, vehicles: SmartcarVehiclesV3) -> None:
    """The docs' example: page from meta.page, next link, included vehicle, epoch seconds."""
    fake.reply(200, json_body=DOCUMENTED_LIST, headers={"sc-request-id": "rq-1"})
    signals = await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    voltage = signals.signal("charge-voltage")
    assert voltage == Signal(
        code="charge-voltage",
        status=SignalStatus.SUCCESS,
        body={"unit": "volts", "value": 85},
        name="Voltage",
        group="Charge",
        oem_updated_at=datetime(2023, 10, 1, 10, 39, 59, tzinfo=UTC),
        retrieved_at=datetime(2023, 10, 1, 10, 40, tzinfo=UTC),
    )
    assert signals.page == Page(number=1, size=10, total_count=5, has_next=True)
    assert signals.vehicle == Vehicle(id="vehicle123", make="TESLA", model="Model 3", year=2021)
    assert signals.request_id == "rq-1"
    assert signals.odometer is None  # not sent: not a failure


async def test_live_list_shape(fake: FakeSmartcar, vehicles: SmartcarVehiclesV3) -> None:
    """The live capture: pageNumber, ISO times, km units, and an ERROR item inside the 200."""
    fake.reply(200, json_body=LIVE_LIST)
    signals = await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert signals.page == Page(number=1, size=25, total_count=4, has_next=False)
    assert signals.odometer == SignalValue(
        code="odometer-traveleddistance",
        value=Odometer(distance_km=32208.0),
        oem_updated_at=datetime(2026, 9, 22, 12, 41, 16, 476000, tzinfo=UTC),
        retrieved_at=datetime(2026, 9, 22, 12, 43, 14, tzinfo=UTC),
    )
    odometer = signals.signal("odometer-traveleddistance")
    assert odometer is not None
    assert odometer.ingested_at == datetime(2026, 9, 22, 12, 43, 14, 379000, tzinfo=UTC)
    battery = signals.battery
    assert isinstance(battery, SignalValue)
    assert (battery.value.percent_remaining, battery.value.range_km) == (80.0, 472.0)
    assert battery.oem_updated_at == datetime(2026, 9, 22, 12, 41, tzinfo=UTC)
    online = signals.signal("connectivitystatus-isonline")
    assert online is not None
    assert online.status is SignalStatus.ERROR
    assert isinstance(online.error, VehicleNotCapable)
    assert online.error.resolution.type == "UNKNOWN_RESOLUTION_TYPE"
    assert online.error.description == "The vehicle cannot report this signal."
    assert online.retrieved_at is None


async def test_a_failed_signal_makes_its_field_a_failure(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """Every signal of a field failed → SignalFailure with Smartcar's typed error."""
    fake.reply(200, json_body=LIVE_LIST)
    signals = await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    connectivity = signals.connectivity
    assert isinstance(connectivity, SignalFailure)
    assert connectivity.code == "connectivitystatus-isonline"
    assert connectivity.status is SignalStatus.ERROR
    assert isinstance(connectivity.error, CompatibilityError)


async def test_bare_list_and_missing_meta_are_read(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """A bare list of signals (no envelope) reads, without paging."""
    fake.reply(200, json_body=[signal("closure-islocked", {"value": True})])
    signals = await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert signals.page is None
    assert isinstance(signals.lock_status, SignalValue)
    assert signals.lock_status.value.is_locked is True


async def test_an_empty_store_is_an_empty_answer(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """200 with data [] and totalCount 0 (an unsubscribed car, as live users report)."""
    fake.reply(200, json_body={"data": [], "meta": {"totalCount": 0, "pageNumber": 1}})
    signals = await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert signals.signals == ()
    assert signals.page == Page(number=1, size=None, total_count=0, has_next=False)
    assert all(signals.reading(field) is None for field in SignalField)


async def test_items_without_a_code_are_left_out(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3, caplog: pytest.LogCaptureFixture
) -> None:
    """A non-object item or one naming no code is dropped, with a warning counting them."""
    items = [signal("closure-islocked", {"value": False}), "junk", {"type": "signal"}]
    fake.reply(200, json_body={"data": items})
    signals = await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert [s.code for s in signals.signals] == ["closure-islocked"]
    assert "2 signal item(s) without a code" in caplog.text


@pytest.mark.parametrize(
    "body",
    [{"data": {"not": "a list"}}, {"meta": {}}, "text", 42],
    ids=["data-object", "no-data", "string", "number"],
)
async def test_a_malformed_envelope_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3, body: Any
) -> None:
    """Only an envelope that holds no list of signals fails the whole read."""
    fake.reply(200, json_body=body)
    with pytest.raises(SmartcarProtocolError, match="signals"):
        await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)


async def test_unreadable_paging_and_included_vehicle_do_not_spoil_the_signals(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """Paging parts of the wrong type read as unknown; a bad included vehicle as None."""
    body = {
        "data": [signal("closure-islocked", {"value": True})],
        "meta": {"page": "first", "pageSize": -1, "totalCount": True},
        "included": {"vehicle": {"id": "v", "attributes": {"make": 7}}},
    }
    fake.reply(200, json_body=body)
    signals = await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert signals.page == Page(number=None, size=None, total_count=None, has_next=False)
    assert signals.vehicle is None
    assert signals.lock_status is not None


async def test_included_vehicle_in_a_json_api_list(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """``included`` as a JSON:API list of resources is read too."""
    vehicle = {
        "id": "v-1",
        "type": "vehicle",
        "attributes": {"make": "VW", "model": "ID.4", "year": 2024},
    }
    fake.reply(200, json_body={"data": [], "included": [{"type": "user", "id": "u"}, vehicle]})
    signals = await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert signals.vehicle == Vehicle(id="v-1", make="VW", model="ID.4", year=2024)


SDK_SINGLE = {
    "id": "odometer-traveleddistance",
    "type": "signal",
    "attributes": {
        "code": "odometer-traveleddistance",
        "name": "TraveledDistance",
        "group": "Odometer",
        "status": {"value": "SUCCESS"},
        "body": {"unit": "kilometers", "value": 115071.50046584333},
    },
    "meta": {"retrievedAt": 1752104218549, "oemUpdatedAt": 1752104118549},
    "links": {"self": "/vehicles/tst2e255-d3c8-4f90-9fec-e6e68b98e9cb/signals/odometer"},
}


@pytest.mark.parametrize("wrapped", [False, True], ids=["bare", "data"])
async def test_single_signal_bare_or_wrapped(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3, wrapped: bool
) -> None:
    """GET …/signals/{code}: the SDK's bare resource and a data-wrapped one read alike (ms)."""
    fake.reply(200, json_body={"data": SDK_SINGLE} if wrapped else SDK_SINGLE)
    read = await vehicles.signal(
        APP_TOKEN, VEHICLE_ID, "odometer-traveleddistance", user_id=USER_ID
    )
    assert str(fake.last.url) == f"{BASE}/signals/odometer-traveleddistance"
    assert fake.last.headers["sc-user-id"] == USER_ID
    assert read.code == "odometer-traveleddistance"
    assert read.body["value"] == 115071.50046584333
    assert read.oem_updated_at == datetime(2025, 7, 9, 23, 35, 18, 549000, tzinfo=UTC)
    assert read.retrieved_at == datetime(2025, 7, 9, 23, 36, 58, 549000, tzinfo=UTC)


async def test_single_signal_without_a_code_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """An answer that names no signal cannot be attributed: protocol error."""
    fake.reply(200, json_body={"data": {"type": "signal", "attributes": {}}})
    with pytest.raises(SmartcarProtocolError, match="no signal code"):
        await vehicles.signal(APP_TOKEN, VEHICLE_ID, "closure-islocked", user_id=USER_ID)


async def test_unknown_code_is_resource_not_found(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """Smartcar answers an unstored code 404: ResourceNotFound."""
    fake.reply(404, json_body=v3_error(404, "RESOURCE_NOT_FOUND", "PATH"))
    with pytest.raises(ResourceNotFound):
        await vehicles.signal(APP_TOKEN, VEHICLE_ID, "vin", user_id=USER_ID)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            v3_error(400, "VALIDATION", "MISSING_PARAMETER", detail="missing userId"),
            ValidationError,
        ),
        (403, v3_error(403, "PERMISSION", None), PermissionDenied),
        (409, v3_error(409, "VEHICLE_STATE", "REMOTE_ACCESS_DISABLED"), VehicleStateError),
    ],
)
async def test_signals_errors_are_typed(
    fake: FakeSmartcar,
    vehicles: SmartcarVehiclesV3,
    status: int,
    body: Any,
    expected: type[Exception],
) -> None:
    """A whole-call failure raises the error its V3 body names."""
    fake.reply(status, json_body=body)
    with pytest.raises(expected):
        await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)


@pytest.mark.parametrize("bad", ["../x", "a/b", "", "x?y", "é"])
async def test_ids_and_codes_cannot_steer_the_path_or_headers(
    vehicles: SmartcarVehiclesV3, bad: str
) -> None:
    """Vehicle ids, user ids and codes must be plain ids: ValueError before any request."""
    with pytest.raises(ValueError, match="vehicle_id"):
        await vehicles.signals(APP_TOKEN, bad, user_id=USER_ID)
    with pytest.raises(ValueError, match="user_id"):
        await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=bad + "\r\nx: y")
    with pytest.raises(ValueError, match="code"):
        await vehicles.signal(APP_TOKEN, VEHICLE_ID, bad, user_id=USER_ID)


async def test_token_must_be_a_secret(vehicles: SmartcarVehiclesV3) -> None:
    """A plain-string token is refused (it could end up in a repr)."""
    with pytest.raises(TypeError, match="Secret"):
        await vehicles.signals("plain", VEHICLE_ID, user_id=USER_ID)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    [
        {
            "data": {
                "id": "vehicle123",
                "type": "vehicle",
                "attributes": {
                    "make": "Toyota",
                    "model": "Camry",
                    "year": 2020,
                    "powertrainType": "ICE",
                    "mode": "live",
                },
                "links": {"self": "/vehicles/vehicle123"},
            }
        },
        {
            "id": "vehicle123",
            "type": "vehicle",
            "attributes": {
                "make": "Toyota",
                "model": "Camry",
                "year": 2020,
                "powertrainType": "ICE",
                "mode": "live",
            },
            "links": {"self": "/vehicles/vehicle123"},
        },
    ],
    ids=["documented-wrapped", "sdk-bare"],
)
async def test_vehicle_wrapped_or_bare(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3, body: Any
) -> None:
    """GET /v3/vehicles/{id}: the docs wrap it in data, the Node SDK's test does not."""
    fake.reply(200, json_body=body)
    vehicle = await vehicles.vehicle(APP_TOKEN, VEHICLE_ID)
    assert vehicle == Vehicle(
        id="vehicle123", make="Toyota", model="Camry", year=2020, mode="live", powertrain_type="ICE"
    )
    assert str(fake.last.url) == BASE
    assert "sc-user-id" not in fake.last.headers


async def test_vehicle_sends_the_user_when_asked(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """user_id on GET vehicle is optional and sent as sc-user-id when given."""
    fake.reply(
        200,
        json_body={"data": {"id": "v", "attributes": {"make": "a", "model": "b", "year": "2020"}}},
    )
    vehicle = await vehicles.vehicle(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert fake.last.headers["sc-user-id"] == USER_ID
    assert (vehicle.year, vehicle.mode, vehicle.powertrain_type) == (2020, None, None)


async def test_vehicle_without_make_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """A vehicle answer missing a documented key names it."""
    fake.reply(200, json_body={"data": {"id": "v", "attributes": {"model": "b", "year": 2020}}})
    with pytest.raises(SmartcarProtocolError, match="make"):
        await vehicles.vehicle(APP_TOKEN, VEHICLE_ID)


async def test_imperial_answer_header_sets_the_unit_of_unit_less_values(
    fake: FakeSmartcar, http: httpx.AsyncClient
) -> None:
    """A value without a unit is in the answer's sc-unit-system (else the one asked for)."""
    client = SmartcarVehiclesV3(
        http=http, endpoints=ENDPOINTS, clock=fixed_clock, unit_system=UnitSystem.IMPERIAL
    )
    body = {"data": [signal("odometer-traveleddistance", {"value": 100})]}
    fake.reply(200, json_body=body)
    imperial = await client.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert fake.last.headers["sc-unit-system"] == "imperial"
    fake.reply(200, json_body=body, headers={"sc-unit-system": "metric"})
    metric = await client.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert isinstance(imperial.odometer, SignalValue)
    assert isinstance(metric.odometer, SignalValue)
    assert imperial.odometer.value == Odometer(distance_km=160.9344)
    assert metric.odometer.value == Odometer(distance_km=100.0)


def test_location_model_is_v2s() -> None:
    """V3 readings reuse v2's value models, so callers convert both versions alike."""
    assert SignalValue(code="c", value=Location(latitude=1, longitude=2)).value.latitude == 1
