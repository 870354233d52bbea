"""Webhooks: the simulator delivers Smartcar v4 events to registered callback URLs.

Registering a webhook sends its callback a VERIFY event at once (one attempt, no retry, as
Smartcar does when a webhook is created): the callback must answer 200, `application/json`,
`{"challenge": <HMAC-SHA256 hex of the challenge keyed with the management token>}`. Only
a verified webhook receives vehicle events.

Every delivery is an HTTP POST of one event: `Content-Type: application/json`,
`User-Agent: Smartcar/4.0`, and `SC-Signature`, the HMAC-SHA256 hex digest of the exact body
bytes keyed with the simulator's `management_token` (VERIFY is signed too). A delivery
fails on a non-2xx status, no answer within `webhook_timeout_s` (Smartcar: 15 s), or a
connection error; Smartcar's schedule then retries it 25, 50 and 100 s after the failure
before dropping it (four attempts in all), each attempt with the same `eventId` and a new
`meta.deliveryId`. The waits are real time times `webhook_retry_scale`, not simulated time:
deliveries must happen without anyone moving the simulated clock, and tests shrink the
whole schedule to milliseconds with a scale of 0.001.

Events happen in these ways: `POST /sim/webhooks/{id}/events` (see `webhook_routes`), a
successful command (VEHICLE_STATE triggered by `closure-islocked` for LOCK/UNLOCK and the
charge signals for V3 charge commands), `/sim/vehicles/{id}/sleep` waking a car (triggered
by `connectivitystatus-isasleep`), and a new subscription (`POST /v3/subscriptions`: a
FIRST_DELIVERY VEHICLE_STATE); the automatic ones go to every verified webhook the vehicle
is subscribed to, by the webhook's own vehicle list or by a subscription in force (see
`subscriptions`).

Registering a callback URL that is already registered updates that webhook (same id, its
subscriptions kept) and verifies it again, as changing a webhook in Smartcar's dashboard
does. Webhooks are kept in the state file, without their delivery logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from clients.simulator import webhook_payloads as payloads
from clients.simulator.clock import format_iso_ms
from clients.simulator.vehicles import VehicleState

if TYPE_CHECKING:
    from clients.simulator.world import World

RETRY_DELAYS_S = (0.0, 25.0, 50.0, 100.0)
"""The wait before each of the four attempts (before scaling by `webhook_retry_scale`)."""
SIGNATURE_HEADER = "SC-Signature"
USER_AGENT = f"Smartcar/{payloads.VERSION}"


def sign(management_token: str, body: bytes) -> str:
    """Return the `SC-Signature` of `body`: HMAC-SHA256 hex keyed with the management token."""
    return hmac.new(management_token.encode(), body, hashlib.sha256).hexdigest()


class WebhookError(Exception):
    """A webhook request the simulator refuses; `field` names the culprit."""

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


@dataclass(kw_only=True)
class Attempt:
    """One delivery attempt of an event."""

    delivery_id: str
    number: int
    delay_s: float
    """How long the simulator waited before this attempt (scaled)."""
    elapsed_s: float
    """Real seconds since the event's first attempt."""
    sent_at_s: float
    status: int | None = None
    error: str | None = None

    @property
    def delivered(self) -> bool:
        """Tell whether the callback acknowledged this attempt with a 2xx."""
        return self.status is not None and 200 <= self.status < 300

    def to_json(self, event_id: str) -> dict[str, Any]:
        """Return the attempt as `GET /sim/webhooks/{id}/deliveries` lists it."""
        return {
            "eventId": event_id,
            "deliveryId": self.delivery_id,
            "attempt": self.number,
            "delay_s": self.delay_s,
            "elapsed_s": self.elapsed_s,
            "sent_at": format_iso_ms(self.sent_at_s),
            "outcome": "delivered" if self.delivered else "failed",
            "status": self.status,
            "error": self.error,
        }


@dataclass(kw_only=True)
class EventLog:
    """One event sent to one webhook, and how its delivery went."""

    event_id: str
    event_type: str
    vehicle_id: str
    outcome: str = "pending"
    """`pending` (being delivered), `delivered`, or `dropped` (every attempt failed)."""
    attempts: list[Attempt] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Return the event's summary."""
        return {
            "eventId": self.event_id,
            "eventType": self.event_type,
            "vehicleId": self.vehicle_id,
            "outcome": self.outcome,
            "attempts": len(self.attempts),
        }


