"""The gateway end to end: real gRPC server on port 0, real SQLite, the simulator over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import urllib.parse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import grpc
import grpc.aio
import httpx
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2

from clients.simulator import SimulatorConfig
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.edge.clock import ManualClock
from storage.crypto import TokenCipher, load_keyring
from storage.database import create_engine
from storage.uow import unit_of_work_factory
from tests.instants import START
from tests.rpc.rig import (
    Rig,
    error_info_of,
    gateway_against,
    gateway_settings,
    simulator,
    status_of,
)


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A gateway on a fresh database, pointed at a fresh simulator."""
    async with (
        simulator() as url,
        gateway_against(gateway_settings(tmp_path), url, ManualClock(START)) as running,
    ):
        yield running


def detail(status: object, kind: type) -> object:
    """Return the first rich-status detail of a type, or fail."""
    for packed in status.details:  # type: ignore[attr-defined]
        message = kind()
        if packed.Unpack(message):
            return message
    raise AssertionError(f"no {kind.__name__} in the status details")


async def test_the_whole_rental_flow(rig: Rig) -> None:
    """Connect, read, lock, unlock, rent, refuse Disconnect, end the rental, disconnect."""
    vehicle = await rig.connect("car-1")
    assert vehicle.status == pb.ACTIVE
    assert len(vehicle.vin) == 17
    assert not vehicle.missing_permissions

    telemetry = await rig.telemetry("car-1", max_age_s=0)
    assert not telemetry.from_cache
    by_field = {r.field: r for r in telemetry.readings}
    assert by_field[pb.ODOMETER].availability == pb.AVAILABLE
    assert by_field[pb.ODOMETER].odometer.distance_km > 0
    assert by_field[pb.ODOMETER].HasField("recorded_at")

    locked = await rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="lock-1"))
    assert locked.state == pb.SUCCEEDED
    unlocked = await rig.stub.Unlock(pb.UnlockRequest(vehicle_id="car-1", request_id="unlock-1"))
    assert unlocked.state == pb.SUCCEEDED

    rental = await rig.stub.StartRental(pb.StartRentalRequest(vehicle_id="car-1", rental_id="r-1"))
    assert rental.rental_id == "r-1"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    failure = detail(status_of(refused.value), error_details_pb2.PreconditionFailure)
    assert failure.violations[0].subject == "rentals/r-1"  # type: ignore[attr-defined]

    await rig.stub.EndRental(pb.EndRentalRequest(vehicle_id="car-1", rental_id="r-1"))
    disconnected = await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
    assert disconnected.status == pb.DISCONNECTED
    assert disconnected.vin == vehicle.vin
    assert disconnected.last_command.action == pb.UNLOCK
    stats = await rig.stats()
    assert stats["requests"]["by_endpoint"]["application"] == 1


async def test_200_concurrent_reads_on_an_expired_token_make_one_refresh_and_one_batch(
    rig: Rig,
) -> None:
    """At access-token expiry, 200 concurrent GetTelemetry cost one refresh grant, one batch."""
    await rig.connect("car-1")
    await rig.advance(2 * 3600 + 1)
    before = await rig.stats()
    answers = await asyncio.gather(*(rig.telemetry("car-1", max_age_s=0) for _ in range(200)))
    after = await rig.stats()
    assert len(answers) == 200
    assert all(a.readings for a in answers)
    grants = after["token_grants"]["refresh_token"] - before["token_grants"]["refresh_token"]
    batches = after["requests"]["by_endpoint"].get("batch", 0) - before["requests"][
        "by_endpoint"
    ].get("batch", 0)
    assert (grants, batches) == (1, 1)


async def test_two_vehicles_of_one_owner_share_one_refresh(rig: Rig) -> None:
    """An owner's two cars on one token pair, read concurrently at expiry: one refresh."""
    await rig.connect("car-a", user="owner-1")
    await rig.connect("car-b", user="owner-1", sim_vehicles="2")
    await rig.advance(2 * 3600 + 1)
    before = await rig.stats()
    await asyncio.gather(rig.telemetry("car-a", max_age_s=0), rig.telemetry("car-b", max_age_s=0))
    after = await rig.stats()
    assert after["token_grants"]["refresh_token"] - before["token_grants"]["refresh_token"] == 1
    assert after["refresh_token_reuses"] == 0


