"""End to end: the simulator delivers webhooks to the real receiver over real SQLite storage."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.simulator import serve_simulator
from gateway.core.cache import TelemetryCache
from gateway.core.model import (
    Availability,
    ConnectionStatus,
    FieldReading,
    LockStatus,
    Odometer,
    TelemetryField,
    Vehicle,
    WebhookEvent,
)
from gateway.core.ports import UnitOfWork, UnitOfWorkFactory
from gateway.core.secret import Secret
from gateway.core.webhooks import WebhookInbox
from gateway.edge.clock import ManualClock
from gateway.edge.http.webhooks import RunningReceiver, serve_webhooks
from gateway.edge.smartcar.events import SmartcarV2Events, event_from
from storage.crypto import TokenCipher, load_keyring
from storage.database import create_engine, migrate
from storage.uow import unit_of_work_factory
from tests.instants import START
from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import sim_client

MANAGEMENT_TOKEN = "e2e-management-token"
VEHICLE_ID = "fleet-car-7"
DEADLINE_S = 5.0


class StallingInbox(WebhookInbox):
    """The real inbox, whose next `stalls` receives outlast the receiver's ack timeout (as a
    stuck database would): they raise the TimeoutError the receiver's own timeout raises.
    The receiver keeps its production timeout, so a store that is merely slow on a busy
    machine is never taken for a stall; that the timeout itself fires is
    tests/integration/test_webhook_receiver.py's subject."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stalls = 0

    async def receive(self, event: WebhookEvent) -> bool:
        """Store the event, or time out when a stall is due."""
        if self.stalls:
            self.stalls -= 1
            raise TimeoutError
        return await super().receive(event)


@dataclass
class Rig:
    """Simulator, receiver, storage and the vehicle linking them."""

    sim: httpx.AsyncClient
    receiver: RunningReceiver
    inbox: StallingInbox
    uow: UnitOfWorkFactory
    cache: TelemetryCache
    webhook_id: str
    smartcar_id: str

    async def send(self, **body: Any) -> str:
        """Have the simulator deliver one event; wait until it is delivered and applied."""
        answer = await self.sim.post(
            f"/sim/webhooks/{self.webhook_id}/events", json={"vehicle_id": self.smartcar_id, **body}
        )
        assert answer.status_code == 202, answer.text
        event_id: str = answer.json()["eventId"]
        async with asyncio.timeout(DEADLINE_S):
            while True:  # poll the simulator's delivery log until the event is settled
                outcome = await self._outcome(event_id)
                if outcome != "pending":
                    break
                await asyncio.sleep(0.005)
        assert outcome == "delivered"
        await self.receiver.settled()
        return event_id

    async def _outcome(self, event_id: str) -> str:
        outcome: str = next(
            e["outcome"] for e in (await self.log())["events"] if e["eventId"] == event_id
        )
        return outcome

    async def log(self) -> dict[str, Any]:
        """Return the simulator's delivery log of the webhook."""
        log: dict[str, Any] = (
            await self.sim.get(f"/sim/webhooks/{self.webhook_id}/deliveries")
        ).json()
        return log

    async def readings(self) -> dict[TelemetryField, FieldReading]:
        """Return the vehicle's stored readings."""
        async with self.uow() as uow:
            return await uow.telemetry.latest(VEHICLE_ID)

    async def vehicle(self) -> Vehicle:
        """Return the stored vehicle."""
        async with self.uow() as uow:
            vehicle = await uow.vehicles.get(VEHICLE_ID)
        assert vehicle is not None
        return vehicle


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[UnitOfWorkFactory]:
    """Return units of work on a freshly migrated SQLite file, then on a PostgreSQL
    database of their own, with a development key."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres").new_database()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'gateway.db'}"
    engine = create_engine(url)
    await migrate(engine)
    yield unit_of_work_factory(engine, TokenCipher(load_keyring(None, var_dir=tmp_path)))
    await engine.dispose()


@pytest.fixture
async def rig(storage: UnitOfWorkFactory) -> AsyncIterator[Rig]:
    """Serve a simulator and a receiver; link a fleet vehicle to an ICE car; register."""
    config = unlimited_config(management_token=MANAGEMENT_TOKEN, webhook_retry_scale=0.001)
    cache = TelemetryCache(storage)
    clock = ManualClock(START)
    inbox = StallingInbox(uow=storage, cache=cache, clock=clock, decoder=SmartcarV2Events())
    token = Secret(MANAGEMENT_TOKEN)
    async with (
        serve_simulator(config) as simulator,
        sim_client(simulator.base_url) as sim,
        serve_webhooks(inbox, management_token=token, clock=clock) as receiver,
    ):
        vehicles = (await sim.get("/sim/vehicles")).json()["vehicles"]
        smartcar_id = next(v["id"] for v in vehicles if v["powertrain"] == "ICE")
        async with storage() as uow:
            await uow.vehicles.add(
                Vehicle(
                    id=VEHICLE_ID, status=ConnectionStatus.ACTIVE, smartcar_vehicle_id=smartcar_id
                )
            )
            await uow.commit()
        body = {"callback_url": receiver.url, "vehicle_ids": [smartcar_id]}
        hook = (await sim.post("/sim/webhooks", json=body)).json()
        assert hook["verified"] is True, hook["verify_error"]
        yield Rig(sim, receiver, inbox, storage, cache, hook["webhookId"], smartcar_id)


async def test_a_vehicle_state_event_reaches_stored_telemetry(rig: Rig) -> None:
    """VERIFY passes; a VEHICLE_STATE is stored, applied, and read back from SQLite and cache."""
    recorded = datetime(2025, 5, 1, 8, 30, tzinfo=UTC)
    await rig.send(
        type="VEHICLE_STATE",
        signals={"odometer-traveleddistance": {"unit": "kilometers", "value": 12345.6}},
        recorded_at=recorded.isoformat(),
    )
    readings = await rig.readings()
    odometer = readings[TelemetryField.ODOMETER]
    assert odometer.value == Odometer(distance_km=12345.6)
    assert odometer.recorded_at == recorded
    expected = {
        TelemetryField.LOCATION,
        TelemetryField.ODOMETER,
        TelemetryField.FUEL,
        TelemetryField.LOCK_STATUS,
        TelemetryField.ENGINE_OIL,
    }
    assert set(readings) == expected
    assert all(r.availability is Availability.AVAILABLE for r in readings.values())
    assert (await rig.cache.readings(VEHICLE_ID))[TelemetryField.ODOMETER] == odometer
    assert (await rig.vehicle()).last_telemetry_at is not None
    async with rig.uow() as uow:
        assert await uow.webhook_events.pending(limit=10) == []


async def test_a_late_older_event_does_not_undo_a_newer_one(rig: Rig) -> None:
    """Delivered out of order, the older lock state loses to the newer one in storage."""
    newer, older = "2025-05-01T10:00:00+00:00", "2025-05-01T09:00:00+00:00"
    locked = {"closure-islocked": {"value": True}}
    unlocked = {"closure-islocked": {"value": False}}
    await rig.send(type="VEHICLE_STATE", signals=locked, recorded_at=newer)
    await rig.send(type="VEHICLE_STATE", signals=unlocked, recorded_at=older)
    lock = (await rig.readings())[TelemetryField.LOCK_STATUS]
    assert isinstance(lock.value, LockStatus)
    assert lock.value.is_locked is True
    assert lock.recorded_at == datetime.fromisoformat(newer)


async def test_a_vehicle_error_event_is_kept_on_the_vehicle(rig: Rig) -> None:
    """A VEHICLE_ERROR ends up as the vehicle's last error; RESOLVED clears it."""
    error = {"type": "VEHICLE_STATE", "code": "UNREACHABLE", "description": "offline"}
    await rig.send(type="VEHICLE_ERROR", error=error)
    assert (await rig.vehicle()).last_error == "VEHICLE_STATE:UNREACHABLE: offline"
    await rig.send(type="VEHICLE_ERROR", error={**error, "state": "RESOLVED"})
    assert (await rig.vehicle()).last_error is None


