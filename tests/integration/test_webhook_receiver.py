"""The webhook receiver over HTTP on 127.0.0.1: VERIFY, signatures, limits, store-then-ack."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import smartcar

from gateway.core.cache import TelemetryCache
from gateway.core.model import ConnectionStatus, TelemetryField, Vehicle, WebhookEvent
from gateway.core.secret import Secret
from gateway.core.webhooks import WebhookInbox
from gateway.edge.clock import ManualClock
from gateway.edge.http import webhooks as receiver_module
from gateway.edge.http.webhooks import MAX_BODY_BYTES, RunningReceiver, serve_webhooks
from gateway.edge.smartcar.events import SmartcarV2Events, event_from
from tests.fakes import FakeUnitOfWorkFactory
from tests.unit.edge.webhook_samples import signal, state_event, verify_event

TOKEN = "amt-test-token"
SMARTCAR_ID = "sc-1"
VEHICLE_ID = "car-1"
START = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


class CountingInbox(WebhookInbox):
    """The real inbox, counting applications and able to hold `receive` back."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.applied: list[str] = []
        self.hold_receive: asyncio.Event | None = None
        self.storage_down = False

    async def receive(self, event: WebhookEvent) -> bool:
        """Store the event, after `hold_receive` is set when a test installed one; raise
        as a lost database connection would when `storage_down`."""
        if self.hold_receive is not None:
            await self.hold_receive.wait()
        if self.storage_down:
            raise ConnectionResetError("connection to the database lost")
        return await super().receive(event)

    async def apply(self, event: WebhookEvent) -> None:
        """Apply the event and count it."""
        self.applied.append(event.event_id)
        await super().apply(event)


@dataclass
class Rig:
    """A receiver on port 0 over fakes, and an HTTP client pointed at it."""

    running: RunningReceiver
    http: httpx.AsyncClient
    inbox: CountingInbox
    uow: FakeUnitOfWorkFactory
    clock: ManualClock

    async def post(self, body: bytes, *, signature: str | bytes | None = None) -> httpx.Response:
        """POST raw bytes to the receiver, with `SC-Signature` when given."""
        headers: dict[str, str | bytes] = {
            "Content-Type": "application/json",
            "User-Agent": "Smartcar/4.0",
        }
        if signature is not None:
            headers["SC-Signature"] = signature
        return await self.http.post(self.running.url, content=body, headers=headers)

    async def post_signed(self, payload: dict[str, Any]) -> httpx.Response:
        """POST a payload signed as Smartcar signs it."""
        body = json.dumps(payload).encode()
        return await self.post(body, signature=sign(body))


def sign(body: bytes, token: str = TOKEN) -> str:
    """Return Smartcar's SC-Signature of `body`."""
    return hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def build_inbox(uow: FakeUnitOfWorkFactory, clock: ManualClock) -> CountingInbox:
    """Return a counting inbox over `uow`, reading Smartcar's v2 events."""
    return CountingInbox(
        uow=uow, cache=TelemetryCache(uow), clock=clock, decoder=SmartcarV2Events()
    )


async def fleet() -> FakeUnitOfWorkFactory:
    """Return fakes holding one vehicle linked to `sc-1`."""
    uow = FakeUnitOfWorkFactory()
    async with uow() as unit:
        await unit.vehicles.add(
            Vehicle(id=VEHICLE_ID, status=ConnectionStatus.ACTIVE, smartcar_vehicle_id=SMARTCAR_ID)
        )
        await unit.commit()
    return uow


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """Serve a receiver over fresh fakes for one test."""
    uow = await fleet()
    clock = ManualClock(START)
    inbox = build_inbox(uow, clock)
    async with (
        serve_webhooks(
            inbox, management_token=Secret(TOKEN), clock=clock, ack_timeout_s=0.2
        ) as running,
        httpx.AsyncClient(timeout=5.0) as http,
    ):
        yield Rig(running=running, http=http, inbox=inbox, uow=uow, clock=clock)


