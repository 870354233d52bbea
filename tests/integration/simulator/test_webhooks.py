"""Webhook delivery by the simulator: VERIFY, signed v4 events, Smartcar's retry schedule."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import smartcar
from aiohttp import web

from clients.simulator import RunningSimulator, serve_simulator
from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import connect, sim_client, stats

TOKEN = "sim-management-token"
SCALE = 0.001
SCHEDULE_S = [0.0, 25 * SCALE, 50 * SCALE, 100 * SCALE]
DEADLINE_S = 5.0


@dataclass(frozen=True)
class Received:
    """One request the callback got: raw body, headers, and when (monotonic seconds)."""

    body: bytes
    headers: dict[str, str]
    at: float

    @property
    def payload(self) -> dict[str, Any]:
        """Return the parsed body."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Callback:
    """A webhook callback: answers VERIFY (rightly or not), then events with scripted statuses.

    `statuses` answer successive events (after them: 200); "hang" never answers.
    """

    verify_correctly: bool = True
    statuses: list[int | str] = field(default_factory=list)
    verifies: list[Received] = field(default_factory=list)
    events: list[Received] = field(default_factory=list)
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    never: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Record the request and answer as scripted."""
        received = Received(await request.read(), dict(request.headers), time.monotonic())
        if received.payload["eventType"] == "VERIFY":
            self.verifies.append(received)
            challenge = received.payload["data"]["challenge"]
            key = TOKEN if self.verify_correctly else "wrong-token"
            return web.json_response({"challenge": sign(challenge.encode(), key)})
        async with self.arrived:
            self.events.append(received)
            self.arrived.notify_all()
        status = self.statuses.pop(0) if self.statuses else 200
        if status == "hang":
            await self.never.wait()
        return web.json_response({"status": "received"}, status=int(status))

    async def wait_for(self, count: int) -> list[Received]:
        """Wait (up to the deadline) until `count` events have arrived; return them."""
        async with asyncio.timeout(DEADLINE_S), self.arrived:
            await self.arrived.wait_for(lambda: len(self.events) >= count)
        return self.events


def sign(body: bytes, key: str = TOKEN) -> str:
    """Return the HMAC-SHA256 hex of `body`."""
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


@asynccontextmanager
async def serving(callback: Callback) -> AsyncIterator[str]:
    """Serve `callback` on 127.0.0.1:0 and yield its URL."""
    app = web.Application()
    app.router.add_post("/hook", callback.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        callback.never.set()
        await runner.cleanup()


@dataclass
class Rig:
    """A simulator with fast retries, a client for it, and a callback."""

    sim: RunningSimulator
    http: httpx.AsyncClient
    callback: Callback
    url: str

    async def register(self, **body: Any) -> dict[str, Any]:
        """Register a webhook for the callback; return the answer."""
        response = await self.http.post("/sim/webhooks", json={"callback_url": self.url, **body})
        assert response.status_code == 201, response.text
        answer: dict[str, Any] = response.json()
        return answer

    async def trigger(self, webhook_id: str, **body: Any) -> httpx.Response:
        """Ask the simulator to send one event now."""
        return await self.http.post(f"/sim/webhooks/{webhook_id}/events", json=body)

    async def trigger_state(self, webhook_id: str) -> httpx.Response:
        """Ask the simulator to send a VEHICLE_STATE of the first catalog vehicle now."""
        return await self.trigger(
            webhook_id, vehicle_id=await self.vehicle_id(), type="VEHICLE_STATE"
        )

    async def vehicle_id(self, index: int = 0) -> str:
        """Return a catalog vehicle id."""
        vehicles = (await self.http.get("/sim/vehicles")).json()["vehicles"]
        vehicle_id: str = vehicles[index]["id"]
        return vehicle_id

    async def settled(self, webhook_id: str) -> dict[str, Any]:
        """Poll the deliveries (up to the deadline) until no event is pending; return them."""
        async with asyncio.timeout(DEADLINE_S):
            while True:
                answer: dict[str, Any] = (
                    await self.http.get(f"/sim/webhooks/{webhook_id}/deliveries")
                ).json()
                if all(e["outcome"] != "pending" for e in answer["events"]):
                    return answer
                await asyncio.sleep(0.005)


@asynccontextmanager
async def rig_with(callback: Callback | None = None, **config: Any) -> AsyncIterator[Rig]:
    """Serve a simulator (retries scaled by 0.001) and a callback."""
    callback = callback or Callback()
    settings = {"webhook_retry_scale": SCALE, "webhook_timeout_s": 1.0, **config}
    async with (
        serving(callback) as url,
        serve_simulator(unlimited_config(**settings)) as sim,
        sim_client(sim.base_url) as http,
    ):
        yield Rig(sim=sim, http=http, callback=callback, url=url)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A simulator and a callback that answers everything correctly."""
    async with rig_with() as running:
        yield running


