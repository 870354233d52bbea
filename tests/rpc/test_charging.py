"""EV charging over a real server and the simulator, on Smartcar's v2.0 and on API V3: the
CHARGE field, StartCharge, StopCharge and SetChargeLimit change the car, an ICE car
answers clearly, and a retried request id is not sent twice."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.model import AuditQuery
from gateway.edge.clock import ManualClock
from tests.instants import START
from tests.rpc.rig import (
    Rig,
    error_info_of,
    gateway_against,
    gateway_settings,
    simulator,
    status_of,
)

COMMAND_PATHS = {
    "v2": {"start": "charge", "stop": "charge", "limit": "charge/limit"},
    "v3": {
        "start": "v3/commands/charge/start",
        "stop": "v3/commands/charge/stop",
        "limit": "v3/commands/charge/set-limit",
    },
}
"""Where the simulator counts each charge command (`requests.by_endpoint`), per API."""


@pytest.fixture(params=["v2", "v3"])
def api(request: pytest.FixtureRequest) -> str:
    """The Smartcar API new connections use: each test runs on both."""
    return str(request.param)


@pytest.fixture
async def rig(api: str, tmp_path: Path) -> AsyncIterator[Rig]:
    """A gateway whose new connections use `api`, on a fresh simulator."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API=api)
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as running:
        yield running


async def connect(rig: Rig, vehicle_id: str, powertrain: str) -> pb.Vehicle:
    """Connect the first free catalog car of `powertrain` by its VIN (GetConnectUrl with
    the VIN, simulated Connect, Connect with the redirect's code and user id)."""
    cars = (await rig.sim("GET", "/sim/vehicles"))["vehicles"]
    vin = next(c["vin"] for c in cars if c["powertrain"] == powertrain and not c["owner_user_id"])
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=vehicle_id, vin=vin))
    redirect = await rig.http.get(issued.url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    return await rig.stub.Connect(
        pb.ConnectRequest(
            vehicle_id=vehicle_id,
            code=query["code"][0],
            state=issued.state,
            user_id=query["user_id"][0],
        )
    )


async def charge(rig: Rig, vehicle_id: str, *, max_age_s: int) -> pb.FieldReading:
    """Read the CHARGE field no older than `max_age_s`."""
    request = pb.GetTelemetryRequest(
        vehicle_id=vehicle_id,
        fields=[pb.TelemetryField.CHARGE],
        max_age=duration_pb2.Duration(seconds=max_age_s),
    )
    [reading] = (await rig.stub.GetTelemetry(request)).readings
    return reading


async def car_state(rig: Rig, vehicle: pb.Vehicle) -> Any:
    """The simulated car as the simulator holds it (the ground truth)."""
    return await rig.sim("GET", f"/sim/vehicles/{vehicle.smartcar_vehicle_id}")


async def sent(rig: Rig, api: str, kind: str) -> int:
    """How many charge commands of `kind` reached the simulator through `api`."""
    by_endpoint = (await rig.stats())["requests"]["by_endpoint"]
    return int(by_endpoint.get(COMMAND_PATHS[api][kind], 0))


async def test_an_ev_reports_its_charge_and_the_commands_change_it(rig: Rig) -> None:
    """An EV reads plugged in, not charging, 80 %; StartCharge, SetChargeLimit and
    StopCharge each succeed, change the car, and a fresh read shows it; the panel's last
    command names the charge action; the actions are in the audit trail."""
    vehicle = await connect(rig, "ev-1", "BEV")
    assert {"read_charge", "control_charge"} <= set(vehicle.granted_permissions)
    first = await charge(rig, "ev-1", max_age_s=86400)
    assert first.availability == pb.AVAILABLE
    assert first.charge == pb.Charge(plugged_in=True, state=pb.NOT_CHARGING, limit_percent=80)

    started = await rig.stub.StartCharge(pb.StartChargeRequest(vehicle_id="ev-1", request_id="s"))
    assert (started.state, started.charge_action, started.action) == (
        pb.SUCCEEDED,
        pb.START_CHARGE,
        pb.LOCK_ACTION_UNSPECIFIED,
    )
    assert (await car_state(rig, vehicle))["charging"] is True
    assert (await charge(rig, "ev-1", max_age_s=3600)).charge.state == pb.CHARGING  # cached
    await rig.advance(10)
    fresh = await charge(rig, "ev-1", max_age_s=5)
    assert (fresh.availability, fresh.charge.state) == (pb.AVAILABLE, pb.CHARGING)

    limit = pb.SetChargeLimitRequest(vehicle_id="ev-1", request_id="l", limit_percent=90)
    assert (await rig.stub.SetChargeLimit(limit)).charge_action == pb.SET_CHARGE_LIMIT
    assert (await car_state(rig, vehicle))["charge_limit"] == 90
    await rig.stub.StopCharge(pb.StopChargeRequest(vehicle_id="ev-1", request_id="t"))
    await rig.advance(10)
    after = await charge(rig, "ev-1", max_age_s=5)
    assert (after.charge.state, after.charge.limit_percent) == (pb.NOT_CHARGING, 90)

    panel = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="ev-1"))
    assert (panel.last_command.charge_action, panel.last_command.request_id) == (
        pb.STOP_CHARGE,
        "t",
    )
    trail = await rig.running.gateway.audit.find(AuditQuery(vehicle_id="ev-1"))
    assert [(e.method, e.outcome) for e in trail][:3] == [
        ("StopCharge", "OK"),
        ("SetChargeLimit", "OK"),
        ("StartCharge", "OK"),
    ]


