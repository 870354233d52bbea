"""Smartcar's Management API (V3): webhooks (read) and subscriptions.

Served on the same port as everything else (`SMARTCAR_MANAGEMENT_API_V3_ORIGIN` = the
simulator's URL), under `/v3`:

- `GET /v3/webhooks` (filters `name`, `callbackUri`, `isEnabled`, `autoSubscribe`; pages of
  `page[size]` 50 by default, at most 100) and `GET /v3/webhooks/{id}`. Webhooks are made
  under `/sim/webhooks` (the dashboard's part: whether the Management API can create them
  is unsettled);
- `POST /v3/subscriptions` with `{"data": {"attributes": {"webhookId", "userId",
  "vehicleId"}}}` -> 202 `{"meta": {"message": "subscription creation in progress"}}`, and
  the webhook (when verified) gets a FIRST_DELIVERY VEHICLE_STATE of the vehicle. A webhook
  that does not exist, or a user without a connection to the vehicle, is 404; a vehicle
  already subscribed to the webhook is 409. A body that is not JSON is 400 BAD_REQUEST, one
  without the three ids 400 INVALID_INPUT_FORMAT;
- `GET /v3/subscriptions` (filters `userId`, `webhookId`, `vehicleId`, `vehicle.mode`;
  pages of 25 by default, at most 100), `GET /v3/subscriptions/{id}` and
  `DELETE /v3/subscriptions/{id}` (204).

The launch post's nested form (`/webhooks/{id}/subscriptions`) is not served: the API
reference pages use the flat `/subscriptions` resource. Application tokens only, no rate
limit, not billed (see `v3_admission`). Stats count `v3/webhooks` and `v3/subscriptions`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web

from clients.simulator import v3_admission, v3_paging, v3_payloads
from clients.simulator.delivery import WORLD, json_response
from clients.simulator.subscriptions import Subscription
from clients.simulator.v3_errors import (
    ALREADY_SUBSCRIBED,
    BAD_REQUEST,
    INVALID_INPUT_FORMAT,
    NOT_FOUND,
    V3Error,
)
from clients.simulator.webhooks import Webhook
from clients.simulator.world import World

WEBHOOK_PAGE = (50, 100)
SUBSCRIPTION_PAGE = (25, 100)
_IN_PROGRESS = {"meta": {"message": "subscription creation in progress"}}
_BOOLEANS = {"true": True, "false": False}


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Management API V3 routes."""
    router.add_get(r"/v3/webhooks{slash:/?}", list_webhooks)
    router.add_get(r"/v3/webhooks/{webhook_id}", get_webhook)
    router.add_post(r"/v3/subscriptions{slash:/?}", create_subscription)
    router.add_get(r"/v3/subscriptions{slash:/?}", list_subscriptions)
    router.add_get(r"/v3/subscriptions/{subscription_id}", get_subscription)
    router.add_delete(r"/v3/subscriptions/{subscription_id}", delete_subscription)


async def list_webhooks(request: web.Request) -> web.StreamResponse:
    """List the webhooks matching the filters, one page."""
    world = _admitted(request, "v3/webhooks")
    filters = v3_paging.filters_of(
        request.query, ("name", "callbackUri", "isEnabled", "autoSubscribe")
    )
    default_size, max_size = WEBHOOK_PAGE
    page = v3_paging.page_of(request.query, default_size=default_size, max_size=max_size)
    tests = [_attribute_is(name, value) for name, value in filters.items()]
    items = [v3_payloads.webhook_resource(hook) for hook in world.webhooks.all()]
    chosen = [item for item in items if all(test(item["attributes"]) for test in tests)]
    return json_response(v3_paging.collection(chosen, page=page, path="/webhooks", filters=filters))


async def get_webhook(request: web.Request) -> web.StreamResponse:
    """Return one webhook."""
    world = _admitted(request, "v3/webhooks")
    hook = _webhook(world, request.match_info["webhook_id"])
    return json_response({"data": v3_payloads.webhook_resource(hook)})


async def create_subscription(request: web.Request) -> web.StreamResponse:
    """Subscribe a user's vehicle to a webhook."""
    world = _admitted(request, "v3/subscriptions")
    webhook_id, user_id, vehicle_id = _subscription_ids(await request.read())
    hook = _webhook(world, webhook_id)
    connection = world.accounts.connections.get((user_id, vehicle_id))
    vehicle = world.garage.get(vehicle_id)
    if connection is None or vehicle is None:
        raise V3Error(NOT_FOUND, detail="The user has no connection to this vehicle.")
    if any(
        s.webhook_id == hook.id and s.vehicle_id == vehicle_id
        for s in world.subscriptions_in_force()
    ):
        raise V3Error(ALREADY_SUBSCRIBED)
    world.subscriptions.add(
        webhook_id=hook.id,
        user_id=user_id,
        vehicle_id=vehicle_id,
        connection_serial=connection.serial,
        now_s=world.clock.now_s(),
    )
    if hook.verified and world.config.management_token is not None:
        world.webhooks.emit(hook, world.webhooks.state_event(vehicle, triggers=[]))
    return json_response(_IN_PROGRESS, status=202)


