"""The control API under `/sim/`: what tests, benchmarks and developers use to steer the world.

No authentication; JSON in and out. Invalid input is 400
`{"error": "invalid_request", "field": "<name>", "message": "…"}`; an unknown vehicle is 404
`{"error": "not_found", "field": "vehicle_id", …}`.

- `GET /sim/stats` -> the stats (see `stats`); `POST /sim/reset-stats` -> `{"status"}`.
- `GET /sim/clock` -> `{"now", "offset_s"}`; `POST /sim/clock` with
  `{"advance_seconds": N}` (N >= 0) moves simulated time forward and answers the same.
- `GET /sim/config` -> the settings; `POST /sim/config` with any of `config.RUNTIME_FIELDS`
  (latencies, `hang_s`, token lifetimes, `refresh_grace_s`, `vehicle_rate_limit` and
  `app_rate_limit` as `{"capacity", "refill_per_s"}` or null, `monthly_request_limit` or
  null, the V3 `app_token_ttl_s`, `v3_command_sync_limit_s` and
  `v3_signals_need_subscription`) applies them and answers the new settings.
- `GET /sim/vehicles` -> `{"vehicles": [...]}`; `GET /sim/vehicles/{id}` -> one vehicle.
- `POST /sim/vehicles/{id}/sleep` with `{"asleep": bool}` -> the vehicle; waking a car
  sends a VEHICLE_STATE webhook event (see `webhooks`).
- `POST /sim/vehicles/{id}/state` with `{"door_open"?, "in_motion"?, "locked"?,
  "plugged_in"?}` (bools; `plugged_in` only for cars with a traction battery, and pulling
  the plug stops charging) -> the vehicle.
- `POST /sim/vehicles/{id}/revoke` with `{"user_id"?}` (default: every user) ->
  `{"revoked": [{"userId", "vehicleId"}]}`.
- `GET /sim/faults` -> `{"faults": [...]}`; `POST /sim/faults` with `{"kind",
  "vehicle_id"?, "path"?, "count"?, "retry_after_s"?}` -> 201 and the armed fault (see
  `faults`); `DELETE /sim/faults` -> `{"cleared": n}`.
- `GET /sim/holds` -> `{"held", "total"}`: answers the `hold` fault keeps back now and
  ever; with `?total=N` it answers once N have been held (or after `wait_s`, default 10,
  with what there is); `POST /sim/holds/release` lets every held answer go ->
  `{"released": n}` (see `holds`).

Webhooks (`/sim/webhooks…`) and client secrets (`/sim/secrets`) have their own routes: see
`webhook_routes` and `secret_routes`.

`revoke` is the owner revoking access out of band (in the OEM's app): the vehicle's
connections disappear, its tokens get 401 AUTHENTICATION on it, and a refresh of a grant
with no vehicle left is `invalid_grant`. Resetting stats leaves the monthly allowance
counts alone (they are limits, not statistics).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from clients.simulator.clock import format_iso_ms
from clients.simulator.config import ConfigError
from clients.simulator.delivery import WORLD, json_response
from clients.simulator.faults import FaultError
from clients.simulator.stats import Stats
from clients.simulator.vehicles import VehicleState
from clients.simulator.world import World

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ControlError(Exception):
    """Invalid control input; rendered as 400 (or 404) naming the field."""

    def __init__(self, field: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the control routes."""
    router.add_get("/sim/stats", guarded(get_stats))
    router.add_post("/sim/reset-stats", guarded(reset_stats))
    router.add_get("/sim/clock", guarded(get_clock))
    router.add_post("/sim/clock", guarded(advance_clock))
    router.add_get("/sim/config", guarded(get_config))
    router.add_post("/sim/config", guarded(update_config))
    router.add_get("/sim/vehicles", guarded(list_vehicles))
    router.add_get("/sim/vehicles/{vehicle_id}", guarded(get_vehicle))
    router.add_post("/sim/vehicles/{vehicle_id}/sleep", guarded(set_asleep))
    router.add_post("/sim/vehicles/{vehicle_id}/state", guarded(set_state))
    router.add_post("/sim/vehicles/{vehicle_id}/revoke", guarded(revoke))
    router.add_get("/sim/faults", guarded(list_faults))
    router.add_post("/sim/faults", guarded(arm_fault))
    router.add_delete("/sim/faults", guarded(clear_faults))
    router.add_get("/sim/holds", guarded(get_holds))
    router.add_post("/sim/holds/release", guarded(release_holds))