async def test_a_smartcar_429_holds_the_vehicle_until_retry_after(rig: Rig) -> None:
    """Smartcar's 429 → RESOURCE_EXHAUSTED with RetryInfo, and no upstream call until it passes."""
    vehicle = await rig.connect("car-1")
    smartcar_id = vehicle.smartcar_vehicle_id
    fault = {"kind": "rate_limit", "vehicle_id": smartcar_id, "count": 1, "retry_after_s": 30}
    await rig.sim("POST", "/sim/faults", fault)
    with pytest.raises(grpc.aio.AioRpcError) as limited:
        await rig.telemetry("car-1", max_age_s=0)
    assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    retry = detail(status_of(limited.value), error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds == 30  # type: ignore[attr-defined]
    calls = (await rig.stats())["requests"]["by_vehicle"][smartcar_id]

    await rig.advance(29)
    for _ in range(5):
        with pytest.raises(grpc.aio.AioRpcError) as held:
            await rig.telemetry("car-1", max_age_s=0)
        assert held.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert (await rig.stats())["requests"]["by_vehicle"][smartcar_id] == calls

    await rig.advance(1)
    await rig.telemetry("car-1", max_age_s=0)
    assert (await rig.stats())["requests"]["by_vehicle"][smartcar_id] == calls + 1


async def test_a_repeated_unlock_request_id_sends_one_command(rig: Rig) -> None:
    """Three Unlocks with one request_id: one upstream command; the retries are replays."""
    await rig.connect("car-1")
    request = pb.UnlockRequest(vehicle_id="car-1", request_id="unlock-once")
    results = [await rig.stub.Unlock(request) for _ in range(3)]
    assert [r.replayed for r in results] == [False, True, True]
    assert (await rig.stats())["commands"]["UNLOCK"] == 1


@asynccontextmanager
async def rig_on_sim_time(tmp_path: Path, **environment: str) -> AsyncIterator[Rig]:
    """A gateway over a fresh simulator, its ManualClock starting at the simulator's now (so
    what the car records and what the gateway stamps are comparable)."""
    async with simulator() as url:
        async with httpx.AsyncClient(timeout=10) as http:
            now = (await http.get(url + "/sim/clock")).json()["now"]
        clock = ManualClock(datetime.fromisoformat(now))
        async with gateway_against(gateway_settings(tmp_path, **environment), url, clock) as rig:
            yield rig


async def test_a_command_that_times_out_after_sending_may_have_succeeded(tmp_path: Path) -> None:
    """A Lock whose answer never comes: UNAVAILABLE with may_have_succeeded=true. Smartcar
    holds the answer until the test releases it and the caller sets no deadline, so the
    gateway's command timeout is the only way the call ends: nothing races it."""
    async with rig_on_sim_time(tmp_path, VG_COMMAND_TIMEOUT_S="1") as rig:
        vehicle = await rig.connect("car-1")
        fault = {"kind": "hold", "vehicle_id": vehicle.smartcar_vehicle_id, "path": "security"}
        await rig.sim("POST", "/sim/faults", {**fault, "count": 1})
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="l-1"))
        assert unknown.value.code() is grpc.StatusCode.UNAVAILABLE
        info = detail(status_of(unknown.value), error_details_pb2.ErrorInfo)
        assert info.metadata["may_have_succeeded"] == "true"  # type: ignore[attr-defined]
        assert (await rig.sim("GET", "/sim/holds"))["total"] == 1  # it did reach Smartcar
        await rig.sim("POST", "/sim/holds/release")


async def test_a_lock_cancelled_after_it_was_sent_settles_from_the_cars_lock_state(
    tmp_path: Path,
) -> None:
    """The caller cancels while Smartcar holds the Lock: a retry hears may_have_succeeded at
    once (not "still running"); once the reconciler has read the car locked, the retry gets
    SUCCEEDED and the panel's last command is that Lock. One command reached the car."""
    async with rig_on_sim_time(tmp_path) as rig:
        vehicle = await rig.connect("car-1")
        smartcar_id = vehicle.smartcar_vehicle_id
        await rig.sim("POST", f"/sim/vehicles/{smartcar_id}/state", {"locked": False})
        fault = {"kind": "hold", "vehicle_id": smartcar_id, "path": "security", "count": 1}
        await rig.sim("POST", "/sim/faults", fault)
        request = pb.LockRequest(vehicle_id="car-1", request_id="l-1")
        call = rig.stub.Lock(request)
        await rig.sim("GET", "/sim/holds?total=1")  # the Lock is at Smartcar (and done there)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await rig.stub.Lock(request)
        assert unknown.value.code() is grpc.StatusCode.UNAVAILABLE
        info = detail(status_of(unknown.value), error_details_pb2.ErrorInfo)
        assert info.metadata["may_have_succeeded"] == "true"  # type: ignore[attr-defined]
        await rig.sim("POST", "/sim/holds/release")

        await rig.advance(90)
        assert (await rig.running.gateway.reconciler.run_once()).succeeded == 1
        replayed = await rig.stub.Lock(request)
        assert (replayed.state, replayed.replayed) == (pb.SUCCEEDED, True)
        panel = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
        assert (panel.last_command.request_id, panel.last_command.action) == ("l-1", pb.LOCK)
        assert (await rig.stats())["commands"]["LOCK"] == 1