def signal(payload: dict[str, Any], code: str) -> dict[str, Any]:
    """Return one signal of a VEHICLE_STATE payload."""
    found: dict[str, Any] = next(s for s in payload["data"]["signals"] if s["code"] == code)
    return found


async def test_registration_sends_a_signed_verify_and_reports_it_passed(rig: Rig) -> None:
    """Registering sends VERIFY (v4, signed); a correct challenge answer verifies the webhook."""
    hook = await rig.register(name="Fleet")
    assert hook["verified"] is True
    assert hook["verify_error"] is None
    [verify] = rig.callback.verifies
    assert verify.payload["eventType"] == "VERIFY"
    assert verify.payload["meta"]["version"] == "4.0"
    assert verify.payload["meta"]["webhookId"] == hook["webhookId"]
    assert verify.payload["meta"]["webhookName"] == "Fleet"
    assert verify.headers["SC-Signature"] == sign(verify.body)
    listed = (await rig.http.get("/sim/webhooks")).json()["webhooks"]
    assert listed == [hook]


async def test_a_wrong_challenge_answer_leaves_the_webhook_unverified() -> None:
    """A callback that hashes the challenge with another key is not verified: no events."""
    async with rig_with(Callback(verify_correctly=False)) as rig:
        hook = await rig.register()
        assert hook["verified"] is False
        assert "challenge" in hook["verify_error"]
        answer = await rig.trigger_state(hook["webhookId"])
        assert answer.status_code == 409
        assert rig.callback.events == []