async def test_an_event_not_acknowledged_in_time_is_retried_and_stored_once(rig: Rig) -> None:
    """A receiver stuck past its ack timeout answers 503; Smartcar's retry lands it, once."""
    rig.inbox.stalls = 1
    event_id = await rig.send(
        type="VEHICLE_STATE", signals={"odometer-traveleddistance": {"value": 777.0}}
    )
    attempts = [a for a in (await rig.log())["deliveries"] if a["eventId"] == event_id]
    assert [a["status"] for a in attempts] == [503, 200]
    assert attempts[1]["delay_s"] == pytest.approx(0.025)
    assert (await rig.readings())[TelemetryField.ODOMETER].value == Odometer(distance_km=777.0)
    async with rig.uow() as uow:
        assert await uow.webhook_events.pending(limit=10) == []


async def inbox_over_a_linked_car(storage: UnitOfWorkFactory) -> WebhookInbox:
    """Store an ACTIVE fleet vehicle linked to Smartcar's sc-9; return an inbox over it."""
    async with storage() as uow:
        await uow.vehicles.add(
            Vehicle(id=VEHICLE_ID, status=ConnectionStatus.ACTIVE, smartcar_vehicle_id="sc-9")
        )
        await uow.commit()
    return WebhookInbox(
        uow=storage,
        cache=TelemetryCache(storage),
        clock=ManualClock(START),
        decoder=SmartcarV2Events(),
    )


