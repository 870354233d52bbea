"""The HTTP receiver for Smartcar webhooks: its own aiohttp server, `POST /webhooks/smartcar`.

    async with serve_webhooks(inbox, management_token=Secret(amt), clock=clock) as receiver:
        ...  # receiver.port, receiver.url; `await receiver.settled()` in tests

Each request, in order:

1. a body over 50 KB (Smartcar's maximum payload) is 413;
2. `SC-Signature` must be the HMAC-SHA256 hex of the raw body keyed with the application
   management token, compared in constant time (`hmac.compare_digest`): a wrong one is
   401 and nothing is stored;
3. the body must be a JSON object in UTF-8, nested at most `payload.MAX_DEPTH` deep (400
   otherwise). `NaN`, `Infinity` and numbers too large for a float (`1e400`) are kept as
   their literal text, a string: every store keeps it, and the signal parser
   (`gateway.edge.smartcar.signals`) rejects that value (it is not a number) while the
   event's other fields still apply;
4. VERIFY is answered 200 `{"challenge": <HMAC-SHA256 hex of data.challenge>}` and not
   stored. Smartcar signs every delivery, but its own receiver recipe answers VERIFY
   without checking a signature, so an unsigned VERIFY is answered too, with one guard:
   the challenge HMAC *is* the signature a body equal to the challenge would carry, so a
   challenge that parses as a JSON object (a forgeable event) is refused with 400, as is
   a challenge holding a lone surrogate (it has no UTF-8 form to sign);
5. any other event must be signed (401 when the header is missing), must carry `eventId`
   and `eventType` that storage keeps (400; `gateway.edge.smartcar.events.event_from`
   reads the envelope and dates the event `clock.now()`), and is stored through
   `WebhookInbox.receive` before the answer: 200 `{"status": "received"}`,
   `{"status": "failed", "reason": …}` when it was stored failed (text no store keeps
   elsewhere in the body: retrying would not help), or `{"status": "duplicate"}` for an
   eventId seen before (acknowledged, not stored again; applied only if it is still
   pending, as after an attempt whose storing outlasted its answer). If storing
   takes longer than `ack_timeout_s` (10 s, inside Smartcar's 15 s), or fails, the answer
   is 503 and Smartcar retries.

No input is answered 500. Stored events are applied in background tasks
(`WebhookInbox.apply`, serialised per vehicle; one that cannot be applied is marked
failed). Before listening, `serve_webhooks` applies what an earlier run left unapplied
(`drain_pending`, which marks failed what cannot be applied and goes on). On exit it stops
listening and gives applications in flight `grace_s` to finish before cancelling them; a
cancelled event stays pending and is applied at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import math
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from gateway.core import payload as payloads
from gateway.core.model import WebhookEvent
from gateway.core.ports import Clock
from gateway.core.secret import Secret
from gateway.core.webhooks import WebhookInbox
from gateway.edge.smartcar.events import VERIFY, MalformedEvent, event_from

WEBHOOK_PATH = "/webhooks/smartcar"
MAX_BODY_BYTES = 50 * 1024
SIGNATURE_HEADER = "SC-Signature"
DEFAULT_ACK_TIMEOUT_S = 10.0

_log = logging.getLogger(__name__)


def signature(management_token: Secret, message: bytes) -> str:
    """Return the HMAC-SHA256 hex digest of `message` keyed with the management token."""
    return hmac.new(management_token.reveal().encode(), message, hashlib.sha256).hexdigest()


def signature_matches(management_token: Secret, body: bytes, given: str) -> bool:
    """Tell, in constant time, whether `given` is the signature of `body`."""
    expected = signature(management_token, body).encode()
    # Header values may hold any byte: non-ASCII ones become "?" (and cannot match).
    return hmac.compare_digest(expected, given.strip().lower().encode("ascii", "replace"))


class WebhookReceiver:
    """The request handler and the background applications of one receiver."""

    def __init__(
        self,
        inbox: WebhookInbox,
        *,
        management_token: Secret,
        clock: Clock,
        ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
    ) -> None:
        self._inbox = inbox
        self._token = management_token
        self._clock = clock
        self._ack_timeout_s = ack_timeout_s
        self._tasks: set[asyncio.Task[None]] = set()

    def app(self) -> web.Application:
        """Return the aiohttp application serving `POST /webhooks/smartcar`."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(WEBHOOK_PATH, self.handle)
        return app

    async def handle(self, request: web.Request) -> web.Response:
        """Authenticate, store and acknowledge one delivery."""
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _error(413, "payload_too_large", f"the limit is {MAX_BODY_BYTES} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "payload_too_large", f"the limit is {MAX_BODY_BYTES} bytes")
        given = request.headers.get(SIGNATURE_HEADER)
        if given is not None and not signature_matches(self._token, body, given):
            return _error(401, "invalid_signature", "SC-Signature does not match the body")
        payload = _json_object(body)
        if payload is None:
            return _error(400, "invalid_json", "the body must be a JSON object in UTF-8")
        if payloads.too_deep(payload):
            return _error(400, "invalid_json", f"nested over {payloads.MAX_DEPTH} levels")
        if payload.get("eventType") == VERIFY:
            return self._verify(payload, signed=given is not None)
        if given is None:
            return _error(401, "missing_signature", "SC-Signature is required")
        try:
            event = event_from(payload, received_at=self._clock.now())
        except MalformedEvent as exc:
            return _error(400, "invalid_event", str(exc))
        try:
            async with asyncio.timeout(self._ack_timeout_s):
                stored = await self._inbox.receive(event)
        except TimeoutError:
            return _error(503, "unavailable", "the event could not be stored in time; retry")
        except Exception:  # noqa: BLE001 - not stored, so not acknowledged: Smartcar retries
            _log.exception("webhook event not stored", extra={"event_id": event.event_id})
            return _error(503, "unavailable", "the event could not be stored; retry")
        if not stored:
            # Stored before, perhaps by an attempt whose answer timed out after the commit
            # landed, so never applied: apply it now if it is still pending.
            self._apply_later(event)
            return web.json_response({"status": "duplicate"})
        if not event.pending:
            return web.json_response({"status": "failed", "reason": event.error})
        self._apply_later(event)
        return web.json_response({"status": "received"})

    def _verify(self, payload: Mapping[str, object], *, signed: bool) -> web.Response:
        """Answer Smartcar's VERIFY challenge."""
        data = payload.get("data")
        challenge = data.get("challenge") if isinstance(data, Mapping) else None
        if not isinstance(challenge, str) or not challenge:
            return _error(400, "invalid_event", "VERIFY needs data.challenge")
        try:
            message = challenge.encode()
        except UnicodeEncodeError:
            return _error(400, "invalid_event", "data.challenge holds a lone surrogate")
        if not signed and _json_object(message) is not None:
            return _error(400, "invalid_event", "an unsigned challenge must not be a JSON object")
        return web.json_response({"challenge": signature(self._token, message)})

    def _apply_later(self, event: WebhookEvent) -> None:
        """Apply a stored event in a background task."""
        task = asyncio.get_running_loop().create_task(self._apply(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _apply(self, event: WebhookEvent) -> None:
        # `apply` marks failed whatever it cannot apply; only cancellation leaves it pending.
        await self._inbox.apply(event)

    async def settled(self) -> None:
        """Wait until every application started so far has finished (a testing hook)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self, *, grace_s: float) -> None:
        """Give applications in flight `grace_s` to finish, then cancel the rest."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await self.settled()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@dataclass(frozen=True, slots=True)
class RunningReceiver:
    """A listening webhook receiver: where it is, and its handler (for `settled()`)."""

    host: str
    port: int
    receiver: WebhookReceiver

    @property
    def url(self) -> str:
        """Return the callback URL to register with Smartcar."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{WEBHOOK_PATH}"

    async def settled(self) -> None:
        """Wait until every event received so far has been applied."""
        await self.receiver.settled()


@asynccontextmanager
async def serve_webhooks(
    inbox: WebhookInbox,
    *,
    management_token: Secret,
    clock: Clock,
    host: str = "127.0.0.1",
    port: int = 0,
    ack_timeout_s: float = DEFAULT_ACK_TIMEOUT_S,
    grace_s: float = 5.0,
) -> AsyncIterator[RunningReceiver]:
    """Apply pending events, then receive webhooks on `host:port` (0: pick a free port)."""
    await inbox.drain_pending()
    receiver = WebhookReceiver(
        inbox, management_token=management_token, clock=clock, ack_timeout_s=ack_timeout_s
    )
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        yield RunningReceiver(host=host, port=bound_port, receiver=receiver)
    finally:
        await runner.cleanup()
        await receiver.close(grace_s=grace_s)


def _json_object(raw: bytes) -> dict[str, object] | None:
    """Return the body as a JSON object, or None (not JSON, not UTF-8, not an object).

    Non-finite numbers stay their literal text (see the module docstring)."""
    try:
        parsed = json.loads(
            raw.decode("utf-8"), parse_constant=_literal, parse_float=_finite_or_literal
        )
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return parsed if isinstance(parsed, dict) else None


def _literal(text: str) -> str:
    """Keep `NaN`, `Infinity` and `-Infinity` as the text they were."""
    return text


def _finite_or_literal(text: str) -> float | str:
    """Return a JSON number as a float, or as its text when no float holds it (1e400)."""
    value = float(text)
    return value if math.isfinite(value) else text


def _error(status: int, error: str, message: str) -> web.Response:
    return web.json_response({"error": error, "message": message}, status=status)
