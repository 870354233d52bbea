"""Smartcar's Vehicle API v2.0 routes: user, vehicle list, reads, lock/unlock, disconnect.

Paths are accepted with or without a trailing slash (the SDK asks for attributes at
`/v2.0/vehicles/{id}/`). Every known endpoint is counted in stats before anything else.
Successful data reads carry `SC-Data-Age` (when the car recorded the data), `SC-Fetched-At`
(now) and `SC-Unit-System`; attributes and VIN carry only `SC-Unit-System`.

Commands (`POST /security` with `{"action": "LOCK" | "UNLOCK"}`) wait `command_latency_s`,
wake a sleeping car (as a real wake-up does: commands are not refused with ASLEEP), and are
refused with 409 IN_MOTION while the car drives (LOCK and UNLOCK) and 409 DOOR_OPEN when
LOCK meets an open door. A command that succeeds sends a VEHICLE_STATE webhook event
(trigger `closure-islocked`) to the vehicle's verified webhooks. Reads of a sleeping car
are 409 ASLEEP, except attributes, VIN and permissions, which Smartcar answers without the
car.

`DELETE /vehicles/{id}/application` removes the connection between the token's user and the
vehicle; the user's tokens then get 401 on that vehicle.
"""

from __future__ import annotations

from aiohttp import web

from clients.simulator import admission, batch
from clients.simulator.delivery import WORLD, data_headers, deliver, json_response
from clients.simulator.error_bodies import (
    ASLEEP,
    DOOR_OPEN,
    IN_MOTION,
    RESOURCE_NOT_FOUND_PATH,
    VALIDATION_PARAMETER,
    VEHICLE_NOT_CAPABLE,
    ApiError,
)
from clients.simulator.readings import READ_ENDPOINTS, ReadEndpoint, recorded_at
from clients.simulator.world import World

COMMAND_PERMISSION = "control_security"
COMMAND_SUCCESS = {"message": "Successfully sent request to vehicle", "status": "success"}
_ACTIONS = ("LOCK", "UNLOCK")


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Vehicle API routes."""
    router.add_get(r"/v2.0/user{slash:/?}", get_user)
    router.add_get(r"/v2.0/vehicles{slash:/?}", list_vehicles)
    router.add_route("*", r"/v2.0/vehicles/{vehicle_id:[^/]+}{tail:(/.*)?}", vehicle_endpoint)


async def get_user(request: web.Request) -> web.StreamResponse:
    """`GET /v2.0/user`: the id of the token's Smartcar user."""
    world = request.app[WORLD]
    world.stats.count_request("user", method="GET", vehicle_id=None)
    grant = admission.user_grant(world, request)
    return json_response({"id": grant.user_id})


async def list_vehicles(request: web.Request) -> web.StreamResponse:
    """`GET /v2.0/vehicles?limit&offset`: the token's vehicles still connected."""
    world = request.app[WORLD]
    world.stats.count_request("vehicles", method="GET", vehicle_id=None)
    grant = admission.user_grant(world, request)
    limit, offset = admission.paging(request, default_limit=10)
    vehicle_ids = world.accounts.live_vehicles(grant)
    return json_response(
        {
            "vehicles": vehicle_ids[offset : offset + limit],
            "paging": {"count": len(vehicle_ids), "offset": offset},
        }
    )


async def vehicle_endpoint(request: web.Request) -> web.StreamResponse:
    """Dispatch `/v2.0/vehicles/{id}/…` by method and endpoint name."""
    world = request.app[WORLD]
    vehicle_id = request.match_info["vehicle_id"]
    name = request.match_info["tail"].strip("/") or "attributes"
    method = request.method
    if method == "GET" and name in READ_ENDPOINTS:
        world.stats.count_request(name, method=method, vehicle_id=vehicle_id)
        return await read(world, request, vehicle_id, READ_ENDPOINTS[name])
    handler = _OTHER_HANDLERS.get((method, name))
    if handler is None:
        raise ApiError(RESOURCE_NOT_FOUND_PATH)
    world.stats.count_request(name, method=method, vehicle_id=vehicle_id)
    return await handler(world, request, vehicle_id)


async def read(
    world: World, request: web.Request, vehicle_id: str, endpoint: ReadEndpoint
) -> web.StreamResponse:
    """Serve one data read through every admission step."""
    grant, vehicle = admission.vehicle_grant(world, request, vehicle_id)
    units = admission.units_of(request)
    admission.require_permission(grant, endpoint.permission)
    if not endpoint.capable(vehicle):
        raise ApiError(VEHICLE_NOT_CAPABLE)
    admission.take_vehicle_token(world, vehicle_id)
    fault = admission.take_fault(world, vehicle_id, endpoint.name)
    admission.bill(world, vehicle_id)
    await world.pause(world.config.read_latency_s)
    if endpoint.needs_awake and vehicle.asleep:
        raise ApiError(ASLEEP)
    now_s = world.clock.now_s()
    recorded_s = recorded_at(vehicle, endpoint, now_s) if endpoint.reports_data_age else None
    body = endpoint.reader(vehicle, recorded_s if recorded_s is not None else now_s, units)
    headers = data_headers(recorded_s=recorded_s, fetched_s=now_s, units=units)
    return await deliver(world, request, json_response(body, headers=headers), fault)


async def _permissions(world: World, request: web.Request, vehicle_id: str) -> web.Response:
    """`GET /vehicles/{id}/permissions`: the scopes granted, paged (not billed)."""
    grant, _ = admission.vehicle_grant(world, request, vehicle_id)
    limit, offset = admission.paging(request, default_limit=25)
    scopes = list(grant.scopes)
    body = {
        "permissions": scopes[offset : offset + limit],
        "paging": {"count": len(scopes), "offset": offset},
    }
    return json_response(body)


async def _command(world: World, request: web.Request, vehicle_id: str) -> web.Response:
    """`POST /vehicles/{id}/security`: LOCK or UNLOCK after `command_latency_s`."""
    grant, vehicle = admission.vehicle_grant(world, request, vehicle_id)
    action = (await admission.json_object(request)).get("action")
    if action not in _ACTIONS:
        raise ApiError(VALIDATION_PARAMETER)
    admission.require_permission(grant, COMMAND_PERMISSION)
    admission.take_vehicle_token(world, vehicle_id)
    fault = admission.take_fault(world, vehicle_id, "security")
    admission.bill(world, vehicle_id)
    world.stats.commands[str(action)] += 1
    await world.pause(world.config.command_latency_s)
    vehicle.asleep = False
    if vehicle.in_motion:
        raise ApiError(IN_MOTION)
    if action == "LOCK" and vehicle.door_open:
        raise ApiError(DOOR_OPEN)
    vehicle.set_lock(locked=action == "LOCK", now_s=world.clock.now_s())
    world.webhooks.vehicle_changed(vehicle, triggers=["closure-islocked"])
    return await deliver(world, request, json_response(COMMAND_SUCCESS), fault)


async def _disconnect(world: World, request: web.Request, vehicle_id: str) -> web.Response:
    """`DELETE /vehicles/{id}/application`: remove the user's connection to the vehicle."""
    grant, _ = admission.vehicle_grant(world, request, vehicle_id)
    world.accounts.delete_connections(vehicle_id=vehicle_id, user_id=grant.user_id)
    return json_response({"status": "success"})


_OTHER_HANDLERS = {
    ("GET", "permissions"): _permissions,
    ("POST", "security"): _command,
    ("POST", "batch"): batch.serve_batch,
    ("DELETE", "application"): _disconnect,
}