def odometer_event(event_id: str = "evt-1") -> dict[str, Any]:
    """Return a VEHICLE_STATE event carrying an odometer reading."""
    at = datetime(2025, 6, 1, 11, 0, tzinfo=UTC)
    odometer = signal("odometer-traveleddistance", {"unit": "kilometers", "value": 4242}, at=at)
    return state_event(event_id, SMARTCAR_ID, [odometer])


async def test_verify_is_answered_with_the_challenge_hmac(rig: Rig) -> None:
    """VERIFY gets 200 JSON `{"challenge": hmac}`, the value the official SDK computes."""
    body = json.dumps(verify_event("a1b2c3")).encode()
    for signature in (None, sign(body)):
        response = await rig.post(body, signature=signature)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.json() == {"challenge": smartcar.hash_challenge(TOKEN, "a1b2c3")}
    assert rig.uow.store.webhook_events == {}


async def test_verify_with_a_wrong_signature_is_refused(rig: Rig) -> None:
    """A signed VERIFY whose signature does not match is 401 and gets no challenge answer."""
    body = json.dumps(verify_event("a1b2c3")).encode()
    response = await rig.post(body, signature=sign(body, token="someone-else"))
    assert response.status_code == 401
    assert "challenge" not in response.json()


async def test_an_unsigned_verify_is_no_signing_oracle(rig: Rig) -> None:
    """An unsigned VERIFY whose challenge is itself an event body is refused (400)."""
    forged = json.dumps(odometer_event())
    response = await rig.post(json.dumps(verify_event(forged)).encode())
    assert response.status_code == 400
    assert "challenge" not in response.json()


async def test_a_signed_event_is_stored_acknowledged_and_applied(rig: Rig) -> None:
    """A well-signed event is 200 `received`, stored, then applied to telemetry."""
    response = await rig.post_signed(odometer_event())
    assert response.status_code == 200
    assert response.json() == {"status": "received"}
    assert "evt-1" in rig.uow.store.webhook_events
    await rig.running.settled()
    assert TelemetryField.ODOMETER in rig.uow.store.telemetry[VEHICLE_ID]
    assert rig.uow.store.webhook_events["evt-1"].applied_at is not None


@pytest.mark.parametrize(
    "signature",
    [
        None,
        sign(json.dumps(odometer_event()).encode(), token="someone-else"),
        "not-hex-at-all",
        "é".encode() * 64,
        b"\xff" * 64,
    ],
)
async def test_a_missing_or_wrong_signature_stores_nothing(rig: Rig, signature: str | None) -> None:
    """Without a matching SC-Signature the answer is 401 and nothing is stored or applied."""
    response = await rig.post(json.dumps(odometer_event()).encode(), signature=signature)
    assert response.status_code == 401
    assert rig.uow.store.webhook_events == {}
    assert rig.inbox.applied == []


