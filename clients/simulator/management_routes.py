"""Smartcar's Management API: list and delete vehicle connections.

`DELETE /v2.0/management/connections/?vehicle_id=&user_id=` (with or without the trailing
slash, which the official SDK sends) removes the matching connections and answers
`{"connections": [{"userId", "vehicleId"}, …]}`: by vehicle (every user), by user (every
vehicle), or both (that one pair). At least one filter is required (400 VALIDATION:PARAMETER).
`GET` on the same path lists connections as the SDK's `get_connections` reads them:
`{"connections": [{"vehicleId", "userId", "connectedAt"}], "paging": {"cursor": null}}`.

Authentication is `Authorization: Basic base64("default:<management token>")`; a wrong or
missing one is 401 AUTHENTICATION (a v2 body: this is a v2 API, not OAuth). With
`management_token=None` any caller is accepted.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from aiohttp import web

from clients.simulator.clock import format_iso_ms
from clients.simulator.delivery import WORLD, json_response
from clients.simulator.error_bodies import AUTHENTICATION, VALIDATION_PARAMETER, ApiError
from clients.simulator.world import World

_PATH = r"/v2.0/management/connections{slash:/?}"


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Management API routes."""
    router.add_route("DELETE", _PATH, delete_connections)
    router.add_get(_PATH, list_connections)


def _authorized_filters(request: web.Request) -> tuple[World, str | None, str | None]:
    """Count the request, check the management token, and return the world and the filters."""
    world = request.app[WORLD]
    vehicle_id = request.query.get("vehicle_id") or None
    user_id = request.query.get("user_id") or None
    world.stats.count_request(
        "management/connections", method=request.method, vehicle_id=vehicle_id
    )
    _authenticate(world, request)
    return world, vehicle_id, user_id


async def delete_connections(request: web.Request) -> web.StreamResponse:
    """Delete connections by vehicle, by user, or both."""
    world, vehicle_id, user_id = _authorized_filters(request)
    if vehicle_id is None and user_id is None:
        raise ApiError(VALIDATION_PARAMETER)
    deleted = world.accounts.delete_connections(vehicle_id=vehicle_id, user_id=user_id)
    return json_response(
        {"connections": [{"userId": c.user_id, "vehicleId": c.vehicle_id} for c in deleted]}
    )


async def list_connections(request: web.Request) -> web.StreamResponse:
    """List connections, optionally filtered by vehicle and/or user."""
    world, vehicle_id, user_id = _authorized_filters(request)
    connections = [
        {
            "vehicleId": c.vehicle_id,
            "userId": c.user_id,
            "connectedAt": format_iso_ms(c.connected_at_s),
        }
        for c in world.accounts.connections.values()
        if (vehicle_id is None or c.vehicle_id == vehicle_id)
        and (user_id is None or c.user_id == user_id)
    ]
    return json_response({"connections": connections, "paging": {"cursor": None}})


def _authenticate(world: World, request: web.Request) -> None:
    """Check `Basic default:<management token>`, or raise 401 AUTHENTICATION."""
    expected = world.config.management_token
    if expected is None:
        return
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(AUTHENTICATION) from None
    username, _, token = decoded.partition(":")
    valid = hmac.compare_digest(token.encode(), expected.encode())
    if scheme.lower() != "basic" or username != "default" or not valid:
        raise ApiError(AUTHENTICATION)
