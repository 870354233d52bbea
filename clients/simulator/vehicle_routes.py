"""Smartcar's Vehicle API v2.0 routes: user, vehicle list, reads, lock/unlock, charging,
disconnect.

Paths are accepted with or without a trailing slash (the SDK asks for attributes at
`/v2.0/vehicles/{id}/`). Every known endpoint is counted in stats before anything else.
Successful data reads carry `SC-Data-Age` (when the car recorded the data), `SC-Fetched-At`
(now) and `SC-Unit-System`; attributes and VIN carry only `SC-Unit-System`.

Commands (`POST /security` with `{"action": "LOCK" | "UNLOCK"}`) wait `command_latency_s`,
wake a sleeping car (as a real wake-up does: commands are not refused with ASLEEP), and are
refused with 409 IN_MOTION while the car drives (LOCK and UNLOCK) and 409 DOOR_OPEN when
LOCK meets an open door. The charge commands (`POST /charge` with `{"action": "START" |
"STOP"}`, `POST /charge/limit` with `{"limit": 0.5-1}`, a fraction) need `control_charge`
and a car with a traction battery (else 501 VEHICLE_NOT_CAPABLE), and are refused as
`charging` says. A bad action or limit is 400 VALIDATION:PARAMETER; every refusal before
the car is reached (body, permission, capability, limits) is made before anything is
billed. A command that succeeds sends a VEHICLE_STATE webhook event (triggers: the signals
it changed) to the vehicle's verified webhooks. Reads of a sleeping car are 409 ASLEEP,
except attributes, VIN and permissions, which Smartcar answers without the car.

`DELETE /vehicles/{id}/application` removes the connection between the token's user and the
vehicle; the user's tokens then get 401 on that vehicle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from clients.simulator import admission, batch, charging
from clients.simulator.accounts import Grant
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
from clients.simulator.fleet import Powertrain
from clients.simulator.readings import READ_ENDPOINTS, ReadEndpoint, recorded_at
from clients.simulator.vehicles import VehicleState
from clients.simulator.world import World

COMMAND_PERMISSION = "control_security"
COMMAND_SUCCESS = {"message": "Successfully sent request to vehicle", "status": "success"}
_ACTIONS = ("LOCK", "UNLOCK")
_CHARGE_ACTIONS = ("START", "STOP")


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


Apply = Callable[[VehicleState, float], None]
"""Carry a command out on a car at a moment, or raise the car's refusal."""


@dataclass(frozen=True, kw_only=True)
class _Command:
    """One v2 command as the request asked for it."""

    endpoint: str
    """The endpoint it was sent to (`security`, `charge`, `charge/limit`): faults' name."""
    action: str
    """How stats count it under `commands` (`LOCK`, `CHARGE_START`, …)."""
    permission: str
    powertrains: frozenset[Powertrain]
    apply: Apply
    triggers: Iterable[str]


async def _command(world: World, request: web.Request, vehicle_id: str) -> web.Response:
    """`POST /vehicles/{id}/security`: LOCK or UNLOCK after `command_latency_s`."""
    admitted = admission.vehicle_grant(world, request, vehicle_id)
    action = (await admission.json_object(request)).get("action")
    if action not in _ACTIONS:
        raise ApiError(VALIDATION_PARAMETER)
    locking = action == "LOCK"

    def apply(vehicle: VehicleState, now_s: float) -> None:
        if vehicle.in_motion:
            raise ApiError(IN_MOTION)
        if locking and vehicle.door_open:
            raise ApiError(DOOR_OPEN)
        vehicle.set_lock(locked=locking, now_s=now_s)

    command = _Command(
        endpoint="security",
        action=str(action),
        permission=COMMAND_PERMISSION,
        powertrains=frozenset(Powertrain),
        apply=apply,
        triggers=("closure-islocked",),
    )
    return await _run(world, request, admitted, command)


async def _charge(world: World, request: web.Request, vehicle_id: str) -> web.Response:
    """`POST /vehicles/{id}/charge`: START or STOP charging after `command_latency_s`."""
    admitted = admission.vehicle_grant(world, request, vehicle_id)
    action = (await admission.json_object(request)).get("action")
    if action not in _CHARGE_ACTIONS:
        raise ApiError(VALIDATION_PARAMETER)
    command = _Command(
        endpoint="charge",
        action=f"CHARGE_{action}",
        permission=charging.PERMISSION,
        powertrains=charging.POWERTRAINS,
        apply=charging.start if action == "START" else charging.stop,
        triggers=charging.STATE_SIGNALS,
    )
    return await _run(world, request, admitted, command)


async def _charge_limit(world: World, request: web.Request, vehicle_id: str) -> web.Response:
    """`POST /vehicles/{id}/charge/limit`: set the limit (`{"limit": 0.5-1}`, a fraction,
    kept as a whole percent) after `command_latency_s`."""
    admitted = admission.vehicle_grant(world, request, vehicle_id)
    limit = (await admission.json_object(request)).get("limit")
    low, high = charging.MIN_LIMIT_PERCENT / 100, charging.MAX_LIMIT_PERCENT / 100
    if isinstance(limit, bool) or not isinstance(limit, int | float) or not low <= limit <= high:
        raise ApiError(VALIDATION_PARAMETER)
    percent = round(limit * 100)
    command = _Command(
        endpoint="charge/limit",
        action="CHARGE_SET_LIMIT",
        permission=charging.PERMISSION,
        powertrains=charging.POWERTRAINS,
        apply=lambda vehicle, now_s: charging.set_limit(vehicle, percent, now_s),
        triggers=charging.LIMIT_SIGNALS,
    )
    return await _run(world, request, admitted, command)


async def _run(
    world: World,
    request: web.Request,
    admitted: tuple[Grant, VehicleState],
    command: _Command,
) -> web.Response:
    """Check, bill and carry out a command of an admitted grant after `command_latency_s`
    (waking the car); answer success, or the car's refusal."""
    grant, vehicle = admitted
    vehicle_id = vehicle.id
    admission.require_permission(grant, command.permission)
    if vehicle.spec.powertrain not in command.powertrains:
        raise ApiError(VEHICLE_NOT_CAPABLE)
    admission.take_vehicle_token(world, vehicle_id)
    fault = admission.take_fault(world, vehicle_id, command.endpoint)
    admission.bill(world, vehicle_id)
    world.stats.commands[command.action] += 1
    await world.pause(world.config.command_latency_s)
    now_s = world.clock.now_s()
    vehicle.set_asleep(asleep=False, now_s=now_s)
    command.apply(vehicle, now_s)
    world.webhooks.vehicle_changed(vehicle, triggers=command.triggers)
    return await deliver(world, request, json_response(COMMAND_SUCCESS), fault)


async def _disconnect(world: World, request: web.Request, vehicle_id: str) -> web.Response:
    """`DELETE /vehicles/{id}/application`: remove the user's connection to the vehicle."""
    grant, _ = admission.vehicle_grant(world, request, vehicle_id)
    world.accounts.delete_connections(vehicle_id=vehicle_id, user_id=grant.user_id)
    return json_response({"status": "success"})


_OTHER_HANDLERS = {
    ("GET", "permissions"): _permissions,
    ("POST", "security"): _command,
    ("POST", "charge"): _charge,
    ("POST", "charge/limit"): _charge_limit,
    ("POST", "batch"): batch.serve_batch,
    ("DELETE", "application"): _disconnect,
}
