"""GetTelemetry's `held_when_rate_limited` over a real server and the simulator: a read a
rate limit refuses is answered from what is held, marked RATE_LIMITED with its true ages;
without the flag, or with nothing held, RESOURCE_EXHAUSTED as before."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.edge.clock import ManualClock
from tests.instants import START
from tests.rpc.rig import Rig, error_info_of, gateway_against, gateway_settings, simulator


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A V3 gateway whose per-car read bucket holds one read an hour."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v3", VG_VEHICLE_READS="1/3600")
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as running:
        yield running


def fresh(*fields: pb.TelemetryField.ValueType, held: bool) -> pb.GetTelemetryRequest:
    """A read of `fields` that must come from Smartcar (max_age 0)."""
    return pb.GetTelemetryRequest(
        vehicle_id="car-1",
        fields=list(fields),
        max_age=duration_pb2.Duration(seconds=0),
        held_when_rate_limited=held,
    )


async def test_a_refused_read_is_answered_from_what_is_held_when_asked_to(rig: Rig) -> None:
    """The bucket's one read fetches the odometer; a minute later a fresh read of it is
    refused by the bucket: with the flag the held value comes back UNAVAILABLE, reason
    RATE_LIMITED, its fetch time the first read's; Smartcar hears nothing more."""
    await rig.connect("car-1")
    first = await rig.stub.GetTelemetry(fresh(pb.ODOMETER, held=True))
    assert not first.from_cache
    await rig.advance(60)
    requests = (await rig.stats())["requests"]
    answer = await rig.stub.GetTelemetry(fresh(pb.ODOMETER, held=True))
    (reading,) = answer.readings
    assert answer.from_cache
    assert (reading.availability, reading.reason) == (pb.UNAVAILABLE, "RATE_LIMITED")
    assert reading.fetched_at == first.readings[0].fetched_at
    assert reading.odometer == first.readings[0].odometer
    assert (await rig.stats())["requests"] == requests


async def test_without_the_flag_or_with_nothing_held_the_refusal_comes_back(rig: Rig) -> None:
    """The same refused read without the flag is RESOURCE_EXHAUSTED (limit vehicle_reads);
    with the flag but none of the fields held, too."""
    await rig.connect("car-1")
    await rig.stub.GetTelemetry(fresh(pb.ODOMETER, held=True))
    await rig.advance(60)
    for request in (fresh(pb.ODOMETER, held=False), fresh(pb.LOCATION, held=True)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rig.stub.GetTelemetry(request)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        info = error_info_of(refused.value)
        assert (info.reason, info.metadata["limit"]) == ("RATE_LIMITED", "vehicle_reads")
