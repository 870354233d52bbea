"""Rentals over a real server and the simulator: who may rent, the readings a rental takes
and its final reading after the end, GetRental and ListRentals, and who may read them."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
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
from tests.rpc.secure_rig import secured
from tests.rpc.test_v3 import connect_v3


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A gateway on Smartcar API V3 (the default for new connections) over a simulator."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v3")
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as running:
        yield running


def start(vehicle_id: str, rental_id: str) -> pb.StartRentalRequest:
    """A StartRental request."""
    return pb.StartRentalRequest(vehicle_id=vehicle_id, rental_id=rental_id)


def end(vehicle_id: str, rental_id: str) -> pb.EndRentalRequest:
    """An EndRental request."""
    return pb.EndRentalRequest(vehicle_id=vehicle_id, rental_id=rental_id)


def preconditions(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (type, subject) of each PreconditionFailure violation a failed call carries."""
    for packed in status_of(error).details:
        if packed.Is(error_details_pb2.PreconditionFailure.DESCRIPTOR):
            failure = error_details_pb2.PreconditionFailure.FromString(packed.value)
            return [(v.type, v.subject) for v in failure.violations]
    raise AssertionError("the error carries no PreconditionFailure")


@pytest.mark.parametrize("api", ["v3", "v2"])
async def test_a_car_asleep_at_the_end_gets_its_final_reading_later(
    tmp_path: Path, api: str
) -> None:
    """The car falls asleep before EndRental: the answer keeps its last values, recorded
    before the end, and says the final reading is pending; the background job leaves the
    sleeping car alone, and once it is awake and has reported, GetRental shows a reading
    recorded after the end (source LIVE) and nothing pending. On API V3 (Smartcar's stored
    view: a sleeping car's last report) and on v2 (409 ASLEEP) alike."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API=api)
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        await asleep_at_the_end(rig, api)


async def asleep_at_the_end(rig: Rig, api: str) -> None:
    """The steps of the test above, on a gateway whose new connections use `api`."""
    vehicle = (await connect_v3(rig, "car-1"))[0] if api == "v3" else await rig.connect("car-1")
    endpoint = "v3/signals" if api == "v3" else "batch"
    started = await rig.stub.StartRental(start("car-1", "r-1"))
    assert started.start_reading.odometer.source == pb.READING_SOURCE_LIVE
    assert started.start_reading.odometer.reading.odometer.distance_km > 0
    assert not started.HasField("end_reading")

    await rig.advance(3600)
    smartcar_id = vehicle.smartcar_vehicle_id
    await rig.sim("POST", f"/sim/vehicles/{smartcar_id}/sleep", {"asleep": True})
    await rig.advance(10)  # it reports nothing from here on
    ended = await rig.stub.EndRental(end("car-1", "r-1"))
    ended_at = ended.ended_at.ToDatetime()
    odometer = ended.end_reading.odometer
    assert odometer.reading.odometer.distance_km > 0  # the last value, kept
    assert odometer.reading.recorded_at.ToDatetime() < ended_at
    assert ended.final_reading_pending
    assert ended.final_reading_state == pb.FINAL_READING_PENDING
    assert ended.HasField("distance_km")

    await rig.advance(120)
    reads = (await rig.stats())["requests"]["by_endpoint"].get(endpoint, 0)
    await rig.running.gateway.final_readings.run_once()
    assert (await rig.stats())["requests"]["by_endpoint"].get(endpoint, 0) == reads
    assert (await rig.stub.GetRental(pb.GetRentalRequest(rental_id="r-1"))).final_reading_pending

    await rig.sim("POST", f"/sim/vehicles/{smartcar_id}/sleep", {"asleep": False})
    await rig.advance(2 * 3600)  # past its next report, its sleep backoff and the next try
    await rig.running.gateway.final_readings.run_once()
    rental = await rig.stub.GetRental(pb.GetRentalRequest(rental_id="r-1"))
    assert not rental.final_reading_pending
    assert rental.final_reading_state == pb.FINAL_READING_RECORDED
    final = rental.end_reading.odometer
    assert final.source == pb.READING_SOURCE_LIVE
    assert final.reading.recorded_at.ToDatetime() >= ended_at
    assert rental.distance_km == pytest.approx(
        final.reading.odometer.distance_km
        - started.start_reading.odometer.reading.odometer.distance_km
    )
    assert rental.final_reading_settled_at.ToDatetime() > ended_at


async def test_end_rental_answers_at_once_while_the_car_does_not(tmp_path: Path) -> None:
    """With no wait, EndRental answers before Smartcar does, pending; the reading it sent
    is stored when the answer comes, whatever became of the call."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v3", VG_RENTAL_READING_WAIT_S="0")
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        vehicle, _ = await connect_v3(rig, "car-1")
        await rig.stub.StartRental(start("car-1", "r-1"))
        await rig.running.gateway.rentals.settle()
        await rig.advance(600)
        fault = {"kind": "hold", "vehicle_id": vehicle.smartcar_vehicle_id, "count": 1}
        await rig.sim("POST", "/sim/faults", {**fault, "path": "v3/signals"})
        ended = await rig.stub.EndRental(end("car-1", "r-1"))
        assert ended.final_reading_pending
        assert not ended.end_reading.HasField("odometer")
        await rig.sim("GET", "/sim/holds?total=1")  # the reading reached Smartcar
        await rig.sim("POST", "/sim/holds/release")
        await rig.running.gateway.rentals.settle()
        rental = await rig.stub.GetRental(pb.GetRentalRequest(rental_id="r-1"))
        assert rental.end_reading.odometer.source == pb.READING_SOURCE_LIVE
        assert rental.end_reading.odometer.taken_at == ended.ended_at  # the clock stood still