async def test_an_oem_rate_limit_on_unlock_cools_the_car_down_and_may_not_have_succeeded(
    tmp_path: Path,
) -> None:
    """UPSTREAM:RATE_LIMIT on Unlock: RESOURCE_EXHAUSTED with RetryInfo and no
    may_have_succeeded; the next Unlock is refused in cooldown without asking Smartcar."""
    async with rig_on_sim_time(tmp_path) as rig:
        vehicle = await rig.connect("car-1")
        smartcar_id = vehicle.smartcar_vehicle_id
        fault = {"kind": "upstream", "code": "RATE_LIMIT", "vehicle_id": smartcar_id, "count": 1}
        await rig.sim("POST", "/sim/faults", {**fault, "path": "security"})
        with pytest.raises(grpc.aio.AioRpcError) as limited:
            await rig.stub.Unlock(pb.UnlockRequest(vehicle_id="car-1", request_id="u-1"))
        assert limited.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        info = detail(status_of(limited.value), error_details_pb2.ErrorInfo)
        assert "may_have_succeeded" not in info.metadata  # type: ignore[attr-defined]
        assert info.metadata["smartcar_code"] == "RATE_LIMIT"  # type: ignore[attr-defined]
        retry = detail(status_of(limited.value), error_details_pb2.RetryInfo)
        assert retry.retry_delay.seconds == 60  # type: ignore[attr-defined]
        calls = (await rig.stats())["requests"]["by_vehicle"][smartcar_id]

        with pytest.raises(grpc.aio.AioRpcError) as cooling:
            await rig.stub.Unlock(pb.UnlockRequest(vehicle_id="car-1", request_id="u-2"))
        assert cooling.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert (await rig.stats())["requests"]["by_vehicle"][smartcar_id] == calls


BAD_INPUTS = [
    ("GetConnectUrl", pb.GetConnectUrlRequest(vehicle_id=""), "vehicle_id"),
    ("GetConnectUrl", pb.GetConnectUrlRequest(vehicle_id="c", vin="SHORT"), "vin"),
    ("Connect", pb.ConnectRequest(vehicle_id="c", code="", state="s"), "code"),
    ("Connect", pb.ConnectRequest(vehicle_id="c", code="x", state=""), "state"),
    ("GetTelemetry", pb.GetTelemetryRequest(vehicle_id="c", fields=[0]), "fields[0]"),
    ("Lock", pb.LockRequest(vehicle_id="c", request_id="bad id"), "request_id"),
    ("Unlock", pb.UnlockRequest(vehicle_id="c/../d"), "vehicle_id"),
    ("Disconnect", pb.DisconnectRequest(vehicle_id="x" * 200), "vehicle_id"),
    ("StartRental", pb.StartRentalRequest(vehicle_id="c", rental_id=""), "rental_id"),
    ("EndRental", pb.EndRentalRequest(vehicle_id="", rental_id="r"), "vehicle_id"),
    ("GetVehicle", pb.GetVehicleRequest(vehicle_id=" "), "vehicle_id"),
    ("ListVehicles", pb.ListVehiclesRequest(page_size=501), "page_size"),
    ("ListVehicles", pb.ListVehiclesRequest(page_token="garbage"), "page_token"),
]


@pytest.mark.parametrize(("method", "request_", "field"), BAD_INPUTS)
async def test_bad_input_is_invalid_argument_naming_the_field(
    rig: Rig, method: str, request_: object, field: str
) -> None:
    """Each malformed request gets INVALID_ARGUMENT with a BadRequest naming the field."""
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await getattr(rig.stub, method)(request_)
    assert bad.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = detail(status_of(bad.value), error_details_pb2.BadRequest)
    assert field in [v.field for v in violations.field_violations]  # type: ignore[attr-defined]


async def test_unknown_vehicles_are_not_found(rig: Rig) -> None:
    """An id the gateway never saw is NOT_FOUND."""
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="ghost"))
    assert missing.value.code() is grpc.StatusCode.NOT_FOUND


