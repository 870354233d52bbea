"""The request budget over a real server and the simulator: an interactive caller cannot
spend the reserve kept for commands, a read past it is answered from what is held (or
RESOURCE_EXHAUSTED with RetryInfo), a car's own allowance through SetRequestAllowance
(operators only, audited), and GetVehicle's figures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.core.budget import next_month_start
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
from tests.rpc.secure_rig import OPERATOR_TOKEN, POLICY, RENTAL_TOKEN

ALLOWANCE = 15
"""The issue's case: a car whose allowance a connect and two full reads used to spend."""
RESERVE = 7
"""10 % of 15 is 2, the floor 20, at most half the allowance: 7."""
CONNECT = 3
"""What Connect counts on v2: attributes, VIN, permissions."""
BETWEEN_READS_S = 60
"""Far enough apart for the gateway's and the simulator's per-car buckets to refill."""


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A gateway whose cars have 15 billed requests a month, against a simulator whose plan
    says the same. The open part is released at once (no daily pacing): these tests are
    about the reserve's edge; pacing is tested in tests/unit/gateway/test_budget.py."""
    settings = gateway_settings(
        tmp_path, VG_MONTHLY_REQUEST_ALLOWANCE=str(ALLOWANCE), VG_REQUEST_PACING="off"
    )
    async with (
        simulator(monthly_request_limit=ALLOWANCE) as url,
        gateway_against(settings, url, ManualClock(START)) as running,
    ):
        yield running


def read(vehicle_id: str, *fields: pb.TelemetryField.ValueType) -> pb.GetTelemetryRequest:
    """A read of `fields` (all when none) that must come from Smartcar: max_age 0."""
    return pb.GetTelemetryRequest(
        vehicle_id=vehicle_id, fields=list(fields), max_age=duration_pb2.Duration(seconds=0)
    )


def retry_delay_s(error: grpc.aio.AioRpcError) -> int:
    """The RetryInfo delay of a failed call, in whole seconds."""
    for packed in status_of(error).details:
        if packed.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            return int(error_details_pb2.RetryInfo.FromString(packed.value).retry_delay.seconds)
    raise AssertionError("the error carries no RetryInfo")


async def billed(rig: Rig, smartcar_id: str) -> int:
    """What the simulator billed the car this month."""
    return int((await rig.stats())["billed_this_month"].get(smartcar_id, 0))


async def test_a_caller_polling_fresh_reads_cannot_spend_the_reserve_and_lock_still_works(
    rig: Rig,
) -> None:
    """Odometer reads with max_age 0 reach Smartcar until the month's count is 8 of 15; then
    they get the last value with its age (REQUEST_BUDGET_RESERVED) and Smartcar hears
    nothing more; Lock and Unlock still go through on the reserve."""
    vehicle = await rig.connect("car-1")
    answers = []
    for _ in range(10):
        await rig.advance(BETWEEN_READS_S)
        answers.append(await rig.stub.GetTelemetry(read("car-1", pb.ODOMETER)))
    reads_allowed = ALLOWANCE - RESERVE - CONNECT
    assert [a.from_cache for a in answers] == [False] * reads_allowed + [True] * (
        10 - reads_allowed
    )
    last_fresh, served = answers[reads_allowed - 1].readings[0], answers[-1].readings[0]
    assert served.availability == pb.UNAVAILABLE
    assert served.reason == "REQUEST_BUDGET_RESERVED"
    assert served.odometer == last_fresh.odometer
    assert served.fetched_at == last_fresh.fetched_at
    before = await billed(rig, vehicle.smartcar_vehicle_id)

    locked = await rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="l-1"))
    unlocked = await rig.stub.Unlock(pb.UnlockRequest(vehicle_id="car-1", request_id="u-1"))
    assert (locked.state, unlocked.state) == (pb.SUCCEEDED, pb.SUCCEEDED)
    assert await billed(rig, vehicle.smartcar_vehicle_id) == before + 2
    panel = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    assert (panel.requests_this_month, panel.monthly_request_allowance) == (10, ALLOWANCE)
    assert (panel.request_reserve, panel.request_allowance_overridden) == (RESERVE, False)