async def test_a_car_without_control_security_cannot_be_rented(tmp_path: Path) -> None:
    """StartRental of a car whose owner withheld control_security (possible when the fleet
    does not mark it required at Connect): FAILED_PRECONDITION, reason VEHICLE_NOT_RENTABLE,
    a PreconditionFailure naming the permission; nothing held."""
    settings = gateway_settings(
        tmp_path, VG_SMARTCAR_API="v3", VG_REQUIRED_PERMISSIONS="read_vehicle_info,read_vin"
    )
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        await _refused_without_control_security(rig)


async def _refused_without_control_security(rig: Rig) -> None:
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    redirect = await rig.http.get(issued.url + "&sim_withhold=control_security")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    await rig.stub.Connect(
        pb.ConnectRequest(vehicle_id="car-1", user_id=query["user_id"][0], state=issued.state)
    )
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.StartRental(start("car-1", "r-1"))
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert preconditions(refused.value) == [("PERMISSION", "permissions/control_security")]
    info = error_info_of(refused.value)
    assert info.reason == "VEHICLE_NOT_RENTABLE"
    assert info.metadata["missing_permissions"] == "control_security"
    assert "control_security" in (refused.value.details() or "")
    panel = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    assert not panel.HasField("active_rental")


async def test_a_car_that_is_not_active_cannot_be_rented(rig: Rig) -> None:
    """A disconnected car, and a car never connected: FAILED_PRECONDITION naming the
    connection's status."""
    await connect_v3(rig, "car-1")
    await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
    await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-2"))
    for vehicle_id, status in (("car-1", "DISCONNECTED"), ("car-2", "NOT_CONNECTED")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await rig.stub.StartRental(start(vehicle_id, f"r-{vehicle_id}"))
        assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
        assert preconditions(refused.value) == [("CONNECTION_STATUS", f"vehicles/{vehicle_id}")]
        assert error_info_of(refused.value).metadata["status"] == status


async def test_get_and_list_rentals_page_and_filter(rig: Rig) -> None:
    """ListRentals pages oldest start first with signed tokens, filters by vehicle and by
    end time ([ended_after, ended_before)); GetRental of an unknown id is NOT_FOUND; bad
    filters and a token used with other filters are INVALID_ARGUMENT."""
    await connect_v3(rig, "car-1")
    await connect_v3(rig, "car-2")
    ends: dict[str, Timestamp] = {}
    for n in range(5):
        vehicle_id = f"car-{1 + n % 2}"
        await rig.stub.StartRental(start(vehicle_id, f"r-{n}"))
        await rig.advance(60)
        if n < 4:
            ends[f"r-{n}"] = (await rig.stub.EndRental(end(vehicle_id, f"r-{n}"))).ended_at
        await rig.advance(60)

    pages, token = [], ""
    while True:
        page = await rig.stub.ListRentals(pb.ListRentalsRequest(page_size=2, page_token=token))
        pages.append([r.rental_id for r in page.rentals])
        token = page.next_page_token
        if not token:
            break
    assert pages == [["r-0", "r-1"], ["r-2", "r-3"], ["r-4"]]

    car_2 = await rig.stub.ListRentals(pb.ListRentalsRequest(vehicle_id="car-2"))
    assert [r.rental_id for r in car_2.rentals] == ["r-1", "r-3"]
    window = await rig.stub.ListRentals(
        pb.ListRentalsRequest(ended_after=ends["r-1"], ended_before=ends["r-3"])
    )
    assert [r.rental_id for r in window.rentals] == ["r-1", "r-2"]
    assert all(r.HasField("end_reading") for r in window.rentals)
    one = await rig.stub.GetRental(pb.GetRentalRequest(rental_id="r-2"))
    assert one == window.rentals[1]

    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await rig.stub.GetRental(pb.GetRentalRequest(rental_id="r-404"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND
    assert error_info_of(missing.value).reason == "RENTAL_NOT_FOUND"
    first = await rig.stub.ListRentals(pb.ListRentalsRequest(vehicle_id="car-1", page_size=1))
    for bad in (
        pb.ListRentalsRequest(vehicle_id="car-2", page_token=first.next_page_token),
        pb.ListRentalsRequest(ended_after=ends["r-3"], ended_before=ends["r-1"]),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await rig.stub.ListRentals(bad)
        assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT


async def test_billing_reads_rentals_within_its_fields_and_others_as_the_policy_says(
    tmp_path: Path,
) -> None:
    """The billing role may call GetRental and ListRentals and sees only what it may read
    (the odometer and the distance, not fuel or location); it may not start a rental; the
    rental role sees everything; a caller without the methods is PERMISSION_DENIED."""
    async with secured(tmp_path, mtls=True) as gateway:
        rental_channel = gateway.channel(gateway.ca.client("rental.fleet.internal"))
        billing_channel = gateway.channel(gateway.ca.client("billing.fleet.internal"))
        engineer_channel = gateway.channel(gateway.ca.client("engineer.fleet.internal"))
        async with rental_channel, billing_channel, engineer_channel:
            as_rental = pb_grpc.VehicleGatewayStub(rental_channel)
            as_billing = pb_grpc.VehicleGatewayStub(billing_channel)
            as_engineer = pb_grpc.VehicleGatewayStub(engineer_channel)
            await connect_v2(as_rental, "car-1")
            await as_rental.StartRental(start("car-1", "r-1"))
            await as_rental.EndRental(end("car-1", "r-1"))

            full = await as_rental.GetRental(pb.GetRentalRequest(rental_id="r-1"))
            assert full.end_reading.HasField("fuel") or full.end_reading.HasField("battery")
            assert full.end_reading.HasField("location")
            seen = await as_billing.GetRental(pb.GetRentalRequest(rental_id="r-1"))
            for reading in (seen.start_reading, seen.end_reading):
                assert [f.name for f, _ in reading.ListFields()] == ["odometer"]
            assert seen.HasField("distance_km")
            assert not seen.HasField("fuel_percent_change")
            listed = await as_billing.ListRentals(pb.ListRentalsRequest(vehicle_id="car-1"))
            assert list(listed.rentals) == [seen]

            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await as_billing.StartRental(start("car-1", "r-2"))
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await as_engineer.GetRental(pb.GetRentalRequest(rental_id="r-1"))
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def connect_v2(stub: pb_grpc.VehicleGatewayStub, vehicle_id: str) -> None:
    """GetConnectUrl → the simulator's Connect → Connect with the redirect's code."""
    issued = await stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=vehicle_id))
    async with httpx.AsyncClient(timeout=10) as http:
        redirect = await http.get(issued.url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    await stub.Connect(
        pb.ConnectRequest(vehicle_id=vehicle_id, code=query["code"][0], state=issued.state)
    )
