"""Connection states that say what to do, over a real server and the simulator over HTTP:
owner revocation (DISCONNECTED), an owner's account to act on (NEEDS_REAUTHENTICATION, with
Smartcar's resolution URL in GetVehicle and in the error details), and Disconnect of a car
whose connection still counts at Smartcar (EXPIRED, waiting for its owner)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.edge.clock import ManualClock
from tests.instants import START
from tests.rpc.rig import (
    Rig,
    error_info_of,
    fresh_odometer,
    gateway_against,
    gateway_settings,
    simulator,
    status_of,
)
from tests.rpc.test_v3 import connect_v3

pytestmark = pytest.mark.one_database

DAY_S = 86400
PROBE_INTERVAL_S = 6 * 3600


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A gateway serving v2 connections (with the application's V3 credentials, as every
    gateway has), pointed at a fresh simulator."""
    async with (
        simulator() as url,
        gateway_against(gateway_settings(tmp_path), url, ManualClock(START)) as running,
    ):
        yield running


@pytest.fixture
async def v3_rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A gateway whose new connections use API V3, pointed at a fresh simulator."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v3")
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as running:
        yield running


async def refused(call: Any) -> grpc.aio.AioRpcError:
    """Await a call that must fail, and return its error."""
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    return failed.value


def help_links(error: grpc.aio.AioRpcError) -> list[str]:
    """The URLs of the google.rpc.Help detail of a failed call."""
    for packed in status_of(error).details:
        if packed.Is(error_details_pb2.Help.DESCRIPTOR):
            return [link.url for link in error_details_pb2.Help.FromString(packed.value).links]
    raise AssertionError("the error carries no Help")


async def connected_users(rig: Rig, smartcar_id: str) -> list[str]:
    """The users Smartcar (the simulator) lists as connected to the car."""
    users: list[str] = (await rig.sim("GET", f"/sim/vehicles/{smartcar_id}"))["connected_user_ids"]
    return users


async def panel(rig: Rig, vehicle_id: str) -> pb.Vehicle:
    """GetVehicle."""
    return await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id=vehicle_id))