async def test_a_retried_request_id_is_not_sent_twice(rig: Rig, api: str) -> None:
    """StartCharge and SetChargeLimit repeated with their request ids answer the first
    outcome (replayed) without a second command; the same id with another limit is
    INVALID_ARGUMENT naming `request_id`."""
    await connect(rig, "ev-1", "PHEV")
    start = pb.StartChargeRequest(vehicle_id="ev-1", request_id="start-1")
    limit = pb.SetChargeLimitRequest(vehicle_id="ev-1", request_id="limit-1", limit_percent=70)
    first, first_limit = await rig.stub.StartCharge(start), await rig.stub.SetChargeLimit(limit)
    again, again_limit = await rig.stub.StartCharge(start), await rig.stub.SetChargeLimit(limit)
    assert (first.replayed, again.replayed, again_limit.replayed) == (False, True, True)
    assert again.completed_at == first.completed_at
    assert again_limit.state == first_limit.state == pb.SUCCEEDED
    assert (await sent(rig, api, "start"), await sent(rig, api, "limit")) == (1, 1)
    other = pb.SetChargeLimitRequest(vehicle_id="ev-1", request_id="limit-1", limit_percent=75)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.SetChargeLimit(other)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(refused.value) == ["request_id"]
    assert await sent(rig, api, "limit") == 1


async def test_an_ice_car_has_no_charge_and_cannot_charge(rig: Rig, api: str) -> None:
    """An ICE car's CHARGE is NOT_CAPABLE; StartCharge is FAILED_PRECONDITION with reason
    VEHICLE_NOT_CAPABLE and Smartcar's type and code, kept: a retry hears it again
    (replayed) without a second command."""
    await connect(rig, "ice-1", "ICE")
    reading = await charge(rig, "ice-1", max_age_s=0)
    assert (reading.availability, reading.reason) == (
        pb.NOT_CAPABLE,
        "COMPATIBILITY:VEHICLE_NOT_CAPABLE",
    )
    assert reading.WhichOneof("value") is None
    request = pb.StartChargeRequest(vehicle_id="ice-1", request_id="start-ice")
    for attempt in ("first", "retry"):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rig.stub.StartCharge(request)
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        info = error_info_of(refused.value)
        assert info.reason == "VEHICLE_NOT_CAPABLE"
        assert info.metadata["smartcar_code"] == "VEHICLE_NOT_CAPABLE"
        assert ("replayed" in info.metadata) is (attempt == "retry")
    assert await sent(rig, api, "start") == 1


async def test_a_limit_smartcar_would_refuse_is_invalid_argument(rig: Rig, api: str) -> None:
    """A charge limit outside 50-100 % (or none) is INVALID_ARGUMENT naming
    `limit_percent`; nothing reaches Smartcar."""
    await connect(rig, "ev-1", "BEV")
    for percent in (0, 45, 101):
        request = pb.SetChargeLimitRequest(vehicle_id="ev-1", limit_percent=percent)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rig.stub.SetChargeLimit(request)
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert bad_fields(refused.value) == ["limit_percent"]
    assert await sent(rig, api, "limit") == 0


def bad_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields a BadRequest detail names."""
    for packed in status_of(error).details:
        if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            found = error_details_pb2.BadRequest.FromString(packed.value)
            return [violation.field for violation in found.field_violations]
    raise AssertionError("the error carries no BadRequest")