async def test_signatures_are_compared_in_constant_time(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The receiver checks SC-Signature with `hmac.compare_digest`."""
    compared: list[tuple[object, object]] = []
    original: Callable[[Any, Any], bool] = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append((a, b))
        return original(a, b)

    monkeypatch.setattr(receiver_module.hmac, "compare_digest", spy)
    body = json.dumps(odometer_event()).encode()
    assert (await rig.post(body, signature=sign(body))).status_code == 200
    assert compared == [(sign(body).encode(), sign(body).encode())]


async def test_a_signature_is_case_insensitive_hex(rig: Rig) -> None:
    """An upper-case hex signature of the right HMAC is accepted."""
    body = json.dumps(odometer_event()).encode()
    assert (await rig.post(body, signature=sign(body).upper())).status_code == 200


async def test_a_body_over_50_kb_is_refused(rig: Rig) -> None:
    """A payload over Smartcar's 50 KB maximum is 413, however it is sent."""
    payload = odometer_event()
    payload["padding"] = "x" * MAX_BODY_BYTES
    body = json.dumps(payload).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    sized = await rig.post(body, signature=sign(body))
    streamed = await rig.http.post(
        rig.running.url, content=chunks(), headers={"SC-Signature": sign(body)}
    )
    assert (sized.status_code, streamed.status_code) == (413, 413)
    assert rig.uow.store.webhook_events == {}


def deep_event(levels: int) -> bytes:
    """Return an event body whose `data` nests `levels` objects deep."""
    data = '{"d": ' * (levels - 1) + "{}" + "}" * (levels - 1)
    return b'{"eventId": "evt-1", "eventType": "VEHICLE_STATE", "data": ' + data.encode() + b"}"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b"\xff\xfe\xfa",
        b"[" * 20_000,
        b'{"eventType": "VEHICLE_STATE"}',
        json.dumps(odometer_event()).encode("utf-16"),
        deep_event(32),
        json.dumps(odometer_event("evt-\ud800")).encode(),
        json.dumps(odometer_event("evt-\u0000")).encode(),
        json.dumps(odometer_event("e" * 129)).encode(),
    ],
    ids=[
        "not-json",
        "array",
        "not-utf8",
        "too-deep-to-parse",
        "no-event-id",
        "utf-16",
        "nested-33-levels",
        "lone-surrogate-event-id",
        "nul-event-id",
        "event-id-over-128",
    ],
)
async def test_a_body_that_is_no_event_is_refused(rig: Rig, body: bytes) -> None:
    """Signed bodies that are not UTF-8 JSON objects, nest over 32 levels, or lack an
    eventId storage keeps are 400, nothing stored."""
    response = await rig.post(body, signature=sign(body))
    assert response.status_code == 400
    assert rig.uow.store.webhook_events == {}


async def test_a_redelivery_is_acknowledged_but_stored_and_applied_once(rig: Rig) -> None:
    """The same eventId twice (a new deliveryId) is 200 both times, stored and applied once:
    the duplicate is offered to the inbox again (in case the first attempt's storing
    outlasted its answer and nothing applied it), which finds it applied and leaves it."""
    first = odometer_event()
    second = {**first, "meta": {**first["meta"], "deliveryId": "delivery-2"}}
    answers = [await rig.post_signed(first)]
    await rig.running.settled()
    applied_at = rig.uow.store.webhook_events["evt-1"].applied_at
    assert applied_at is not None
    rig.clock.advance(60)
    answers.append(await rig.post_signed(second))
    await rig.running.settled()
    assert [a.status_code for a in answers] == [200, 200]
    assert [a.json()["status"] for a in answers] == ["received", "duplicate"]
    assert list(rig.uow.store.webhook_events) == ["evt-1"]
    assert rig.uow.store.webhook_events["evt-1"].applied_at == applied_at


async def test_a_duplicate_of_an_event_stored_but_never_applied_applies_it(rig: Rig) -> None:
    """An attempt whose storing landed after its answer timed out (so nothing applied the
    event): Smartcar's retry is a duplicate, and it applies the stored event."""
    event = event_from(odometer_event(), received_at=rig.clock.now())
    assert await rig.inbox.receive(event)  # stored, as by the timed-out attempt; not applied
    answer = await rig.post_signed(odometer_event())
    await rig.running.settled()
    assert answer.json()["status"] == "duplicate"
    assert rig.uow.store.webhook_events["evt-1"].applied_at is not None


async def test_an_event_not_stored_in_time_is_not_acknowledged(rig: Rig) -> None:
    """When storing outlasts the ack timeout the answer is 503, so Smartcar retries."""
    rig.inbox.hold_receive = asyncio.Event()
    response = await rig.post_signed(odometer_event())
    assert response.status_code == 503
    assert rig.uow.store.webhook_events == {}


async def test_events_left_pending_are_applied_at_start() -> None:
    """`serve_webhooks` applies what an earlier run stored but did not apply, before serving."""
    uow = await fleet()
    clock = ManualClock(START)
    inbox = build_inbox(uow, clock)
    assert await inbox.receive(event_from(odometer_event("evt-left"), received_at=START))
    async with serve_webhooks(inbox, management_token=Secret(TOKEN), clock=clock):
        assert inbox.applied == ["evt-left"]
        assert uow.store.webhook_events["evt-left"].applied_at is not None