async def test_v2_revocation_is_disconnected_and_an_expired_connection_is_deleted(rig: Rig) -> None:
    """v2: the owner revoking access ends DISCONNECTED with the reason (not EXPIRED); a pair
    past its 60 days is EXPIRED; Disconnect deletes the EXPIRED car's connection at Smartcar
    with the application's token (a failure there keeps it EXPIRED and is UNAVAILABLE; the
    retry deletes it) and the car ends DISCONNECTED."""
    revoked = await rig.connect("car-1")
    expiring = await rig.connect("car-2")
    await rig.sim("POST", f"/sim/vehicles/{revoked.smartcar_vehicle_id}/revoke", {})
    gone = await refused(rig.stub.GetTelemetry(fresh_odometer("car-1")))
    assert gone.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert error_info_of(gone).reason == "CONNECTION_DISCONNECTED"
    shown = await panel(rig, "car-1")
    assert shown.status == pb.DISCONNECTED
    assert "revoked" in shown.status_reason

    await rig.advance(61 * DAY_S)
    expired = await refused(rig.stub.GetTelemetry(fresh_odometer("car-2")))
    assert error_info_of(expired).reason == "CONNECTION_EXPIRED"
    assert (await panel(rig, "car-2")).status == pb.EXPIRED
    assert await connected_users(rig, expiring.smartcar_vehicle_id)  # still counts at Smartcar

    fault = {"kind": "server_error", "path": "v3/connections", "count": 1}
    await rig.sim("POST", "/sim/faults", fault)
    failed = await refused(rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-2")))
    assert failed.code() is grpc.StatusCode.UNAVAILABLE
    kept = await panel(rig, "car-2")
    assert kept.status == pb.EXPIRED
    assert "disconnect failed" in kept.status_reason
    disconnected = await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-2"))
    assert disconnected.status == pb.DISCONNECTED
    assert await connected_users(rig, expiring.smartcar_vehicle_id) == []


async def test_v2_an_owner_account_error_waits_for_the_owner_until_a_probe_answers(
    rig: Rig,
) -> None:
    """v2, Smartcar's CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED: the car turns
    NEEDS_REAUTHENTICATION, GetVehicle shows the error and Smartcar's re-authentication
    link; reads answer what is held (UNAVAILABLE, REAUTHENTICATION_REQUIRED), commands and
    StartRental are FAILED_PRECONDITION carrying the link (ErrorInfo, Help); the scheduler
    probes it after 6 h, and once the owner acted the probe's answer makes it ACTIVE."""
    car = await rig.connect("car-1")
    await rig.telemetry("car-1", max_age_s=0)
    fault = {"kind": "account", "vehicle_id": car.smartcar_vehicle_id}
    await rig.sim("POST", "/sim/faults", fault)
    await rig.advance(60)
    answer = await rig.stub.GetTelemetry(fresh_odometer("car-1"))
    odometer = answer.readings[0]
    assert (odometer.availability, odometer.reason) == (pb.UNAVAILABLE, "REAUTHENTICATION_REQUIRED")
    assert odometer.odometer.distance_km > 0

    shown = await panel(rig, "car-1")
    assert shown.status == pb.NEEDS_REAUTHENTICATION
    assert shown.status_error_code == "CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED"
    assert shown.resolution_type == "REAUTHENTICATE"
    assert car.smartcar_vehicle_id in shown.resolution_url
    assert shown.resolution_doc_url.endswith("#authentication-failed")
    assert shown.resolution_url in shown.suggested_user_message
    listed = await rig.stub.ListVehicles(
        pb.ListVehiclesRequest(status=pb.NEEDS_REAUTHENTICATION, page_size=10)
    )
    assert [v.vehicle_id for v in listed.vehicles] == ["car-1"]

    lock = await refused(rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="l-1")))
    assert lock.code() is grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(lock)
    assert info.reason == "REAUTHENTICATION_REQUIRED"
    assert info.metadata["resolution_url"] == shown.resolution_url
    assert help_links(lock)[0] == shown.resolution_url
    rental = await refused(
        rig.stub.StartRental(pb.StartRentalRequest(vehicle_id="car-1", rental_id="r-1"))
    )
    assert error_info_of(rental).reason == "VEHICLE_NOT_RENTABLE"
    assert error_info_of(rental).metadata["resolution_url"] == shown.resolution_url

    scheduler = rig.running.gateway.scheduler
    await rig.advance(PROBE_INTERVAL_S)
    assert (await scheduler.tick()).probes == 1
    assert (await panel(rig, "car-1")).status == pb.NEEDS_REAUTHENTICATION
    await rig.sim("DELETE", "/sim/faults")  # the owner re-authenticated
    await rig.advance(PROBE_INTERVAL_S)
    assert (await scheduler.tick()).probes == 1
    resumed = await panel(rig, "car-1")
    assert (resumed.status, resumed.resolution_url) == (pb.ACTIVE, "")
    locked = await rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="l-2"))
    assert locked.state == pb.SUCCEEDED


async def test_v3_an_account_error_disconnect_while_waiting_and_revocation(v3_rig: Rig) -> None:
    """V3: an account error with nothing held is FAILED_PRECONDITION naming Smartcar's error
    and linking its page; Disconnect of the waiting car deletes its connection and ends
    DISCONNECTED; another owner revoking access (Smartcar's 403, the connection no longer
    listed) ends DISCONNECTED with the reason."""
    rig = v3_rig
    waiting, _ = await connect_v3(rig, "car-1")
    revoked, _ = await connect_v3(rig, "car-2")
    fault = {
        "kind": "account",
        "code": "SUBSCRIPTION",
        "vehicle_id": waiting.smartcar_vehicle_id,
        "path": "v3/signals",
    }
    await rig.sim("POST", "/sim/faults", fault)
    issue = await refused(rig.stub.GetTelemetry(fresh_odometer("car-1")))
    assert issue.code() is grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(issue)
    assert (info.reason, info.metadata["smartcar_code"]) == ("OWNER_ACCOUNT_ISSUE", "SUBSCRIPTION")
    assert help_links(issue)[-1].endswith("#subscription")
    shown = await panel(rig, "car-1")
    assert (shown.status, shown.status_error_code) == (
        pb.NEEDS_REAUTHENTICATION,
        "CONNECTED_SERVICES_ACCOUNT:SUBSCRIPTION",
    )
    disconnected = await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
    assert (disconnected.status, disconnected.status_error_code) == (pb.DISCONNECTED, "")
    assert await connected_users(rig, waiting.smartcar_vehicle_id) == []

    await rig.sim("POST", f"/sim/vehicles/{revoked.smartcar_vehicle_id}/revoke", {})
    gone = await refused(rig.stub.GetTelemetry(fresh_odometer("car-2")))
    assert error_info_of(gone).reason == "CONNECTION_DISCONNECTED"
    shown = await panel(rig, "car-2")
    assert shown.status == pb.DISCONNECTED
    assert "revoked" in shown.status_reason