async def test_an_unreachable_callback_is_not_verified(rig: Rig) -> None:
    """VERIFY to a port nobody listens on fails verification with the connection error."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    answer = await rig.http.post(
        "/sim/webhooks", json={"callback_url": f"http://127.0.0.1:{port}/hook"}
    )
    assert answer.status_code == 201
    assert answer.json()["verified"] is False
    assert answer.json()["verify_error"]


async def test_a_vehicle_state_delivery_is_a_signed_v4_event(rig: Rig) -> None:
    """One event: POST JSON, Smartcar/4.0, SC-Signature over the exact body, v4 shape."""
    hook = await rig.register()
    vehicle_id = await rig.vehicle_id()
    answer = await rig.trigger(hook["webhookId"], vehicle_id=vehicle_id, type="VEHICLE_STATE")
    assert answer.status_code == 202
    [event] = await rig.callback.wait_for(1)
    assert event.headers["Content-Type"] == "application/json"
    assert event.headers["User-Agent"] == "Smartcar/4.0"
    assert event.headers["SC-Signature"] == sign(event.body)
    assert smartcar.verify_payload(TOKEN, event.headers["SC-Signature"], event.body.decode())
    payload = event.payload
    assert payload["eventId"] == answer.json()["eventId"]
    assert payload["eventType"] == "VEHICLE_STATE"
    assert payload["vehicleId"] == payload["data"]["vehicle"]["id"] == vehicle_id
    assert payload["data"]["triggers"] == [{"code": "FIRST_DELIVERY"}]
    assert payload["meta"]["version"] == "4.0"
    assert payload["meta"]["signalCount"] == len(payload["data"]["signals"])
    odometer = signal(payload, "odometer-traveleddistance")
    assert odometer["body"]["unit"] == "kilometers"
    assert odometer["status"] == {"value": "SUCCESS"}
    assert odometer["meta"]["oemUpdatedAt"] <= odometer["meta"]["fetchedAt"]
    assert isinstance(signal(payload, "closure-islocked")["body"]["value"], bool)


async def test_signals_the_car_cannot_report_carry_an_error(rig: Rig) -> None:
    """An EV's fuel signals are present with COMPATIBILITY:VEHICLE_NOT_CAPABLE, no body."""
    vehicles = (await rig.http.get("/sim/vehicles")).json()["vehicles"]
    ev = next(v["id"] for v in vehicles if v["powertrain"] == "BEV")
    hook = await rig.register()
    await rig.trigger(hook["webhookId"], vehicle_id=ev, type="VEHICLE_STATE")
    [event] = await rig.callback.wait_for(1)
    fuel = signal(event.payload, "internalcombustionengine-fuellevel")
    assert "body" not in fuel
    assert fuel["status"]["error"] == {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}
    assert signal(event.payload, "tractionbattery-stateofcharge")["body"]["unit"] == "percent"


async def test_signal_overrides_and_backdating(rig: Rig) -> None:
    """`signals` replaces bodies and names the triggers; `recorded_at` backdates them all."""
    hook = await rig.register()
    await rig.trigger(
        hook["webhookId"],
        vehicle_id=await rig.vehicle_id(),
        type="VEHICLE_STATE",
        signals={"closure-islocked": {"value": False}},
        recorded_at="2025-01-01T00:00:00+00:00",
    )
    [event] = await rig.callback.wait_for(1)
    locked = signal(event.payload, "closure-islocked")
    assert locked["body"] == {"value": False}
    assert locked["meta"]["oemUpdatedAt"] == 1_735_689_600_000
    assert event.payload["data"]["triggers"] == [
        {"code": "closure-islocked", "name": "IsLocked", "group": "Closure"}
    ]


async def test_signal_meta_sets_faulty_timestamps(rig: Rig) -> None:
    """`signal_meta` sets keys of the named signals' meta as given; the others keep theirs."""
    hook = await rig.register()
    await rig.trigger(
        hook["webhookId"],
        vehicle_id=await rig.vehicle_id(),
        type="VEHICLE_STATE",
        signal_meta={"odometer-traveleddistance": {"oemUpdatedAt": 1e20}},
    )
    [event] = await rig.callback.wait_for(1)
    odometer = signal(event.payload, "odometer-traveleddistance")
    assert odometer["meta"]["oemUpdatedAt"] == 1e20
    assert isinstance(odometer["meta"]["fetchedAt"], int)
    locked = signal(event.payload, "closure-islocked")
    assert locked["meta"]["oemUpdatedAt"] < 1e14


async def test_a_vehicle_error_delivery(rig: Rig) -> None:
    """VEHICLE_ERROR carries the error given, in state ERROR."""
    hook = await rig.register()
    error = {"type": "CONNECTED_SERVICES_ACCOUNT", "code": "SUBSCRIPTION"}
    await rig.trigger(
        hook["webhookId"], vehicle_id=await rig.vehicle_id(), type="VEHICLE_ERROR", error=error
    )
    [event] = await rig.callback.wait_for(1)
    assert event.payload["eventType"] == "VEHICLE_ERROR"
    assert event.payload["data"]["errors"] == [{"state": "ERROR", **error}]
    assert event.headers["SC-Signature"] == sign(event.body)