def guarded(handler: _Handler) -> _Handler:
    """Wrap a control handler so ControlError becomes its JSON answer."""

    async def run(request: web.Request) -> web.StreamResponse:
        """Run the handler, rendering ControlError."""
        try:
            return await handler(request)
        except ControlError as exc:
            error = "not_found" if exc.status == 404 else "invalid_request"
            body = {"error": error, "field": exc.field, "message": exc.message}
            return json_response(body, status=exc.status)

    return run


async def get_stats(request: web.Request) -> web.StreamResponse:
    """Return the stats."""
    return json_response(request.app[WORLD].stats_json())


async def reset_stats(request: web.Request) -> web.StreamResponse:
    """Zero the stats."""
    request.app[WORLD].stats = Stats()
    return json_response({"status": "reset"})


async def get_clock(request: web.Request) -> web.StreamResponse:
    """Return simulated now."""
    return json_response(_clock_json(request.app[WORLD]))


async def advance_clock(request: web.Request) -> web.StreamResponse:
    """Move simulated time forward by `advance_seconds`."""
    world = request.app[WORLD]
    body = await json_body(request)
    seconds = body.get("advance_seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds >= 0:
        raise ControlError("advance_seconds", "must be a number of seconds, not negative")
    world.clock.advance(float(seconds))
    return json_response(_clock_json(world))


async def get_config(request: web.Request) -> web.StreamResponse:
    """Return the current settings."""
    return json_response(request.app[WORLD].config.to_json())


async def update_config(request: web.Request) -> web.StreamResponse:
    """Apply a partial settings update."""
    world = request.app[WORLD]
    try:
        config = world.reconfigure(await json_body(request))
    except ConfigError as exc:
        raise ControlError(exc.field, exc.message) from None
    return json_response(config.to_json())


async def list_vehicles(request: web.Request) -> web.StreamResponse:
    """Return every vehicle with its owner, connections and state."""
    return json_response({"vehicles": request.app[WORLD].vehicles_json()})


async def get_vehicle(request: web.Request) -> web.StreamResponse:
    """Return one vehicle."""
    world = request.app[WORLD]
    return json_response(_vehicle_json(world, _vehicle(world, request)))


async def set_asleep(request: web.Request) -> web.StreamResponse:
    """Put a vehicle to sleep or wake it."""
    world = request.app[WORLD]
    vehicle = _vehicle(world, request)
    asleep = _optional_bool(await json_body(request), "asleep")
    if asleep is None:
        raise ControlError("asleep", "must be true or false")
    woke = vehicle.asleep and not asleep
    vehicle.set_asleep(asleep=asleep, now_s=world.clock.now_s())
    if woke:
        world.webhooks.vehicle_changed(vehicle, triggers=["connectivitystatus-isasleep"])
    return json_response(_vehicle_json(world, vehicle))


async def set_state(request: web.Request) -> web.StreamResponse:
    """Open or close the door, start or stop driving, or set the lock directly."""
    world = request.app[WORLD]
    vehicle = _vehicle(world, request)
    body = await json_body(request)
    unknown = set(body) - {"door_open", "in_motion", "locked", "plugged_in"}
    if unknown:
        raise ControlError(sorted(unknown)[0], "unknown field")
    door_open, in_motion = _optional_bool(body, "door_open"), _optional_bool(body, "in_motion")
    locked, plugged_in = _optional_bool(body, "locked"), _optional_bool(body, "plugged_in")
    if plugged_in is not None and not vehicle.spec.powertrain.has_battery:
        raise ControlError("plugged_in", "the vehicle has no traction battery")
    now_s = world.clock.now_s()
    vehicle.set_state(door_open=door_open, in_motion=in_motion, now_s=now_s)
    if locked is not None:
        vehicle.set_lock(locked=locked, now_s=now_s)
    if plugged_in is not None:
        vehicle.set_plugged_in(plugged_in=plugged_in, now_s=now_s)
    return json_response(_vehicle_json(world, vehicle))


async def revoke(request: web.Request) -> web.StreamResponse:
    """Revoke the vehicle's connections out of band (one user's, or everyone's)."""
    world = request.app[WORLD]
    vehicle = _vehicle(world, request)
    user_id = (await json_body(request)).get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise ControlError("user_id", "must be a string")
    revoked = world.accounts.delete_connections(vehicle_id=vehicle.id, user_id=user_id)
    return json_response(
        {"revoked": [{"userId": c.user_id, "vehicleId": c.vehicle_id} for c in revoked]}
    )


async def list_faults(request: web.Request) -> web.StreamResponse:
    """Return the armed faults."""
    faults = request.app[WORLD].faults.armed()
    return json_response({"faults": [fault.to_json() for fault in faults]})


async def arm_fault(request: web.Request) -> web.StreamResponse:
    """Arm a fault."""
    world = request.app[WORLD]
    body = await json_body(request)
    vehicle_id = body.get("vehicle_id")
    if isinstance(vehicle_id, str) and world.garage.get(vehicle_id) is None:
        raise ControlError("vehicle_id", "no such vehicle", status=404)
    try:
        fault = world.faults.arm(body)
    except FaultError as exc:
        raise ControlError(exc.field, exc.message) from None
    return json_response(fault.to_json(), status=201)


async def clear_faults(request: web.Request) -> web.StreamResponse:
    """Disarm every fault."""
    return json_response({"cleared": request.app[WORLD].faults.clear()})


async def get_holds(request: web.Request) -> web.StreamResponse:
    """Return the held answers, once `total` of them have been held when it is given."""
    holds = request.app[WORLD].holds
    total = _query_number(request, "total")
    if total is not None:
        wait_s = _query_number(request, "wait_s")
        await holds.wait_for_total(int(total), timeout_s=10.0 if wait_s is None else wait_s)
    return json_response(holds.to_json())


async def release_holds(request: web.Request) -> web.StreamResponse:
    """Let every held answer go."""
    return json_response({"released": request.app[WORLD].holds.release()})


def _query_number(request: web.Request, name: str) -> float | None:
    """Return a non-negative number from the query string, None when absent."""
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ControlError(name, "must be a number") from None
    if not 0 <= value <= 3600:
        raise ControlError(name, "must be between 0 and 3600")
    return value


async def json_body(request: web.Request) -> dict[str, object]:
    """Return the JSON object body (an empty body is `{}`), or raise ControlError."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ControlError("body", "must be a JSON object") from None
    if not isinstance(body, dict):
        raise ControlError("body", "must be a JSON object")
    return body


def _optional_bool(body: dict[str, object], name: str) -> bool | None:
    """Return a boolean field, None when absent, or raise ControlError."""
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise ControlError(name, "must be true or false")


def _vehicle(world: World, request: web.Request) -> VehicleState:
    """Return the vehicle named in the path, or raise 404."""
    vehicle = world.garage.get(request.match_info["vehicle_id"])
    if vehicle is None:
        raise ControlError("vehicle_id", "no such vehicle", status=404)
    return vehicle


def _vehicle_json(world: World, vehicle: VehicleState) -> dict[str, object]:
    """Return one vehicle as `/sim/vehicles` lists it."""
    return vehicle.to_json(
        owner_user_id=world.accounts.owners.get(vehicle.id),
        connected_user_ids=world.accounts.users_of(vehicle.id),
    )


def _clock_json(world: World) -> dict[str, object]:
    """Return simulated now and the offset from real time."""
    return {"now": format_iso_ms(world.clock.now_s()), "offset_s": world.clock.offset_s}
