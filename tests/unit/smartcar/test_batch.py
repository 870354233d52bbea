"""Batch: one round trip, each path answered on its own with its own meta and error."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from clients.smartcar import (
    BATCH_PATHS,
    Fuel,
    Odometer,
    PermissionDenied,
    SmartcarProtocolError,
    SmartcarVehicles,
    UnitSystem,
    VehicleAsleep,
    VehicleRateLimited,
)
from tests.unit.smartcar.fakes import ACCESS_TOKEN, VEHICLE_ID, FakeSmartcar, error_body


def _answer(*items: dict[str, Any]) -> dict[str, Any]:
    return {"responses": list(items)}


async def test_batch_posts_the_requested_paths(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """POST /vehicles/{id}/batch with {"requests": [{"path": …}]}, bearer and unit header."""
    fake.reply(200, json_body=_answer())
    await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/odometer", "/fuel"])
    request = fake.last
    assert request.method == "POST"
    assert str(request.url) == f"https://api.sc.test/v2.0/vehicles/{VEHICLE_ID}/batch"
    assert json.loads(request.content) == {"requests": [{"path": "/odometer"}, {"path": "/fuel"}]}
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN.reveal()}"
    assert request.headers["sc-unit-system"] == "metric"


async def test_mixed_successes_and_errors(fake: FakeSmartcar, vehicles: SmartcarVehicles) -> None:
    """Successful items carry decoded values, failed ones their typed error; order is kept."""
    fake.reply(
        200,
        json_body=_answer(
            {
                "path": "/odometer",
                "body": {"distance": 37829},
                "code": 200,
                "headers": {"sc-data-age": "2019-10-24T00:43:46.000Z", "sc-unit-system": "metric"},
            },
            {"path": "/battery", "body": error_body("PERMISSION", None, 403), "code": 403},
            {"path": "/fuel", "body": error_body("VEHICLE_STATE", "ASLEEP", 409), "code": 409},
        ),
        headers={"sc-request-id": "batch-rid"},
    )
    result = await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/odometer", "/battery", "/fuel"])
    odometer, battery, fuel = result.items
    assert [i.path for i in result.items] == ["/odometer", "/battery", "/fuel"]
    assert (odometer.ok, odometer.status, odometer.value) == (
        True,
        200,
        Odometer(distance_km=37829),
    )
    assert odometer.meta.data_age == datetime(2019, 10, 24, 0, 43, 46, tzinfo=UTC)
    assert isinstance(battery.error, PermissionDenied)
    assert (battery.ok, battery.status, battery.value) == (False, 403, None)
    assert isinstance(fuel.error, VehicleAsleep)
    assert result.meta.request_id == "batch-rid"


@pytest.mark.parametrize("header", ["retry-after", "Retry-After", "RETRY-AFTER"])
async def test_item_retry_after_is_read_in_any_case(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, header: str
) -> None:
    """An item's retry-after reaches its error whatever its case (the SDK lost lowercase)."""
    item = {
        "path": "/odometer",
        "body": error_body("RATE_LIMIT", "VEHICLE", 429),
        "code": 429,
        "headers": {header: "45"},
    }
    fake.reply(200, json_body=_answer(item))
    result = await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/odometer"])
    error = result.item("/odometer").error
    assert isinstance(error, VehicleRateLimited)
    assert error.retry_after_s == 45.0


