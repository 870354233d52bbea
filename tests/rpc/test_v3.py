"""The gateway on Smartcar API V3, over a real server and the simulator over HTTP: the
rental flow, the application token's expiry under a burst, and the v2 → V3 migration."""

from __future__ import annotations

import asyncio
import io
import os
import random
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from google.rpc import error_details_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.cli.migrate import migrate_fleet
from gateway.edge.clock import ManualClock
from tests.instants import START
from tests.rpc.rig import (
    CLIENT_ID,
    CLIENT_SECRET,
    Rig,
    fresh_odometer,
    gateway_against,
    gateway_settings,
    pointed_at,
    simulator,
    status_of,
)

APPLICATION_TOKEN_HOUR_S = 3600


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A gateway whose new connections use API V3, pointed at a fresh simulator."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v3")
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as running:
        yield running


async def connect_v3(rig: Rig, vehicle_id: str) -> tuple[pb.Vehicle, str]:
    """GetConnectUrl → simulated Connect → Connect with the redirect's user_id only."""
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=vehicle_id))
    redirect = await rig.http.get(issued.url)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    owner = query["user_id"][0]
    connected = await rig.stub.Connect(
        pb.ConnectRequest(vehicle_id=vehicle_id, user_id=owner, state=issued.state)
    )
    return connected, owner


def by_endpoint(stats: Any, key: str) -> int:
    return int(stats["requests"]["by_endpoint"].get(key, 0))


def grants(stats: Any, kind: str) -> int:
    return int(stats["token_grants"].get(kind, 0))