async def test_a_failing_callback_gets_smartcar_retry_schedule_then_the_event_is_dropped() -> None:
    """Four attempts, 0/25/50/100 s apart (scaled), one eventId, new deliveryIds, then dropped."""
    async with rig_with(Callback(statuses=[500, 500, 502, 404])) as rig:
        hook = await rig.register()
        await rig.trigger_state(hook["webhookId"])
        log = await rig.settled(hook["webhookId"])
        events = rig.callback.events
        assert log["events"][0]["outcome"] == "dropped"
        assert len(events) == 4
        assert len({e.payload["eventId"] for e in events}) == 1
        assert len({e.payload["meta"]["deliveryId"] for e in events}) == 4
        attempts = log["deliveries"]
        assert [a["attempt"] for a in attempts] == [1, 2, 3, 4]
        assert [a["delay_s"] for a in attempts] == pytest.approx(SCHEDULE_S)
        assert [a["status"] for a in attempts] == [500, 500, 502, 404]
        assert [a["deliveryId"] for a in attempts] == [
            e.payload["meta"]["deliveryId"] for e in events
        ]
        gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(events)]
        assert all(gap >= wait * 0.9 for gap, wait in zip(gaps, SCHEDULE_S[1:], strict=True))
        counts = (await stats(rig.http))["webhooks"]
        assert counts == {"delivered": 0, "failed_attempts": 4, "dropped": 1}


async def test_a_delivery_that_succeeds_on_a_retry_stops_there() -> None:
    """Two failures then a 2xx: delivered on the third attempt, no fourth."""
    async with rig_with(Callback(statuses=[503, 500, 204])) as rig:
        hook = await rig.register()
        await rig.trigger_state(hook["webhookId"])
        log = await rig.settled(hook["webhookId"])
        assert log["events"][0]["outcome"] == "delivered"
        assert [a["outcome"] for a in log["deliveries"]] == ["failed", "failed", "delivered"]
        counts = (await stats(rig.http))["webhooks"]
        assert counts == {"delivered": 1, "failed_attempts": 2, "dropped": 0}


async def test_a_callback_slower_than_the_timeout_fails_the_attempt() -> None:
    """No answer within `webhook_timeout_s` is a failed attempt, retried.

    The hanging attempt waits out the timeout in real time, so it is short; but it must
    also leave the retry's answer time to arrive on a loaded machine (0.05 s did not)."""
    async with rig_with(Callback(statuses=["hang"]), webhook_timeout_s=0.5) as rig:
        hook = await rig.register()
        await rig.trigger_state(hook["webhookId"])
        log = await rig.settled(hook["webhookId"])
        first, second = log["deliveries"]
        assert (first["status"], second["status"]) == (None, 200)
        assert "no answer within 0.5 s" in first["error"]


async def test_a_lock_command_sends_vehicle_state(rig: Rig) -> None:
    """A successful LOCK emits VEHICLE_STATE triggered by closure-islocked, now true."""
    session = await connect(rig.http)
    await rig.register(vehicle_ids=[session.vehicle_id])
    base = f"/v2.0/vehicles/{session.vehicle_id}"
    answer = await rig.http.post(
        f"{base}/security", json={"action": "LOCK"}, headers=session.headers
    )
    assert answer.status_code == 200
    [event] = await rig.callback.wait_for(1)
    assert event.payload["data"]["triggers"][0]["code"] == "closure-islocked"
    assert signal(event.payload, "closure-islocked")["body"] == {"value": True}
    assert event.payload["data"]["user"]["id"] is not None


async def test_waking_a_car_sends_vehicle_state(rig: Rig) -> None:
    """`/sim/vehicles/{id}/sleep` waking a car emits VEHICLE_STATE; falling asleep does not."""
    vehicle_id = await rig.vehicle_id()
    await rig.register()
    await rig.http.post(f"/sim/vehicles/{vehicle_id}/sleep", json={"asleep": True})
    await rig.http.post(f"/sim/vehicles/{vehicle_id}/sleep", json={"asleep": False})
    [event] = await rig.callback.wait_for(1)
    assert event.payload["data"]["triggers"][0]["code"] == "connectivitystatus-isasleep"
    assert signal(event.payload, "connectivitystatus-isasleep")["body"] == {"value": False}