async def test_a_restart_keeps_connections_rentals_and_tokens(tmp_path: Path) -> None:
    """After a restart on the same database the vehicle is ACTIVE, rented, and its tokens work."""
    settings = gateway_settings(tmp_path)
    clock = ManualClock(START)
    async with simulator() as url:
        async with gateway_against(settings, url, clock) as first:
            await first.connect("car-1")
            await first.stub.StartRental(pb.StartRentalRequest(vehicle_id="car-1", rental_id="r-1"))
        async with gateway_against(settings, url, clock) as second:
            vehicle = await second.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
            assert vehicle.status == pb.ACTIVE
            assert vehicle.active_rental.rental_id == "r-1"
            await second.advance(2 * 3600 + 1)
            telemetry = await second.telemetry("car-1", max_age_s=0)
            assert not telemetry.from_cache
            assert (await second.stats())["token_grants"]["refresh_token"] == 1


@pytest.mark.sqlite_only
async def test_the_database_never_holds_a_token_in_plaintext(tmp_path: Path) -> None:
    """The SQLite files contain neither the access nor the refresh token, only ciphertext."""
    settings = gateway_settings(tmp_path)
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        await rig.connect("car-1")
        await rig.telemetry("car-1", max_age_s=0)
    engine = create_engine(settings.resolved_database_url)
    cipher = TokenCipher(load_keyring(None, var_dir=settings.var_dir))
    async with unit_of_work_factory(engine, cipher)() as uow:
        vehicle = await uow.vehicles.get("car-1")
        assert vehicle is not None
        assert vehicle.grant_id is not None
        grant = await uow.grants.get(vehicle.grant_id)
    await engine.dispose()
    assert grant is not None
    raw = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("gateway.db*"))
    for token in (grant.tokens.access_token, grant.tokens.refresh_token):
        assert token.reveal().encode() not in raw
    assert len(raw) > 0


async def test_watch_vehicles_streams_status_changes_as_they_happen(rig: Rig) -> None:
    """A watcher sees car-1 turn ACTIVE and then DISCONNECTED, with reasons, in order."""
    stream = rig.stub.WatchVehicles(pb.WatchVehiclesRequest(vehicle_ids=["car-1"]))
    await rig.connect("car-1")
    await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
    first = await asyncio.wait_for(stream.read(), timeout=10)
    second = await asyncio.wait_for(stream.read(), timeout=10)
    stream.cancel()
    assert (first.from_status, first.to_status) == (pb.NOT_CONNECTED, pb.ACTIVE)
    assert (second.from_status, second.to_status) == (pb.ACTIVE, pb.DISCONNECTED)
    assert second.reason == "disconnected through the gateway"
    assert second.id > first.id


async def test_a_caller_over_its_watch_stream_cap_gets_resource_exhausted(
    tmp_path: Path,
) -> None:
    """With VG_WATCH_STREAMS_PER_CALLER=2, a caller's third open stream is refused with
    RESOURCE_EXHAUSTED naming the cap; once it closes one, it may open another."""
    settings = gateway_settings(tmp_path, VG_WATCH_STREAMS_PER_CALLER="2")
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        await rig.connect("car-1")
        history = pb.WatchVehiclesRequest(after_id=0)
        first, second = rig.stub.WatchVehicles(history), rig.stub.WatchVehicles(history)
        for stream in (first, second):  # each delivered a change: both are open
            assert (await asyncio.wait_for(stream.read(), timeout=10)).vehicle_id == "car-1"

        third = rig.stub.WatchVehicles(history)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await asyncio.wait_for(third.read(), timeout=10)
        assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "2 WatchVehicles streams" in (refused.value.details() or "")
        info = error_info_of(refused.value)
        assert info.reason == "TOO_MANY_STREAMS"
        assert info.metadata["max_streams"] == "2"

        first.cancel()
        deadline = time.monotonic() + 10
        while True:  # the server notices the hang-up on its own time: poll with a deadline
            again = rig.stub.WatchVehicles(history)
            try:
                change = await asyncio.wait_for(again.read(), timeout=10)
                break
            except grpc.aio.AioRpcError as error:
                codes = (error.code(), time.monotonic() < deadline)
            assert codes == (grpc.StatusCode.RESOURCE_EXHAUSTED, True), "no place was freed"
        assert change.vehicle_id == "car-1"
        again.cancel()
        second.cancel()


async def test_the_panel_shows_the_months_billed_requests(rig: Rig) -> None:
    """Connect (3) and a full read (9 paths: the charge is two) show as 12 billed requests
    of 500 this month."""
    vehicle = await rig.connect("car-1")
    await rig.telemetry("car-1", max_age_s=0)
    panel = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    assert (panel.requests_this_month, panel.monthly_request_allowance) == (12, 500)
    billed = (await rig.stats())["billed_this_month"]
    # The ledger counts Connect's /permissions read too; the simulator does not bill it.
    assert billed[vehicle.smartcar_vehicle_id] == 12 - 1