async def test_item_retry_after_may_be_a_json_number(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """Batch item headers are JSON, so retry-after can arrive as a number."""
    item = {
        "path": "/fuel",
        "body": error_body("RATE_LIMIT", "VEHICLE", 429),
        "code": 429,
        "headers": {"retry-after": 12},
    }
    fake.reply(200, json_body=_answer(item))
    error = (await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/fuel"])).item("/fuel").error
    assert isinstance(error, VehicleRateLimited)
    assert error.retry_after_s == 12.0


async def test_items_without_headers_fall_back_on_the_envelope(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """No headers key: meta takes the batch's request id and unit system; no retry-after."""
    body = error_body("PERMISSION", None, 403)
    del body["requestId"]
    fake.reply(
        200,
        json_body=_answer(
            {"path": "/odometer", "body": {"distance": 10}, "code": 200},
            {"path": "/vin", "body": body, "code": 403},
        ),
        headers={"sc-request-id": "top-rid", "sc-unit-system": "imperial"},
    )
    result = await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/odometer", "/vin"])
    odometer, vin = result.items
    assert odometer.meta.request_id == "top-rid"
    assert odometer.meta.unit_system is UnitSystem.IMPERIAL
    assert odometer.value == Odometer(distance_km=16.09344)
    assert isinstance(vin.error, PermissionDenied)
    assert vin.error.request_id == "top-rid"
    assert vin.error.retry_after_s is None


async def test_item_unit_system_wins_over_the_envelope(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """Each item is converted by its own sc-unit-system."""
    item = {
        "path": "/fuel",
        "body": {"amountRemaining": 1, "percentRemaining": 0.5, "range": 1},
        "code": 200,
        "headers": {"SC-Unit-System": "imperial"},
    }
    fake.reply(200, json_body=_answer(item), headers={"sc-unit-system": "metric"})
    result = await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/fuel"])
    reading = result.reading("/fuel", Fuel)
    assert reading.value == Fuel(
        percent_remaining=50.0, amount_remaining_l=3.785412, range_km=1.609344
    )
    assert reading.meta.unit_system is UnitSystem.IMPERIAL


async def test_a_malformed_item_spoils_only_itself(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """A 200 item with the wrong shape gets a protocol error; its neighbours still decode."""
    fake.reply(
        200,
        json_body=_answer(
            {"path": "/odometer", "body": {"miles": 3}, "code": 200},
            {"path": "/location", "body": {"latitude": 1, "longitude": 2}, "code": 200},
            {"path": "/vin", "body": "<html>", "code": 502},
        ),
    )
    result = await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/odometer", "/location", "/vin"])
    assert isinstance(result.item("/odometer").error, SmartcarProtocolError)
    assert result.item("/location").ok
    assert isinstance(result.item("/vin").error, SmartcarProtocolError)


@pytest.mark.parametrize(
    "body",
    [{}, {"responses": {}}, {"responses": ["x"]}, {"responses": [{"path": "/vin"}]}],
    ids=["no-responses", "not-a-list", "item-not-object", "item-without-code"],
)
async def test_a_malformed_envelope_fails_the_batch(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, body: object
) -> None:
    """When the envelope itself is wrong there is nothing to read."""
    fake.reply(200, json_body=body)
    with pytest.raises(SmartcarProtocolError, match="batch"):
        await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/vin"])


async def test_reading_raises_the_items_error(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """reading() hands back a typed Reading, or raises that item's error."""
    fake.reply(
        200,
        json_body=_answer(
            {"path": "/odometer", "body": {"distance": 5}, "code": 200},
            {"path": "/fuel", "body": error_body("VEHICLE_STATE", "ASLEEP", 409), "code": 409},
        ),
    )
    result = await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, ["/odometer", "/fuel"])
    assert result.reading("/odometer", Odometer).value == Odometer(distance_km=5)
    with pytest.raises(VehicleAsleep):
        result.reading("/fuel", Fuel)
    with pytest.raises(TypeError, match="Odometer"):
        result.reading("/odometer", Fuel)
    with pytest.raises(KeyError):
        result.item("/battery")


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ([], "at least one"),
        ("/odometer", "not one string"),
        (["/odometer", "/odometer"], "repeat"),
        (["/charge/schedule"], "unsupported"),
        (["odometer"], "unsupported"),
    ],
)
async def test_batch_paths_are_validated(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, paths: Any, message: str
) -> None:
    """Only known, distinct paths are sent; anything else is a ValueError before sending."""
    with pytest.raises(ValueError, match=message):
        await vehicles.batch(ACCESS_TOKEN, VEHICLE_ID, paths)
    assert fake.requests == []


def test_batch_paths_cover_every_read() -> None:
    """Every telemetry read of the gateway can go through a batch."""
    assert {
        "/",
        "/vin",
        "/location",
        "/odometer",
        "/fuel",
        "/battery",
        "/security",
        "/tires/pressure",
        "/engine/oil",
        "/charge",
        "/charge/limit",
        "/permissions",
    } == BATCH_PATHS
