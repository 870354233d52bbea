"""The JSON:API bodies of Smartcar API V3, built from the simulated world.

Shapes are Smartcar's documented examples; where pages disagree, the variant chosen is:

- `GET /vehicles/{id}` is wrapped in `data` (the current page; the November 2025 SDK
  fixture is unwrapped);
- `GET /vehicles/{id}/signals/{code}` answers the resource *unwrapped*, as Smartcar's
  get-signal example and its Node SDK fixture show it (JSON:API would wrap it in `data`);
- the signals list's `meta` is `{page, pageSize, totalCount}` with `links.previous` (the
  list-signals page); a live capture had `pageNumber` and no paging links. All of a car's
  signals come in one page: no way to page or select them is documented;
- collections of the Connections and Management APIs carry `meta` `{pageNumber, pageSize,
  totalCount}` and `links` `{self, first, last, next, prev}` (the spec-derived form live
  clients read; see `v3_paging`);
- signal timestamps (`meta.oemUpdatedAt`, `meta.retrievedAt`) are epoch milliseconds, as
  Smartcar's SDK fixture and its webhook pages give them (one REST example looks like
  seconds, a live capture has ISO-8601 strings); command and connection timestamps are
  ISO-8601, as their examples show;
- a signal that failed carries `attributes.status` `{"value": "ERROR", "error": {type,
  code, title, detail, resolution}}` and no body, and its `meta` only `retrievedAt`;
- links are paths without the `/v3` prefix (`/vehicles/{id}`), as the examples write them;
- every simulated vehicle reports `mode: "live"`: the simulator stands in for live
  Smartcar.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from clients.simulator.accounts import Connection
from clients.simulator.clock import format_iso_ms
from clients.simulator.signals import SIGNALS, SignalReading, SignalSpec
from clients.simulator.subscriptions import Subscription
from clients.simulator.v3_errors import V3ErrorKind
from clients.simulator.vehicles import VehicleState

if TYPE_CHECKING:
    from clients.simulator.webhooks import Webhook

MODE = "live"


def ms(epoch_s: float) -> int:
    """Return epoch seconds as epoch milliseconds."""
    return round(epoch_s * 1000)


def vehicle_attributes(state: VehicleState) -> dict[str, Any]:
    """Return a vehicle's `{make, model, year, powertrainType, mode}`."""
    spec = state.spec
    return {
        "make": spec.make,
        "model": spec.model,
        "year": spec.year,
        "powertrainType": str(spec.powertrain),
        "mode": MODE,
    }


def vehicle_resource(state: VehicleState) -> dict[str, Any]:
    """Return the vehicle resource (`GET /vehicles/{id}` wraps it in `data`)."""
    return {
        "id": state.id,
        "type": "vehicle",
        "attributes": vehicle_attributes(state),
        "links": {"self": f"/vehicles/{state.id}"},
    }


def signal_success(vehicle_id: str, reading: SignalReading, *, now_s: float) -> dict[str, Any]:
    """Return a signal resource that the car reported."""
    at_s = reading.recorded_s
    return _signal(
        vehicle_id,
        reading.spec,
        status={"value": "SUCCESS"},
        body=reading.body,
        meta={"retrievedAt": ms(now_s), "oemUpdatedAt": 0 if at_s is None else ms(at_s)},
    )


def signal_error(
    vehicle_id: str, spec: SignalSpec, kind: V3ErrorKind, *, now_s: float
) -> dict[str, Any]:
    """Return a signal resource that failed (the car cannot report it, or no permission)."""
    error = {
        "type": kind.type,
        "code": kind.code,
        "title": kind.title,
        "detail": kind.detail,
        "resolution": {"type": None if kind.resolution is None else kind.resolution.type},
    }
    status = {"value": "ERROR", "error": error}
    return _signal(vehicle_id, spec, status=status, body=None, meta={"retrievedAt": ms(now_s)})


def _signal(
    vehicle_id: str,
    spec: SignalSpec,
    *,
    status: dict[str, Any],
    body: dict[str, Any] | None,
    meta: dict[str, int],
) -> dict[str, Any]:
    """Return one signal resource."""
    attributes: dict[str, Any] = {**spec.ref(), "status": status}
    if body is not None:
        attributes["body"] = body
    return {
        "id": spec.code,
        "type": "signal",
        "attributes": attributes,
        "meta": meta,
        "links": {
            "self": f"/vehicles/{vehicle_id}/signals/{spec.code}",
            "vehicle": f"/vehicles/{vehicle_id}",
        },
    }