async def test_a_webhook_from_smartcar_updates_what_the_gateway_serves(tmp_path: Path) -> None:
    """With the receiver on, a VEHICLE_STATE delivered by the simulator reaches GetTelemetry."""
    settings = gateway_settings(
        tmp_path,
        VG_WEBHOOK_LISTEN="127.0.0.1:0",
        SMARTCAR_MANAGEMENT_TOKEN=SimulatorConfig().management_token or "",
    )
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        vehicle = await rig.connect("car-1")
        port = rig.running.webhook_port
        assert port is not None
        callback = f"http://127.0.0.1:{port}/webhooks/smartcar"
        hook = await rig.sim("POST", "/sim/webhooks", {"callback_url": callback})
        assert hook["verified"] is True
        # Read first: a read racing the delivery could poll a value newer than the event's,
        # and the newer value rightly wins.
        await rig.telemetry("car-1", max_age_s=86400)
        signals = {"odometer-traveleddistance": {"unit": "kilometers", "value": 4321.5}}
        event = {"vehicle_id": vehicle.smartcar_vehicle_id, "type": "VEHICLE_STATE"}
        await rig.sim(
            "POST", f"/sim/webhooks/{hook['webhookId']}/events", {**event, "signals": signals}
        )
        async with asyncio.timeout(10):
            while True:  # the receiver applies events after acknowledging them
                reading = (await rig.telemetry("car-1", max_age_s=86400)).readings
                odometer = next(r for r in reading if r.field == pb.ODOMETER)
                if odometer.odometer.distance_km == 4321.5:
                    break
                await asyncio.sleep(0.01)
        assert (await rig.stats())["webhooks"]["delivered"] >= 1


async def test_a_connection_shows_its_smartcar_api_and_owner(rig: Rig) -> None:
    """GetVehicle says which Smartcar API serves the car and whose it is: the user id the
    Connect redirect named; a vehicle never connected shows neither."""
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    redirect = await rig.http.get(issued.url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    connected = await rig.stub.Connect(
        pb.ConnectRequest(vehicle_id="car-1", code=query["code"][0], state=issued.state)
    )
    shown = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    for vehicle in (connected, shown):
        assert vehicle.smartcar_api == pb.SMARTCAR_API_V2
        assert vehicle.smartcar_user_id == query["user_id"][0]
    await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-2"))
    never = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-2"))
    assert (never.smartcar_api, never.smartcar_user_id) == (pb.SMARTCAR_API_UNSPECIFIED, "")


async def test_a_car_held_only_packed_is_answered_as_one_held_as_objects(
    tmp_path: Path,
) -> None:
    """With one car's readings held as objects, the other car's cached answers come from its
    packed, encoded readings (the encoder the gateway wires in), over the wire equal to what
    the same reading answered when the car was held as objects, for every field set."""
    settings = gateway_settings(tmp_path)
    telemetry = dataclasses.replace(settings.policies.telemetry, cache_hot_vehicles=1)
    settings = dataclasses.replace(
        settings, policies=dataclasses.replace(settings.policies, telemetry=telemetry)
    )
    hour = duration_pb2.Duration(seconds=3600)
    field_sets = ([], [pb.TelemetryField.ODOMETER, pb.TelemetryField.LOCATION])
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        for car in ("car-1", "car-2"):
            await rig.connect(car)
        await rig.stub.GetTelemetry(pb.GetTelemetryRequest(vehicle_id="car-1", max_age=hour))
        as_objects = [
            await rig.stub.GetTelemetry(
                pb.GetTelemetryRequest(vehicle_id="car-1", fields=fields, max_age=hour)
            )
            for fields in field_sets
        ]
        fetched = await rig.stub.GetTelemetry(pb.GetTelemetryRequest(vehicle_id="car-2"))
        assert not fetched.from_cache  # car-2 is now the one held as objects
        reads = rig.running.gateway.telemetry
        packed = [
            await rig.stub.GetTelemetry(
                pb.GetTelemetryRequest(vehicle_id="car-1", fields=fields, max_age=hour)
            )
            for fields in field_sets
        ]
        assert reads._cache.encode is not None
        assert reads._cache.cold("car-1") is not None  # answered from the packed form
    assert all(answer.from_cache for answer in as_objects)
    assert packed == as_objects
    assert [len(answer.readings) for answer in packed] == [len(pb.TelemetryField.keys()) - 1, 2]