@dataclass(kw_only=True)
class Webhook:
    """A registered callback: where events go, for which vehicles, and what happened."""

    id: str
    name: str
    callback_url: str
    vehicle_ids: frozenset[str] | None
    """The subscribed vehicles; None subscribes every vehicle."""
    created_at_s: float
    verified: bool = False
    verify_error: str | None = None
    events: list[EventLog] = field(default_factory=list)

    def subscribes(self, vehicle_id: str) -> bool:
        """Tell whether events of this vehicle go to this webhook."""
        return self.vehicle_ids is None or vehicle_id in self.vehicle_ids

    def to_json(self) -> dict[str, Any]:
        """Return the webhook as `/sim/webhooks` shows it."""
        return {
            "webhookId": self.id,
            "name": self.name,
            "callback_url": self.callback_url,
            "vehicle_ids": None if self.vehicle_ids is None else sorted(self.vehicle_ids),
            "verified": self.verified,
            "verify_error": self.verify_error,
        }


@dataclass(frozen=True, kw_only=True)
class _Answer:
    """What a callback answered (or why it did not)."""

    status: int | None = None
    error: str | None = None
    body: bytes = b""
    content_type: str = ""


class Webhooks:
    """The registered webhooks of one simulator and their deliveries in flight."""

    def __init__(self, world: World) -> None:
        self._world = world
        self._hooks: dict[str, Webhook] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None

    def get(self, webhook_id: str) -> Webhook | None:
        """Return the webhook with this id."""
        return self._hooks.get(webhook_id)

    def all(self) -> list[Webhook]:
        """Return every registered webhook."""
        return list(self._hooks.values())

    async def register(
        self, *, callback_url: str, name: str, vehicle_ids: Iterable[str] | None
    ) -> Webhook:
        """Register a webhook and verify its callback at once (the answer says if it passed)."""
        self._token()
        chosen = None if vehicle_ids is None else frozenset(vehicle_ids)
        hook = next((h for h in self._hooks.values() if h.callback_url == callback_url), None)
        if hook is None:
            hook = Webhook(
                id=str(uuid.uuid4()),
                name=name,
                callback_url=callback_url,
                vehicle_ids=chosen,
                created_at_s=self._world.clock.now_s(),
            )
            self._hooks[hook.id] = hook
        else:
            hook.name, hook.vehicle_ids = name, chosen
        hook.verified, hook.verify_error = await self._verify(hook)
        return hook

    def delete(self, webhook_id: str) -> bool:
        """Remove a webhook; its deliveries in flight stop before their next attempt."""
        return self._hooks.pop(webhook_id, None) is not None

    def emit(self, hook: Webhook, event: dict[str, Any]) -> EventLog:
        """Start delivering `event` to `hook` in the background; return its log."""
        log = EventLog(
            event_id=event["eventId"], event_type=event["eventType"], vehicle_id=event["vehicleId"]
        )
        hook.events.append(log)
        task = asyncio.get_running_loop().create_task(self._deliver(hook, event, log))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return log

    def delivers_to(self, hook: Webhook, vehicle_id: str) -> bool:
        """Tell whether the vehicle's events go to `hook`: by the webhook's own vehicle
        list, or by a subscription in force."""
        if hook.subscribes(vehicle_id):
            return True
        return any(
            s.webhook_id == hook.id and s.vehicle_id == vehicle_id
            for s in self._world.subscriptions_in_force()
        )

    def subscribed(self, vehicle_id: str) -> bool:
        """Tell whether some verified webhook receives the vehicle's events."""
        return any(hook.verified and self.delivers_to(hook, vehicle_id) for hook in self.all())

    def vehicle_changed(self, state: VehicleState, *, triggers: Iterable[str]) -> None:
        """Send a VEHICLE_STATE of `state` to every verified webhook subscribed to it."""
        if self._world.config.management_token is None:
            return
        codes = list(triggers)
        for hook in self.all():
            if hook.verified and self.delivers_to(hook, state.id):
                self.emit(hook, self.state_event(state, triggers=codes))

    def state_event(self, state: VehicleState, **options: Any) -> dict[str, Any]:
        """Return a VEHICLE_STATE event of `state` now (options: see `vehicle_state`)."""
        world = self._world
        user_id = world.accounts.owners.get(state.id)
        return payloads.vehicle_state(state, user_id=user_id, now_s=world.clock.now_s(), **options)

    def to_json(self) -> list[dict[str, Any]]:
        """Return the registered webhooks as a restart needs them (no delivery logs)."""
        return [
            {
                "id": hook.id,
                "name": hook.name,
                "callback_url": hook.callback_url,
                "vehicle_ids": None if hook.vehicle_ids is None else sorted(hook.vehicle_ids),
                "created_at_s": hook.created_at_s,
                "verified": hook.verified,
                "verify_error": hook.verify_error,
            }
            for hook in self._hooks.values()
        ]

    def restore(self, data: list[dict[str, Any]]) -> None:
        """Register again the webhooks `to_json` returned (raises KeyError/TypeError/
        ValueError on a malformed description)."""
        for item in data:
            vehicle_ids = item["vehicle_ids"]
            error = item["verify_error"]
            hook = Webhook(
                id=str(item["id"]),
                name=str(item["name"]),
                callback_url=str(item["callback_url"]),
                vehicle_ids=None if vehicle_ids is None else frozenset(map(str, vehicle_ids)),
                created_at_s=float(item["created_at_s"]),
                verified=bool(item["verified"]),
                verify_error=None if error is None else str(error),
            )
            self._hooks[hook.id] = hook

    async def close(self) -> None:
        """Cancel deliveries in flight and close the HTTP session."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _token(self) -> str:
        """Return the management token that signs deliveries, or refuse."""
        token = self._world.config.management_token
        if token is None:
            raise WebhookError(
                "management_token", "the simulator has none: webhooks cannot be signed", status=409
            )
        return token

    async def _verify(self, hook: Webhook) -> tuple[bool, str | None]:
        """Send VERIFY once; tell whether the callback answered the challenge correctly."""
        challenge = secrets.token_hex(16)
        _, answer = await self._post(hook, payloads.verify(challenge))
        if answer.status != 200:
            return False, answer.error or f"answered HTTP {answer.status}, not 200"
        if answer.content_type != "application/json":
            return False, f"answered {answer.content_type or 'no content type'}, not JSON"
        try:
            body = json.loads(answer.body)
        except (ValueError, UnicodeDecodeError):
            return False, "answered a body that is not JSON"
        given = body.get("challenge") if isinstance(body, dict) else None
        expected = sign(self._token(), challenge.encode())
        if not isinstance(given, str) or not hmac.compare_digest(given, expected):
            return False, "answered the wrong challenge HMAC"
        return True, None

    async def _deliver(self, hook: Webhook, event: dict[str, Any], log: EventLog) -> None:
        """Attempt the delivery on Smartcar's retry schedule; drop it after the last failure."""
        world = self._world
        started = time.monotonic()
        for number, base_delay_s in enumerate(RETRY_DELAYS_S, start=1):
            delay_s = base_delay_s * world.config.webhook_retry_scale
            await world.pause(delay_s)
            if world.stopping.is_set() or self.get(hook.id) is not hook:
                return
            elapsed_s, sent_at_s = time.monotonic() - started, world.clock.now_s()
            delivery_id, answer = await self._post(hook, event)
            attempt = Attempt(
                delivery_id=delivery_id,
                number=number,
                delay_s=delay_s,
                elapsed_s=elapsed_s,
                sent_at_s=sent_at_s,
                status=answer.status,
                error=answer.error,
            )
            log.attempts.append(attempt)
            if attempt.delivered:
                log.outcome = "delivered"
                world.stats.webhooks["delivered"] += 1
                return
            world.stats.webhooks["failed_attempts"] += 1
        log.outcome = "dropped"
        world.stats.webhooks["dropped"] += 1

    async def _post(self, hook: Webhook, event: dict[str, Any]) -> tuple[str, _Answer]:
        """POST one delivery of `event`; return its fresh deliveryId and what came back."""
        world = self._world
        body = payloads.with_meta(
            event, webhook_id=hook.id, webhook_name=hook.name, now_s=world.clock.now_s()
        )
        data = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            SIGNATURE_HEADER: sign(self._token(), data),
        }
        timeout_s = world.config.webhook_timeout_s
        delivery_id: str = body["meta"]["deliveryId"]
        try:
            async with self._client().post(
                hook.callback_url,
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
                allow_redirects=False,
            ) as response:
                content = await response.read()
                answer = _Answer(
                    status=response.status, body=content, content_type=response.content_type
                )
        except TimeoutError:
            answer = _Answer(error=f"no answer within {timeout_s} s")
        except aiohttp.ClientError as exc:
            answer = _Answer(error=f"{type(exc).__name__}: {exc}")
        return delivery_id, answer

    def _client(self) -> aiohttp.ClientSession:
        """Return the HTTP session, made on first use (on the server's loop)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session