def signals_document(state: VehicleState, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the `GET /vehicles/{id}/signals` body: every signal in one page."""
    count = len(items)
    page = f"/vehicles/{state.id}/signals?page=1&pageSize={count}"
    return {
        "data": items,
        "meta": {"page": 1, "pageSize": count, "totalCount": count},
        "links": {"self": page, "first": page, "previous": None, "next": None, "last": page},
        "included": {"vehicle": vehicle_resource(state)},
    }


def command_execution(
    *,
    execution_id: str,
    command_type: str,
    started_s: float,
    completed_s: float,
    asynchronous: bool,
    parameters: dict[str, Any] | None,
) -> dict[str, Any]:
    """Return a successful command's body (`type: command-execution`)."""
    attributes: dict[str, Any] = {
        "commandType": command_type,
        "status": {"value": "SUCCESS"},
        "executionMode": "async" if asynchronous else "sync",
    }
    if parameters is not None:
        attributes["parameters"] = parameters
    return {
        "data": {
            "id": execution_id,
            "type": "command-execution",
            "attributes": attributes,
            "meta": {
                "executedAt": format_iso_ms(started_s),
                "completedAt": format_iso_ms(completed_s),
                "durationInSeconds": round(completed_s - started_s),
            },
        }
    }


def connection_id(seed: int, connection: Connection) -> str:
    """Return a connection's id: a UUID derived from the seed and the connection's serial,
    so it stays the same across restarts and changes when a vehicle is connected again."""
    return str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"smartcar-simulator:{seed}:connection:{connection.serial}")
    )


def connection_resource(seed: int, connection: Connection, state: VehicleState) -> dict[str, Any]:
    """Return a connection resource (Smartcar's get-connection example)."""
    identifier = connection_id(seed, connection)
    updated_s = connection.updated_at_s or connection.connected_at_s
    return {
        "id": identifier,
        "type": "connection",
        "attributes": {
            "permissions": list(connection.scopes),
            "vehicle": vehicle_attributes(state),
        },
        "relationships": {
            "vehicle": {
                "data": {"id": state.id, "type": "vehicle"},
                "links": {"related": f"/vehicles/{state.id}"},
            },
            "user": {"data": {"id": connection.user_id, "type": "user"}},
        },
        "meta": {
            "createdAt": format_iso_ms(connection.connected_at_s),
            "updatedAt": format_iso_ms(updated_s),
        },
        "links": {"self": f"/connections/{identifier}"},
    }


def webhook_resource(hook: Webhook) -> dict[str, Any]:
    """Return a webhook resource of the Management API (Smartcar's get-webhook example).

    `triggers` and `data` name every signal of the catalogue (a simulated webhook sends
    them all); `isEnabled` is true (the simulator has no disabled webhooks); a webhook
    registered for every vehicle is `autoSubscribe`."""
    refs = [{"group": spec.group, "name": spec.name, "code": spec.code} for spec in SIGNALS]
    return {
        "id": hook.id,
        "type": "webhook",
        "attributes": {
            "name": hook.name,
            "callbackUri": hook.callback_url,
            "isEnabled": True,
            "triggers": refs,
            "data": refs,
            "errorCallbackUri": None,
            "autoSubscribe": hook.vehicle_ids is None,
        },
        "links": {"self": f"/webhooks/{hook.id}"},
        "meta": {"createdAt": format_iso_ms(hook.created_at_s)},
    }


def subscription_resource(subscription: Subscription, state: VehicleState) -> dict[str, Any]:
    """Return a subscription resource (Smartcar's get-subscription example)."""
    return {
        "id": subscription.id,
        "type": "subscription",
        "attributes": {"vehicle": vehicle_attributes(state)},
        "meta": {
            "createdAt": format_iso_ms(subscription.created_at_s),
            "updatedAt": format_iso_ms(subscription.created_at_s),
        },
        "relationships": {
            "webhook": {"data": {"type": "webhook", "id": subscription.webhook_id}},
            "user": {"data": {"type": "user", "id": subscription.user_id}},
            "vehicle": {"data": {"type": "vehicle", "id": subscription.vehicle_id}},
        },
        "links": {"self": f"/subscriptions/{subscription.id}"},
    }