async def test_only_subscribed_vehicles_and_live_webhooks_get_events(rig: Rig) -> None:
    """Events of other vehicles are refused (409); a deleted webhook is gone (404)."""
    first, second = await rig.vehicle_id(0), await rig.vehicle_id(1)
    hook = await rig.register(vehicle_ids=[first])
    assert hook["vehicle_ids"] == [first]
    refused = await rig.trigger(hook["webhookId"], vehicle_id=second, type="VEHICLE_STATE")
    assert refused.status_code == 409
    deleted = await rig.http.delete(f"/sim/webhooks/{hook['webhookId']}")
    assert deleted.json() == {"deleted": hook["webhookId"]}
    assert (await rig.http.get(f"/sim/webhooks/{hook['webhookId']}")).status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field_name"),
    [
        ({"callback_url": "ftp://example.test/hook"}, 400, "callback_url"),
        ({"callback_url": 7}, 400, "callback_url"),
        ({"callback_url": "http://127.0.0.1:1/h", "vehicle_ids": ["nope"]}, 404, "vehicle_ids"),
        ({"callback_url": "http://127.0.0.1:1/h", "vehicle_ids": "some"}, 400, "vehicle_ids"),
    ],
)
async def test_bad_registrations_are_refused(
    rig: Rig, body: dict[str, Any], status: int, field_name: str
) -> None:
    """Invalid registrations name the field at fault."""
    answer = await rig.http.post("/sim/webhooks", json=body)
    assert answer.status_code == status
    assert answer.json()["field"] == field_name


@pytest.mark.parametrize(
    ("body", "status", "field_name"),
    [
        ({"type": "VEHICLE_STATE"}, 404, "vehicle_id"),
        ({"type": "VEHICLE_NICKNAME"}, 400, "type"),
        ({"type": "VEHICLE_STATE", "signals": ["closure-islocked"]}, 400, "signals"),
        ({"type": "VEHICLE_STATE", "recorded_at": "yesterday"}, 400, "recorded_at"),
        ({"type": "VEHICLE_STATE", "signal_meta": {"closure-islocked": 1}}, 400, "signal_meta"),
        ({"type": "VEHICLE_ERROR", "error": {"code": "X"}}, 400, "error"),
    ],
)
async def test_bad_event_requests_are_refused(
    rig: Rig, body: dict[str, Any], status: int, field_name: str
) -> None:
    """Invalid event requests name the field at fault and send nothing."""
    hook = await rig.register()
    if field_name != "vehicle_id":
        body = {"vehicle_id": await rig.vehicle_id(), **body}
    answer = await rig.trigger(hook["webhookId"], **body)
    assert answer.status_code == status
    assert answer.json()["field"] == field_name
    assert rig.callback.events == []


async def test_without_a_management_token_nothing_can_be_signed() -> None:
    """A simulator without `management_token` refuses webhook registration (409)."""
    async with rig_with(management_token=None) as rig:
        answer = await rig.http.post("/sim/webhooks", json={"callback_url": rig.url})
        assert answer.status_code == 409
        assert answer.json()["field"] == "management_token"


async def test_the_retry_scale_is_a_runtime_setting(rig: Rig) -> None:
    """`webhook_retry_scale` and `webhook_timeout_s` show in and update through /sim/config."""
    updated = await rig.http.post("/sim/config", json={"webhook_retry_scale": 0.5})
    assert updated.json()["webhook_retry_scale"] == 0.5
    assert updated.json()["webhook_timeout_s"] == 1.0
    refused = await rig.http.post("/sim/config", json={"webhook_retry_scale": -1})
    assert refused.status_code == 400