async def list_subscriptions(request: web.Request) -> web.StreamResponse:
    """List the subscriptions in force matching the filters, one page."""
    world = _admitted(request, "v3/subscriptions")
    filters = v3_paging.filters_of(
        request.query, ("userId", "webhookId", "vehicleId", "vehicle.mode")
    )
    default_size, max_size = SUBSCRIPTION_PAGE
    page = v3_paging.page_of(request.query, default_size=default_size, max_size=max_size)
    keys = {"userId": "user_id", "webhookId": "webhook_id", "vehicleId": "vehicle_id"}
    wanted_mode = v3_paging.vehicle_mode(filters)
    chosen = [
        _subscription_resource(world, s)
        for s in world.subscriptions_in_force()
        if all(getattr(s, keys[name]) == value for name, value in filters.items() if name in keys)
        and wanted_mode == v3_payloads.MODE
    ]
    return json_response(
        v3_paging.collection(chosen, page=page, path="/subscriptions", filters=filters)
    )


async def get_subscription(request: web.Request) -> web.StreamResponse:
    """Return one subscription in force."""
    world = _admitted(request, "v3/subscriptions")
    subscription = _subscription(world, request.match_info["subscription_id"])
    return json_response({"data": _subscription_resource(world, subscription)})


async def delete_subscription(request: web.Request) -> web.StreamResponse:
    """Unsubscribe: the vehicle's events no longer go to the webhook by this subscription."""
    world = _admitted(request, "v3/subscriptions")
    subscription = _subscription(world, request.match_info["subscription_id"])
    world.subscriptions.remove(subscription.id)
    return web.Response(status=204)


def _admitted(request: web.Request, endpoint: str) -> World:
    """Count the request and admit its application token."""
    world = request.app[WORLD]
    world.stats.count_request(endpoint, method=request.method, vehicle_id=None)
    v3_admission.application(world, request, bucket=False)
    return world


def _webhook(world: World, webhook_id: str) -> Webhook:
    """Return the webhook with this id, or raise 404."""
    hook = world.webhooks.get(webhook_id)
    if hook is None:
        raise V3Error(NOT_FOUND, detail="There is no webhook with this id.")
    return hook


def _subscription(world: World, subscription_id: str) -> Subscription:
    """Return the subscription in force with this id, or raise 404."""
    for subscription in world.subscriptions_in_force():
        if subscription.id == subscription_id:
            return subscription
    raise V3Error(NOT_FOUND, detail="There is no subscription with this id.")


def _subscription_resource(world: World, subscription: Subscription) -> dict[str, Any]:
    """Return the resource of one subscription."""
    vehicle = world.garage.get(subscription.vehicle_id)
    assert vehicle is not None, "subscriptions in force name connected vehicles"
    return v3_payloads.subscription_resource(subscription, vehicle)


def _subscription_ids(raw_body: bytes) -> tuple[str, str, str]:
    """Return `(webhookId, userId, vehicleId)` from a create-subscription body, or raise 400."""
    try:
        body = json.loads(raw_body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise V3Error(BAD_REQUEST) from None
    data = body.get("data") if isinstance(body, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    ids = [
        attributes.get(name) if isinstance(attributes, dict) else None
        for name in ("webhookId", "userId", "vehicleId")
    ]
    if not all(isinstance(value, str) and value for value in ids):
        raise V3Error(
            INVALID_INPUT_FORMAT,
            detail="data.attributes must carry webhookId, userId and vehicleId as strings.",
        )
    webhook_id, user_id, vehicle_id = (str(value) for value in ids)
    return webhook_id, user_id, vehicle_id


def _attribute_is(name: str, value: str) -> Callable[[dict[str, Any]], bool]:
    """Return a test of a webhook's attributes for one filter, or raise 400."""
    if name in ("isEnabled", "autoSubscribe"):
        wanted = _BOOLEANS.get(value.lower())
        if wanted is None:
            raise V3Error(INVALID_INPUT_FORMAT, detail=f"filter[{name}] must be true or false.")
        return lambda attributes: attributes[name] is wanted
    return lambda attributes: attributes[name] == value