async def test_events_a_crash_left_unapplied_are_applied_at_start(
    storage: UnitOfWorkFactory,
) -> None:
    """An event stored in SQLite but never applied is applied when the receiver starts."""
    inbox = await inbox_over_a_linked_car(storage)
    payload = {
        "eventId": "evt-left",
        "eventType": "VEHICLE_ERROR",
        "data": {
            "vehicle": {"id": "sc-9"},
            "errors": [{"type": "VEHICLE_STATE", "code": "ASLEEP"}],
        },
    }
    assert await inbox.receive(event_from(payload, received_at=START))
    async with serve_webhooks(
        inbox, management_token=Secret(MANAGEMENT_TOKEN), clock=ManualClock(START)
    ):
        async with storage() as uow:
            assert await uow.webhook_events.pending(limit=10) == []
            vehicle = await uow.vehicles.get(VEHICLE_ID)
        assert vehicle is not None
        assert vehicle.last_error == "VEHICLE_STATE:ASLEEP"


@pytest.mark.parametrize("stamp", [1e20, 1_746_088_200_000_000], ids=["1e20", "microseconds"])
async def test_an_absurd_oem_timestamp_rejects_only_that_field(rig: Rig, stamp: float) -> None:
    """The simulator sends an odometer stamped 1e20 or in µs: the event is applied and
    marked so in storage, its reason names the odometer, and the other fields are stored."""
    event_id = await rig.send(
        type="VEHICLE_STATE",
        signals={"odometer-traveleddistance": {"unit": "kilometers", "value": 5555.0}},
        signal_meta={"odometer-traveleddistance": {"oemUpdatedAt": stamp}},
    )
    readings = await rig.readings()
    assert TelemetryField.ODOMETER not in readings
    assert TelemetryField.LOCK_STATUS in readings
    async with rig.uow() as uow:
        assert await uow.webhook_events.pending(limit=10) == []
        applied = await stored_event(uow, event_id)
    assert applied.failed_at is None
    assert "odometer: odometer-traveleddistance meta.oemUpdatedAt" in (applied.error or "")


async def test_text_no_store_keeps_is_400_or_stored_failed_never_500(rig: Rig) -> None:
    """On SQLite and PostgreSQL: a lone surrogate in an eventId is 400; NUL and a lone
    surrogate inside a signed event store it failed (answer 200), never a 500."""
    base = {
        "eventType": "VEHICLE_STATE",
        "vehicleId": rig.smartcar_id,
        "data": {"vehicle": {"id": rig.smartcar_id}, "signals": []},
    }
    bad_id = {**base, "eventId": "evt-\ud800"}
    bad_data = {**base, "eventId": "evt-text", "data": {"note": "nul \x00, half \udc00"}}
    async with httpx.AsyncClient(timeout=5.0) as http:
        refused = await post_signed(http, rig.receiver.url, bad_id)
        failed = await post_signed(http, rig.receiver.url, bad_data)
    assert refused.status_code == 400
    assert (failed.status_code, failed.json()["status"]) == (200, "failed")
    async with rig.uow() as uow:
        stored = await stored_event(uow, "evt-text")
    assert stored.failed_at is not None
    assert stored.payload["data"] == {"note": "nul \ufffd, half \ufffd"}


@pytest.mark.parametrize("stamp", [1e20, 1_746_088_200_000_000], ids=["1e20", "microseconds"])
async def test_a_pending_event_with_an_absurd_timestamp_does_not_block_start(
    storage: UnitOfWorkFactory, stamp: float
) -> None:
    """An event an earlier version stored with an absurd timestamp is settled at start-up
    (applied without that field); the receiver starts."""
    inbox = await inbox_over_a_linked_car(storage)
    signal = {
        "code": "odometer-traveleddistance",
        "body": {"unit": "km", "value": 10.0},
        "meta": {"oemUpdatedAt": stamp},
    }
    payload = {
        "eventId": "evt-left",
        "eventType": "VEHICLE_STATE",
        "data": {"vehicle": {"id": "sc-9"}, "signals": [signal]},
    }
    assert await inbox.receive(event_from(payload, received_at=START))
    async with serve_webhooks(
        inbox, management_token=Secret(MANAGEMENT_TOKEN), clock=ManualClock(START)
    ) as receiver:
        assert receiver.port > 0
        async with storage() as uow:
            assert await uow.webhook_events.pending(limit=10) == []
            settled = await stored_event(uow, "evt-left")
    assert settled.applied_at is not None
    assert "meta.oemUpdatedAt" in (settled.error or "")


async def post_signed(http: httpx.AsyncClient, url: str, payload: dict[str, Any]) -> httpx.Response:
    """POST a payload signed with the management token, as Smartcar would."""
    body = json.dumps(payload).encode()
    digest = hmac.new(MANAGEMENT_TOKEN.encode(), body, hashlib.sha256).hexdigest()
    return await http.post(url, content=body, headers={"SC-Signature": digest})


async def stored_event(uow: UnitOfWork, event_id: str) -> WebhookEvent:
    """Return a stored webhook event by id, whatever its state."""
    event = await uow.webhook_events.get(event_id)
    assert event is not None
    return event
