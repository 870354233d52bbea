"""Read spacing over a real server and the simulator (API V3): a dashboard reading one car
every minute with max_age 5 min gets a fresh value at each even release of the car's share
and, between them, the value held with its true age (REQUEST_BUDGET_RESERVED); a rental's
reading is not spaced; with nothing held the refusal itself comes back, naming the limit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import grpc.aio
import pytest
from google.protobuf import duration_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.read_spacing import ReadSpacing
from gateway.edge.clock import ManualClock
from tests.rpc.rig import Rig, error_info_of, gateway_against, gateway_settings, simulator

MONTH_START = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
"""Both clocks start at the first instant of a 30-day month: nothing released yet."""
OPEN_PART = 450
"""The fleet default: 500 a month, less the 10 % reserve."""


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A V3 gateway with the default budget, paced and spaced, at the month's start."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v3")
    async with (
        simulator(start_at_s=MONTH_START.timestamp()) as url,
        gateway_against(settings, url, ManualClock(MONTH_START)) as running,
    ):
        yield running


def dashboard_read(vehicle_id: str, minutes: int = 5) -> pb.GetTelemetryRequest:
    """The odometer, at most `minutes` old."""
    return pb.GetTelemetryRequest(
        vehicle_id=vehicle_id,
        fields=[pb.ODOMETER],
        max_age=duration_pb2.Duration(seconds=minutes * 60),
    )


async def month_count(rig: Rig, vehicle_id: str) -> int:
    """The car's billed requests this month, as the gateway counts them."""
    panel = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id=vehicle_id))
    return panel.requests_this_month


async def read_every_minute(rig: Rig, minutes: int) -> list[pb.Telemetry]:
    """The dashboard: one read a minute for `minutes` minutes."""
    answers = []
    for _ in range(minutes):
        await rig.advance(60)
        answers.append(await rig.stub.GetTelemetry(dashboard_read("car-1")))
    return answers


async def test_a_dashboard_gets_a_fresh_value_at_each_release_and_the_held_one_between(
    rig: Rig,
) -> None:
    """Over three hours of reads a minute apart, Smartcar is asked exactly as often as the
    even release allows (the burst, then one about every 96 minutes); every other answer
    is the last value with the fetch time it really has, marked REQUEST_BUDGET_RESERVED."""
    await rig.connect("car-1")
    before = await month_count(rig, "car-1")
    answers = await read_every_minute(rig, 180)
    fetched = [a for a in answers if not a.from_cache]
    end = MONTH_START + timedelta(minutes=180)
    assert before + len(fetched) == ReadSpacing().cap(OPEN_PART, end)
    assert await month_count(rig, "car-1") == before + len(fetched)
    last_fetch = None
    for answer in answers:
        (reading,) = answer.readings
        if not answer.from_cache:
            last_fetch = reading
            assert reading.availability == pb.AVAILABLE
        elif reading.availability == pb.UNAVAILABLE:
            assert last_fetch is not None
            assert reading.reason == "REQUEST_BUDGET_RESERVED"
            assert reading.fetched_at == last_fetch.fetched_at
            assert reading.odometer == last_fetch.odometer
    fetch_minutes = [i + 1 for i, a in enumerate(answers) if not a.from_cache]
    first_release = 30 * 24 * 60 / OPEN_PART  # 96 minutes into the month
    assert fetch_minutes[-1] >= first_release > fetch_minutes[-2] + 60


async def test_without_spacing_the_days_share_goes_in_the_first_reads(tmp_path: Path) -> None:
    """VG_READ_SPACING=off: the same dashboard is fetched every 5 minutes until the day's
    share (15 of 450 on the 1st) is spent, then held for the rest of the day."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v3", VG_READ_SPACING="off")
    async with (
        simulator(start_at_s=MONTH_START.timestamp()) as url,
        gateway_against(settings, url, ManualClock(MONTH_START)) as rig,
    ):
        await rig.connect("car-1")
        before = await month_count(rig, "car-1")
        answers = await read_every_minute(rig, 120)
        assert before + sum(1 for a in answers if not a.from_cache) == OPEN_PART // 30
        assert answers[-1].readings[0].reason == "REQUEST_BUDGET_RESERVED"


async def test_a_rentals_reading_is_not_spaced(rig: Rig) -> None:
    """Once the dashboard holds the car, StartRental's reading still reaches Smartcar."""
    await rig.connect("car-1")
    answers = await read_every_minute(rig, 30)
    assert answers[-1].readings[0].reason == "REQUEST_BUDGET_RESERVED"
    before = await month_count(rig, "car-1")
    await rig.stub.StartRental(pb.StartRentalRequest(vehicle_id="car-1", rental_id="r-1"))
    assert await month_count(rig, "car-1") > before


async def test_with_nothing_held_the_spacing_refusal_is_resource_exhausted(rig: Rig) -> None:
    """A field never read, asked while the car is spaced: RESOURCE_EXHAUSTED with ErrorInfo
    REQUEST_BUDGET_RESERVED, limit read_spacing, and the release instant; Smartcar hears
    nothing."""
    await rig.connect("car-1")
    await read_every_minute(rig, 30)
    requests = (await rig.stats())["requests"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.GetTelemetry(
            pb.GetTelemetryRequest(
                vehicle_id="car-1", fields=[pb.LOCATION], max_age=duration_pb2.Duration()
            )
        )
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    info = error_info_of(refused.value)
    assert (info.reason, info.metadata["limit"]) == ("REQUEST_BUDGET_RESERVED", "read_spacing")
    release = datetime.fromisoformat(info.metadata["resets_at"])
    assert MONTH_START + timedelta(minutes=30) < release < MONTH_START + timedelta(hours=2)
    assert (await rig.stats())["requests"] == requests