@pytest.mark.parametrize("challenge", ["\ud800", "abc\udfff"])
async def test_a_verify_challenge_that_is_no_text_is_400(rig: Rig, challenge: str) -> None:
    """A VERIFY challenge holding a lone surrogate is 400, signed or not (never 500)."""
    body = json.dumps(verify_event(challenge)).encode()
    for signature in (None, sign(body)):
        response = await rig.post(body, signature=signature)
        assert response.status_code == 400
        assert response.json()["error"] == "invalid_event"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_a_non_finite_timestamp_rejects_only_its_field(rig: Rig, literal: bytes) -> None:
    """`oemUpdatedAt` NaN, ±Infinity or 1e400 is acknowledged and stored as its literal
    text; the event is applied without the odometer, with the reason on its row."""
    payload = odometer_event()
    locked = signal("closure-islocked", {"value": True}, at=datetime(2025, 6, 1, 11, tzinfo=UTC))
    payload["data"]["signals"].append(locked)
    payload["data"]["signals"][0]["meta"]["oemUpdatedAt"] = "@"
    body = json.dumps(payload).encode().replace(b'"@"', literal)
    response = await rig.post(body, signature=sign(body))
    assert (response.status_code, response.json()) == (200, {"status": "received"})
    await rig.running.settled()
    event = rig.uow.store.webhook_events["evt-1"]
    assert event.applied_at is not None
    assert "odometer: odometer-traveleddistance meta.oemUpdatedAt" in (event.error or "")
    assert set(rig.uow.store.telemetry[VEHICLE_ID]) == {TelemetryField.LOCK_STATUS}
    meta = event.payload["data"]["signals"][0]["meta"]  # type: ignore[index]
    assert meta["oemUpdatedAt"] == literal.decode()


async def test_a_signed_event_holding_a_lone_surrogate_is_stored_failed(rig: Rig) -> None:
    """A signed event with a lone surrogate past its envelope is acknowledged (a retry
    would not help), stored failed with the reason, and not applied."""
    payload = odometer_event()
    payload["data"]["vehicle"]["model"] = "Model \ud800"
    response = await rig.post_signed(payload)
    assert response.status_code == 200
    assert response.json()["status"] == "failed"
    assert "data.vehicle.model holds a lone UTF-16 surrogate" in response.json()["reason"]
    await rig.running.settled()
    event = rig.uow.store.webhook_events["evt-1"]
    assert (event.applied_at, event.failed_at is not None) == (None, True)
    assert rig.inbox.applied == []
    assert VEHICLE_ID not in rig.uow.store.telemetry


async def test_an_event_storage_cannot_take_is_503_not_500(rig: Rig) -> None:
    """When storing raises (a lost database), the answer is 503 so Smartcar retries."""
    rig.inbox.storage_down = True
    response = await rig.post_signed(odometer_event())
    assert response.status_code == 503
    assert response.json()["error"] == "unavailable"


async def test_bad_events_left_pending_do_not_block_start() -> None:
    """Events an earlier run stored with timestamps 1e20, NaN or in µs are settled at
    start-up (applied without the odometer) and the receiver starts serving."""
    uow = await fleet()
    clock = ManualClock(START)
    inbox = build_inbox(uow, clock)
    stamps = {"evt-huge": 1e20, "evt-nan": float("nan"), "evt-micro": 1_748_775_600_000_000}
    for event_id, stamp in stamps.items():
        payload = odometer_event(event_id)
        payload["data"]["signals"][0]["meta"]["oemUpdatedAt"] = stamp
        assert await inbox.receive(event_from(payload, received_at=START))
    async with serve_webhooks(inbox, management_token=Secret(TOKEN), clock=clock) as running:
        assert sorted(inbox.applied) == sorted(stamps)
        for event_id in stamps:
            assert uow.store.webhook_events[event_id].applied_at is not None
        assert running.port > 0
