"""The control routes of webhooks under `/sim/webhooks` (errors as in `control_routes`).

- `POST /sim/webhooks` with `{"callback_url", "vehicle_ids"?: [id, …] | "all", "name"?}`
  registers a webhook (default: every vehicle; the same callback URL again updates that
  webhook), sends its callback VERIFY, and answers 201
  `{"webhookId", "name", "callback_url", "vehicle_ids", "verified", "verify_error"}`.
  Without a `management_token` the simulator cannot sign: 409.
- `GET /sim/webhooks` -> `{"webhooks": [...]}`; `GET /sim/webhooks/{id}` -> one webhook;
  `DELETE /sim/webhooks/{id}` -> `{"deleted": id}` (deliveries in flight stop).
- `POST /sim/webhooks/{id}/events` with `{"vehicle_id", "type": "VEHICLE_STATE" |
  "VEHICLE_ERROR", "signals"?: {code: body}, "recorded_at"?: ISO-8601, "signal_meta"?:
  {code: {key: value}}, "error"?: {"type", "code", "state"?, "description"?, …}}` starts
  delivering one event now and answers 202 `{"eventId", "eventType", "vehicleId"}`.
  VEHICLE_STATE carries every signal of the car (see `webhook_payloads`); `signals`
  replaces or adds bodies by code (and names the triggers), `recorded_at` backdates every
  `oemUpdatedAt`, `signal_meta` sets keys of those signals' `meta` as given (a faulty OEM
  timestamp such as 1e20 or microseconds, to test receivers). VEHICLE_ERROR carries `error`
  (default VEHICLE_STATE:UNREACHABLE). An unverified webhook, or a vehicle it is not
  subscribed to (by its vehicle list or a V3 subscription), is 409.
- `GET /sim/webhooks/{id}/deliveries` -> `{"events": [{"eventId", "eventType", "vehicleId",
  "outcome", "attempts"}], "deliveries": [{"eventId", "deliveryId", "attempt", "delay_s",
  "elapsed_s", "sent_at", "outcome", "status", "error"}]}`, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from clients.simulator import webhook_payloads as payloads
from clients.simulator.control_routes import ControlError, guarded, json_body
from clients.simulator.delivery import WORLD, json_response
from clients.simulator.webhooks import Webhook, WebhookError
from clients.simulator.world import World

EVENT_TYPES = ("VEHICLE_STATE", "VEHICLE_ERROR")
DEFAULT_ERROR = {
    "type": "VEHICLE_STATE",
    "code": "UNREACHABLE",
    "description": "The vehicle is not connected to the internet.",
    "resolution": {"type": "RETRY_LATER"},
}


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the webhook control routes."""
    router.add_get("/sim/webhooks", guarded(list_webhooks))
    router.add_post("/sim/webhooks", guarded(register))
    router.add_get("/sim/webhooks/{webhook_id}", guarded(get_webhook))
    router.add_delete("/sim/webhooks/{webhook_id}", guarded(delete_webhook))
    router.add_post("/sim/webhooks/{webhook_id}/events", guarded(trigger))
    router.add_get("/sim/webhooks/{webhook_id}/deliveries", guarded(deliveries))


async def list_webhooks(request: web.Request) -> web.StreamResponse:
    """Return every webhook."""
    hooks = request.app[WORLD].webhooks.all()
    return json_response({"webhooks": [hook.to_json() for hook in hooks]})


async def register(request: web.Request) -> web.StreamResponse:
    """Register a webhook and verify its callback."""
    world = request.app[WORLD]
    body = await json_body(request)
    callback_url = _callback_url(body.get("callback_url"))
    vehicle_ids = _vehicle_ids(world, body.get("vehicle_ids", "all"))
    name = body.get("name", "Simulated webhook")
    if not isinstance(name, str):
        raise ControlError("name", "must be a string")
    try:
        hook = await world.webhooks.register(
            callback_url=callback_url, name=name, vehicle_ids=vehicle_ids
        )
    except WebhookError as exc:
        raise ControlError(exc.field, exc.message, status=exc.status) from None
    return json_response(hook.to_json(), status=201)


async def get_webhook(request: web.Request) -> web.StreamResponse:
    """Return one webhook."""
    return json_response(_webhook(request).to_json())