async def test_past_the_reserve_nothing_held_is_resource_exhausted_until_next_month(
    rig: Rig,
) -> None:
    """A full read right after Connect would take the month to 10 of the 8 reads may use:
    RESOURCE_EXHAUSTED, ErrorInfo REQUEST_BUDGET_RESERVED with the figures, RetryInfo until
    the first of next month (UTC); nothing reached Smartcar. Once the odometer is held, the
    same full read answers it with its age and the rest without values."""
    await rig.connect("car-1")
    stats = await rig.stats()
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.GetTelemetry(read("car-1"))
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_info_of(refused.value)
    assert (info.domain, info.reason) == ("vehiclegateway", "REQUEST_BUDGET_RESERVED")
    assert info.metadata["limit"] == "request_budget"
    assert info.metadata["requests_this_month"] == str(CONNECT)
    assert info.metadata["monthly_request_allowance"] == str(ALLOWANCE)
    assert info.metadata["request_reserve"] == str(RESERVE)
    assert retry_delay_s(refused.value) == int((next_month_start(START) - START).total_seconds())
    assert (await rig.stats())["requests"] == stats["requests"]

    await rig.stub.GetTelemetry(read("car-1", pb.ODOMETER))
    await rig.advance(BETWEEN_READS_S)
    answer = await rig.stub.GetTelemetry(read("car-1"))
    assert answer.from_cache
    by_field = {r.field: r for r in answer.readings}
    assert by_field[pb.ODOMETER].odometer.distance_km > 0
    assert by_field[pb.ODOMETER].HasField("fetched_at")
    assert {r.reason for r in answer.readings if r.availability == pb.UNAVAILABLE} == {
        "REQUEST_BUDGET_RESERVED"
    }


async def test_set_request_allowance_gives_a_car_its_own_and_0_gives_the_fleets_back(
    rig: Rig,
) -> None:
    """A car given 100 a month reads again where the fleet's 15 stopped it; GetVehicle and
    ListVehicles show the figures; 0 goes back to the fleet's; bad values are refused."""
    await rig.connect("car-1")
    await rig.sim("POST", "/sim/config", {"monthly_request_limit": 100})
    with pytest.raises(grpc.aio.AioRpcError):
        await rig.stub.GetTelemetry(read("car-1"))
    own = await rig.stub.SetRequestAllowance(
        pb.SetRequestAllowanceRequest(vehicle_id="car-1", monthly_allowance=100)
    )
    assert (own.monthly_request_allowance, own.request_reserve) == (100, 20)
    assert own.request_allowance_overridden
    assert own.request_budget_resets_at.ToDatetime().date() == next_month_start(START).date()
    answer = await rig.stub.GetTelemetry(read("car-1"))
    assert not answer.from_cache
    listed = await rig.stub.ListVehicles(pb.ListVehiclesRequest())
    # One billed request per v2 batch path: every field is one path, CHARGE two (/charge and
    # /charge/limit); UNSPECIFIED is no field.
    paths = len(pb.TelemetryField.keys()) - 1 + 1
    assert listed.vehicles[0].requests_this_month == CONNECT + paths
    assert listed.vehicles[0].monthly_request_allowance == 100

    fleet = await rig.stub.SetRequestAllowance(
        pb.SetRequestAllowanceRequest(vehicle_id="car-1", monthly_allowance=0)
    )
    assert (fleet.monthly_request_allowance, fleet.request_allowance_overridden) == (
        ALLOWANCE,
        False,
    )
    for bad in (-1, 1_000_001):
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await rig.stub.SetRequestAllowance(
                pb.SetRequestAllowanceRequest(vehicle_id="car-1", monthly_allowance=bad)
            )
        assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await rig.stub.SetRequestAllowance(
            pb.SetRequestAllowanceRequest(vehicle_id="ghost", monthly_allowance=10)
        )
    assert unknown.value.code() is grpc.StatusCode.NOT_FOUND


async def test_only_operators_may_set_an_allowance_and_every_change_is_audited(
    tmp_path: Path,
) -> None:
    """With the access policy, the rental service is refused SetRequestAllowance before any
    work; the operator may; the operator's calls are in the audit trail, the refusal not."""
    (tmp_path / "policy.toml").write_text(POLICY)
    settings = gateway_settings(tmp_path, VG_ACCESS_POLICY=str(tmp_path / "policy.toml"))
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{rig.running.port}")
        async with channel:
            stub = pb_grpc.VehicleGatewayStub(channel)
            rental = (("authorization", f"Bearer {RENTAL_TOKEN}"),)
            operator = (("authorization", f"Bearer {OPERATOR_TOKEN}"),)
            await stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"), metadata=rental)
            change = pb.SetRequestAllowanceRequest(vehicle_id="car-1", monthly_allowance=900)
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.SetRequestAllowance(change, metadata=rental)
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
            shown = await stub.SetRequestAllowance(change, metadata=operator)
            assert shown.monthly_request_allowance == 900
            back = pb.SetRequestAllowanceRequest(vehicle_id="car-1")
            await stub.SetRequestAllowance(back, metadata=operator)
        trail = await rig.running.gateway.audit.find(AuditQuery(vehicle_id="car-1"))
    assert [(e.caller, e.method, e.outcome) for e in trail] == [
        ("fleet-operator", "SetRequestAllowance", "OK"),
        ("fleet-operator", "SetRequestAllowance", "OK"),
    ]