async def test_the_whole_rental_flow_on_v3(rig: Rig) -> None:
    """Connect by user id, read, lock, unlock, rent (Disconnect refused), return, disconnect:
    every vehicle call through API V3 on one application token, no owner token at all."""
    vehicle, owner = await connect_v3(rig, "car-1")
    assert vehicle.status == pb.ACTIVE
    assert (vehicle.smartcar_api, vehicle.smartcar_user_id) == (pb.SMARTCAR_API_V3, owner)
    assert len(vehicle.vin) == 17

    telemetry = await rig.telemetry("car-1", max_age_s=0)
    by_field = {r.field: r for r in telemetry.readings}
    assert by_field[pb.ODOMETER].availability == pb.AVAILABLE
    assert by_field[pb.ODOMETER].odometer.distance_km > 0
    assert by_field[pb.ODOMETER].HasField("recorded_at")

    locked = await rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="lock-1"))
    unlocked = await rig.stub.Unlock(pb.UnlockRequest(vehicle_id="car-1", request_id="unlock-1"))
    assert (locked.state, unlocked.state) == (pb.SUCCEEDED, pb.SUCCEEDED)

    await rig.stub.StartRental(pb.StartRentalRequest(vehicle_id="car-1", rental_id="r-1"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    await rig.stub.EndRental(pb.EndRentalRequest(vehicle_id="car-1", rental_id="r-1"))
    disconnected = await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
    assert disconnected.status == pb.DISCONNECTED

    stats = await rig.stats()
    assert by_endpoint(stats, "v3/signals") == 1
    assert by_endpoint(stats, "batch") == 0
    assert grants(stats, "client_credentials") == 1
    assert grants(stats, "authorization_code") == 0
    assert grants(stats, "refresh_token") == 0
    assert by_endpoint(stats, "v3/connections") >= 1
    await rig.advance(1)  # a reading fetched this very instant would still count as fresh
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await rig.stub.GetTelemetry(fresh_odometer("car-1"))
    assert gone.value.code() is grpc.StatusCode.FAILED_PRECONDITION


async def test_200_reads_after_the_application_tokens_hour_make_one_grant_and_one_read(
    rig: Rig,
) -> None:
    """The application token's hour passes; 200 concurrent reads of one car cost exactly one
    new client-credentials grant and one /signals request."""
    await connect_v3(rig, "car-1")
    await rig.advance(APPLICATION_TOKEN_HOUR_S + 1)
    before = await rig.stats()
    answers = await asyncio.gather(
        *(rig.stub.GetTelemetry(fresh_odometer("car-1")) for _ in range(200))
    )
    after = await rig.stats()
    assert all(a.readings for a in answers)
    assert grants(after, "client_credentials") - grants(before, "client_credentials") == 1
    assert by_endpoint(after, "v3/signals") - by_endpoint(before, "v3/signals") == 1


async def test_a_v3_car_asleep_answers_its_last_values_with_their_age(rig: Rig) -> None:
    """A sleeping car on V3 is answered from Smartcar's stored view: the values carry the
    time the car recorded them, never the time of the read, and one recorded before the
    caller's max_age is UNAVAILABLE (OLDER_THAN_MAX_AGE) with its value: never fresh."""
    await connect_v3(rig, "car-1")
    first = await rig.stub.GetTelemetry(fresh_odometer("car-1"))
    recorded = first.readings[0].recorded_at.ToDatetime()
    vehicle = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    await rig.sim("POST", f"/sim/vehicles/{vehicle.smartcar_vehicle_id}/sleep", {"asleep": True})
    await rig.advance(1800)
    later = await rig.stub.GetTelemetry(fresh_odometer("car-1"))
    [reading] = later.readings
    assert reading.recorded_at.ToDatetime() <= recorded
    assert reading.HasField("odometer")
    assert (reading.availability, reading.reason) == (pb.UNAVAILABLE, "OLDER_THAN_MAX_AGE")


async def test_another_users_id_cannot_take_a_car(rig: Rig) -> None:
    """Connect with a user id that connected no car is refused, naming the mismatch."""
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    await rig.http.get(issued.url)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.Connect(
            pb.ConnectRequest(vehicle_id="car-1", user_id="nobody", state=issued.state)
        )
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    info = [
        d for d in status_of(refused.value).details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)
    ]
    assert info


async def test_a_v3_car_is_subscribed_on_connect_and_unsubscribed_on_disconnect(
    tmp_path: Path,
) -> None:
    """With a webhook named (VG_SMARTCAR_WEBHOOK_ID), Connect subscribes the car to it
    through the Management API and Disconnect removes the subscription, then the
    connection, and the user with its last connection."""
    async with simulator() as url, httpx.AsyncClient(base_url=url, timeout=10) as sim:
        made = await sim.post("/sim/webhooks", json={"callback_url": "http://127.0.0.1:9/"})
        webhook_id = made.json()["webhookId"]
        settings = gateway_settings(
            tmp_path, VG_SMARTCAR_API="v3", VG_SMARTCAR_WEBHOOK_ID=webhook_id
        )
        async with gateway_against(settings, url, ManualClock(START)) as rig:
            vehicle, owner = await connect_v3(rig, "car-1")
            token = await application_token(sim)
            subscribed = await subscriptions_of(sim, token, webhook_id)
            assert subscribed == [(owner, vehicle.smartcar_vehicle_id)]

            await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
            # Deleted explicitly, not only dropped with the connection as the simulator
            # (like Smartcar, presumably) does.
            by_method = (await rig.stats())["requests"]["by_method"]
            assert by_method.get("DELETE v3/subscriptions") == 1
            assert await subscriptions_of(sim, token, webhook_id) == []
            connections = await sim.get(
                "/v3/connections",
                params={"filter[userId]": owner},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert connections.json()["data"] == []


async def test_disconnecting_a_car_whose_owner_is_gone_at_smartcar_ends_disconnected(
    rig: Rig,
) -> None:
    """The owner's user was removed at Smartcar first (with every connection of theirs):
    Disconnect finds nothing left to delete (Smartcar's 404 means gone already) and the car
    ends DISCONNECTED, not kept connected with a failure."""
    _, owner = await connect_v3(rig, "car-1")
    async with httpx.AsyncClient(base_url=rig.simulator_url, timeout=10) as sim:
        token = await application_token(sim)
        removed = await sim.delete(
            f"/v3/users/{owner}", headers={"Authorization": f"Bearer {token}"}
        )
        assert removed.status_code == 204
    disconnected = await rig.stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-1"))
    assert disconnected.status == pb.DISCONNECTED


async def application_token(sim: httpx.AsyncClient) -> str:
    """Return an application token of the rig's client, as Smartcar's IAM grants it."""
    granted = await sim.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        auth=(CLIENT_ID, CLIENT_SECRET),
    )
    assert granted.status_code == 200, granted.text
    return str(granted.json()["access_token"])


async def subscriptions_of(
    sim: httpx.AsyncClient, token: str, webhook_id: str
) -> list[tuple[str, str]]:
    """Return (user, vehicle) of each subscription to the webhook."""
    listed = await sim.get(
        "/v3/subscriptions",
        params={"filter[webhookId]": webhook_id},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert listed.status_code == 200, listed.text
    return [
        (s["relationships"]["user"]["data"]["id"], s["relationships"]["vehicle"]["data"]["id"])
        for s in listed.json()["data"]
    ]


MIGRATION_FLEET = int(os.environ.get("VG_MIGRATION_FLEET", "100"))
"""Cars in the migration test: 100 in `make test`, 1,000 in `make soak`."""
SIMULATOR_UNLIMITED = {
    "vehicle_rate_limit": None,
    "app_rate_limit": None,
    "monthly_request_limit": None,
}
"""A simulator without Smartcar's rate limits or allowance (the load tests' own)."""
UNLIMITED = {
    "VG_APP_REQUESTS": "1000000/1",
    "VG_VEHICLE_READS": "100000/1",
    "VG_VEHICLE_COMMANDS": "100000/1",
}


@pytest.mark.postgres_only
async def test_a_v2_fleet_moves_to_v3_while_it_is_read_and_commanded(tmp_path: Path) -> None:
    """A fleet connected on v2 moves to V3 through `migrate-v3` while callers read and lock
    random cars: no call fails, no connection is lost, every car ends on V3 with its v2
    tokens erased, and a second run finds nothing left to move."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v2", **UNLIMITED)
    async with (
        simulator(**SIMULATOR_UNLIMITED) as url,
        gateway_against(settings, url, ManualClock(START)) as rig,
    ):
        cars = [f"car-{n:04d}" for n in range(MIGRATION_FLEET)]
        for start in range(0, len(cars), 25):
            await asyncio.gather(*(rig.connect(car) for car in cars[start : start + 25]))
        stop = asyncio.Event()
        failures: list[str] = []
        served = 0

        async def caller(seed: int) -> None:
            nonlocal served
            chooser = random.Random(seed)
            while not stop.is_set():
                car = chooser.choice(cars)
                try:
                    if chooser.random() < 0.2:
                        request_id = f"lock-{seed}-{served}"
                        await rig.stub.Lock(pb.LockRequest(vehicle_id=car, request_id=request_id))
                    else:
                        await rig.stub.GetTelemetry(fresh_odometer(car))
                    served += 1
                except grpc.aio.AioRpcError as error:
                    failures.append(f"{car}: {error.code().name} {error.details()}")
                await asyncio.sleep(0)

        callers = [asyncio.create_task(caller(seed)) for seed in range(4)]
        pointed = pointed_at(settings, url)
        out = io.StringIO()
        report = await migrate_fleet(pointed, dry_run=False, batch_size=50, out=out)
        again = await migrate_fleet(pointed, dry_run=False, batch_size=50)
        stop.set()
        await asyncio.gather(*callers)

        assert failures == []
        assert served > 0
        assert report.counts()["migrated"] == MIGRATION_FLEET
        assert again.counts()["already_v3"] == MIGRATION_FLEET
        assert out.getvalue().splitlines()[-1].startswith('{"report"')
        listed: list[pb.Vehicle] = []
        page_token = ""
        while True:
            request = pb.ListVehiclesRequest(page_size=500, page_token=page_token)
            page = await rig.stub.ListVehicles(request)
            listed.extend(page.vehicles)
            page_token = page.next_page_token
            if not page_token:
                break
        assert len(listed) == MIGRATION_FLEET
        assert {v.status for v in listed} == {pb.ACTIVE}
        assert {v.smartcar_api for v in listed} == {pb.SMARTCAR_API_V3}
        after = await rig.stub.GetTelemetry(fresh_odometer(cars[0]))
        assert after.readings[0].availability == pb.AVAILABLE


async def test_a_dry_run_moves_nothing(tmp_path: Path) -> None:
    """`migrate-v3 --dry-run` reports every car that would move and changes none."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v2")
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        await rig.connect("car-1")
        report = await migrate_fleet(pointed_at(settings, url), dry_run=True)
        vehicle = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    assert report.counts()["would_migrate"] == 1
    assert vehicle.smartcar_api == pb.SMARTCAR_API_V2


async def test_rotating_the_client_secret_under_load_loses_no_call(tmp_path: Path) -> None:
    """The new secret is configured beside the old one; at Smartcar the new one is added
    and the old one deleted; the application token's hour passes while callers read:
    no call fails, and the one new grant is made with the new secret after one refusal."""
    settings = gateway_settings(
        tmp_path, VG_SMARTCAR_API="v3", VG_SMARTCAR_CLIENT_SECRETS="the-new-secret", **UNLIMITED
    )
    async with (
        simulator(**SIMULATOR_UNLIMITED) as url,
        gateway_against(settings, url, ManualClock(START)) as rig,
    ):
        await connect_v3(rig, "car-1")
        await connect_v3(rig, "car-2")
        stop, enough = asyncio.Event(), asyncio.Event()
        failures: list[str] = []
        served, goal = 0, 10**9

        async def caller(car: str) -> None:
            nonlocal served
            while not stop.is_set():
                try:
                    await rig.stub.GetTelemetry(fresh_odometer(car))
                    served += 1
                except grpc.aio.AioRpcError as error:
                    failures.append(f"{error.code().name} {error.details()}")
                    enough.set()  # the assertion below reports it
                if served >= goal:
                    enough.set()
                await asyncio.sleep(0)

        callers = [asyncio.create_task(caller(car)) for car in ("car-1", "car-2") * 2]
        before = await rig.stats()
        await rig.sim("POST", "/sim/secrets", {"secret": "the-new-secret"})
        await rig.sim("DELETE", "/sim/secrets", {"secret": CLIENT_SECRET})
        await rig.advance(APPLICATION_TOKEN_HOUR_S + 1)
        goal = served + 200  # 200 reads after the token's hour, under the new secret
        await enough.wait()
        stop.set()
        await asyncio.gather(*callers)
        after = await rig.stats()
    assert failures == []
    assert grants(after, "client_credentials") - grants(before, "client_credentials") == 1
    refused = after["token_rejections"].get("invalid_client", 0)
    assert refused - before["token_rejections"].get("invalid_client", 0) == 1