async def delete_webhook(request: web.Request) -> web.StreamResponse:
    """Remove a webhook."""
    hook = _webhook(request)
    request.app[WORLD].webhooks.delete(hook.id)
    return json_response({"deleted": hook.id})


async def trigger(request: web.Request) -> web.StreamResponse:
    """Start delivering one event to the webhook now."""
    world = request.app[WORLD]
    hook = _webhook(request)
    body = await json_body(request)
    vehicle_id = body.get("vehicle_id")
    state = world.garage.get(vehicle_id) if isinstance(vehicle_id, str) else None
    if state is None:
        raise ControlError("vehicle_id", "no such vehicle", status=404)
    if not hook.verified:
        raise ControlError("webhookId", "the webhook is not verified", status=409)
    if not world.webhooks.delivers_to(hook, state.id):
        raise ControlError("vehicle_id", "the webhook is not subscribed to it", status=409)
    kind = body.get("type")
    if kind == "VEHICLE_STATE":
        signals = _signals(body.get("signals"))
        event = world.webhooks.state_event(
            state,
            triggers=list(signals),
            overrides=signals,
            recorded_s=_recorded_s(body.get("recorded_at")),
            signal_meta=_signal_meta(body.get("signal_meta")),
        )
    elif kind == "VEHICLE_ERROR":
        error = _error(body.get("error", DEFAULT_ERROR))
        user_id = world.accounts.owners.get(state.id)
        event = payloads.vehicle_error(state, user_id=user_id, error=error)
    else:
        raise ControlError("type", f"must be one of {', '.join(EVENT_TYPES)}")
    log = world.webhooks.emit(hook, event)
    answer = {"eventId": log.event_id, "eventType": log.event_type, "vehicleId": log.vehicle_id}
    return json_response(answer, status=202)


async def deliveries(request: web.Request) -> web.StreamResponse:
    """Return the webhook's events and every delivery attempt."""
    hook = _webhook(request)
    attempts = [a.to_json(log.event_id) for log in hook.events for a in log.attempts]
    attempts.sort(key=lambda attempt: (attempt["sent_at"], attempt["attempt"]))
    events = [log.to_json() for log in hook.events]
    return json_response({"events": events, "deliveries": attempts})


def _webhook(request: web.Request) -> Webhook:
    """Return the webhook named in the path, or raise 404."""
    hook = request.app[WORLD].webhooks.get(request.match_info["webhook_id"])
    if hook is None:
        raise ControlError("webhookId", "no such webhook", status=404)
    return hook


def _callback_url(value: object) -> str:
    """Return an absolute http(s) URL, or raise ControlError."""
    try:
        url = urlsplit(value) if isinstance(value, str) else None
    except ValueError:
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.hostname:
        raise ControlError("callback_url", "must be an absolute http(s) URL")
    return str(value)


def _vehicle_ids(world: World, value: object) -> list[str] | None:
    """Return the subscribed vehicle ids (None: all), or raise ControlError."""
    if value == "all" or value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ControlError("vehicle_ids", 'must be a list of vehicle ids or "all"')
    unknown = [v for v in value if world.garage.get(v) is None]
    if unknown:
        raise ControlError("vehicle_ids", f"no such vehicle: {unknown[0]}", status=404)
    return list(value)


def _signals(value: object) -> dict[str, Mapping[str, Any]]:
    """Return signal bodies by code, or raise ControlError."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(b, dict) for b in value.values()):
        raise ControlError("signals", "must map signal codes to body objects")
    return value


def _signal_meta(value: object) -> dict[str, Mapping[str, Any]]:
    """Return `meta` keys by signal code, or raise ControlError."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(m, dict) for m in value.values()):
        raise ControlError("signal_meta", "must map signal codes to meta objects")
    return value


def _recorded_s(value: object) -> float | None:
    """Return an ISO-8601 time as epoch seconds, or raise ControlError."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ControlError("recorded_at", "must be an ISO-8601 time with a timezone")
    return moment.timestamp()


def _error(value: object) -> dict[str, Any]:
    """Return a VEHICLE_ERROR error object, or raise ControlError."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ControlError("error", "must be an object with a string type (and code)")
    return value
