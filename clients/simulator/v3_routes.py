"""Smartcar's Vehicle API V3 routes: a vehicle, its signals, and commands.

- `GET /v3/vehicles/{id}` -> `{"data": <vehicle>}` (see `v3_payloads`);
- `GET /v3/vehicles/{id}/signals` -> every signal of the catalogue (see `signals`) in one
  JSON:API page; a signal the car cannot report (fuel on an EV) or the caller may not read
  is an ERROR item inside the 200, never a failed call;
- `GET /v3/vehicles/{id}/signals/{code}` -> that signal, unwrapped (ERROR items as in the
  list); a code outside the catalogue is 404;
- `POST /v3/vehicles/{id}/commands/<group>/<action>` -> see `v3_commands`; a path that is
  no command is 404.

Admission is `v3_admission` (bearer, `sc-user-id`, access), then the same steps as v2 (see
`admission`): unit system (`sc-unit-system`, default metric), permission and capability
(commands), the per-vehicle bucket, injected faults, the monthly allowance, latency.
Billing: each signals call (list or single) is one billed request, however many signals it
returns (live users count "a /signals line" as one call); a command is one; `GET
/vehicles/{id}` is not billed and takes no per-vehicle token (it does not reach the car).

Signals are Smartcar's stored view, so a sleeping car is still read: its values are those
of its last report before it fell asleep (`meta.oemUpdatedAt` says how old), with
`connectivitystatus-isasleep` true. The `asleep` fault still answers 409
VEHICLE_STATE:ASLEEP. A command wakes a sleeping car, as on v2. With
`v3_signals_need_subscription`, a car no verified webhook is subscribed to has no stored
signals: the list is empty (200, `totalCount` 0, as one live user saw; another saw 404)
and a single signal is 404.

A command whose latency (`command_latency_s`) reaches `v3_command_sync_limit_s` is
long-running: the 202 status and headers go out at once and the outcome follows on the
same connection when the command completes, a `command-execution` body (`executionMode`
`async`) or, when the car refused, the `errors[]` body (Smartcar: "A 202 means the command
is in process but is long-running. Always read the response body").

Stats and fault paths: `v3/vehicle`, `v3/signals`, `v3/signal` (one code) and
`v3/commands/<group>/<action>`.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from typing import Any

from aiohttp import web

from clients.simulator import admission, v3_admission, v3_payloads
from clients.simulator.delivery import WORLD, deliver, json_response, request_id, reset_connection
from clients.simulator.error_bodies import PERMISSION, VEHICLE_NOT_CAPABLE, ApiError
from clients.simulator.faults import Fault, FaultKind
from clients.simulator.readings import Units
from clients.simulator.signals import SIGNALS, SIGNALS_BY_CODE, SignalSpec, read
from clients.simulator.v3_admission import Caller
from clients.simulator.v3_commands import COMMANDS, Command, Parameters
from clients.simulator.v3_errors import NOT_FOUND, V3Error, V3ErrorKind, from_v2
from clients.simulator.vehicles import VehicleState
from clients.simulator.world import World

_NOT_PERMITTED = from_v2(PERMISSION)
_NOT_CAPABLE = from_v2(VEHICLE_NOT_CAPABLE)


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Vehicle API V3 routes."""
    router.add_get(r"/v3/vehicles/{vehicle_id}{slash:/?}", get_vehicle)
    router.add_get(r"/v3/vehicles/{vehicle_id}/signals{slash:/?}", list_signals)
    router.add_get(r"/v3/vehicles/{vehicle_id}/signals/{code}", get_signal)
    router.add_post(r"/v3/vehicles/{vehicle_id}/commands/{command:.+}", command)


async def get_vehicle(request: web.Request) -> web.StreamResponse:
    """`GET /v3/vehicles/{id}`: make, model, year, powertrain and mode (not billed)."""
    world = request.app[WORLD]
    vehicle_id = request.match_info["vehicle_id"]
    world.stats.count_request("v3/vehicle", method="GET", vehicle_id=vehicle_id)
    vehicle = v3_admission.visible_vehicle(world, request, vehicle_id)
    fault = admission.take_fault(world, vehicle_id, "v3/vehicle")
    body = {"data": v3_payloads.vehicle_resource(vehicle)}
    return await deliver(world, request, json_response(body), fault)


async def list_signals(request: web.Request) -> web.StreamResponse:
    """`GET /v3/vehicles/{id}/signals`: every signal, one billed request."""
    world = request.app[WORLD]
    vehicle_id = request.match_info["vehicle_id"]
    world.stats.count_request("v3/signals", method="GET", vehicle_id=vehicle_id)
    caller, vehicle = v3_admission.vehicle_caller(world, request, vehicle_id)
    units = admission.units_of(request)
    fault = await _admit_read(world, vehicle_id, "v3/signals")
    now_s = world.clock.now_s()
    items = []
    if _has_stored_signals(world, vehicle):
        items = [_item(vehicle, spec, caller, now_s=now_s, units=units) for spec in SIGNALS]
    body = v3_payloads.signals_document(vehicle, items)
    return await deliver(world, request, json_response(body), fault)


async def get_signal(request: web.Request) -> web.StreamResponse:
    """`GET /v3/vehicles/{id}/signals/{code}`: one signal, one billed request."""
    world = request.app[WORLD]
    vehicle_id = request.match_info["vehicle_id"]
    world.stats.count_request("v3/signal", method="GET", vehicle_id=vehicle_id)
    caller, vehicle = v3_admission.vehicle_caller(world, request, vehicle_id)
    units = admission.units_of(request)
    spec = SIGNALS_BY_CODE.get(request.match_info["code"])
    if spec is None or not _has_stored_signals(world, vehicle):
        raise V3Error(NOT_FOUND, detail="The vehicle has no signal with this code.")
    fault = await _admit_read(world, vehicle_id, "v3/signal")
    body = _item(vehicle, spec, caller, now_s=world.clock.now_s(), units=units)
    return await deliver(world, request, json_response(body), fault)


async def _admit_read(world: World, vehicle_id: str, endpoint: str) -> Fault | None:
    """Take the vehicle's bucket token, spend a fault, bill, and wait the read latency;
    return a transport fault to apply to the answer."""
    admission.take_vehicle_token(world, vehicle_id)
    fault = admission.take_fault(world, vehicle_id, endpoint)
    admission.bill(world, vehicle_id)
    await world.pause(world.config.read_latency_s)
    return fault


def _has_stored_signals(world: World, vehicle: VehicleState) -> bool:
    """Tell whether Smartcar holds signals of the car (always, unless the option asks for a
    subscription first)."""
    if not world.config.v3_signals_need_subscription:
        return True
    return world.webhooks.subscribed(vehicle.id)


def _item(
    vehicle: VehicleState, spec: SignalSpec, caller: Caller, *, now_s: float, units: Units
) -> dict[str, Any]:
    """Return one signal resource: its reading, or why there is none."""
    failure: V3ErrorKind | None = None
    if spec.permission not in caller.scopes:
        failure = _NOT_PERMITTED
    elif not spec.capable(vehicle):
        failure = _NOT_CAPABLE
    if failure is not None:
        return v3_payloads.signal_error(vehicle.id, spec, failure, now_s=now_s)
    reading = read(vehicle, spec, now_s=now_s, units=units)
    return v3_payloads.signal_success(vehicle.id, reading, now_s=now_s)


async def command(request: web.Request) -> web.StreamResponse:
    """`POST /v3/vehicles/{id}/commands/…`: carry the command out after `command_latency_s`."""
    world = request.app[WORLD]
    vehicle_id = request.match_info["vehicle_id"]
    found = COMMANDS.get(request.match_info["command"].strip("/"))
    if found is None:
        raise V3Error(NOT_FOUND, detail="There is no such command.")
    world.stats.count_request(found.endpoint, method="POST", vehicle_id=vehicle_id)
    caller, vehicle = v3_admission.vehicle_caller(world, request, vehicle_id)
    parameters = found.parameters(await request.read())
    caller.require(found.permission)
    if not found.capable(vehicle):
        raise ApiError(VEHICLE_NOT_CAPABLE)
    admission.take_vehicle_token(world, vehicle_id)
    fault = admission.take_fault(world, vehicle_id, found.endpoint)
    admission.bill(world, vehicle_id)
    world.stats.commands[found.action] += 1
    config = world.config
    if config.command_latency_s >= config.v3_command_sync_limit_s:
        return await _long_running(world, request, found, vehicle, parameters, fault)
    body = await _execute(world, found, vehicle, parameters, asynchronous=False)
    return await deliver(world, request, json_response(body), fault)


async def _execute(
    world: World,
    found: Command,
    vehicle: VehicleState,
    parameters: Parameters | None,
    *,
    asynchronous: bool,
) -> dict[str, Any]:
    """Wait the command's latency, wake the car, carry the command out, tell the webhooks;
    return the command-execution body (or raise the car's refusal)."""
    started_s = world.clock.now_s()
    await world.pause(world.config.command_latency_s)
    now_s = world.clock.now_s()
    vehicle.set_asleep(asleep=False, now_s=now_s)
    found.apply(vehicle, parameters or {}, now_s)
    world.webhooks.vehicle_changed(vehicle, triggers=found.triggers)
    return v3_payloads.command_execution(
        execution_id=f"exec_{uuid.uuid4().hex}",
        command_type=found.command_type,
        started_s=started_s,
        completed_s=world.clock.now_s(),
        asynchronous=asynchronous,
        parameters=parameters,
    )


async def _long_running(
    world: World,
    request: web.Request,
    found: Command,
    vehicle: VehicleState,
    parameters: Parameters | None,
    fault: Fault | None,
) -> web.StreamResponse:
    """Answer 202 at once and stream the outcome when the command completes."""
    response = web.StreamResponse(
        status=202, headers={"Content-Type": "application/json", "SC-Request-Id": request_id()}
    )
    await response.prepare(request)
    try:
        body = await _execute(world, found, vehicle, parameters, asynchronous=True)
    except (ApiError, V3Error) as exc:
        error = from_v2(exc.kind) if isinstance(exc, ApiError) else exc.kind
        world.stats.errors[error.label] += 1
        body = error.body(detail=exc.detail if isinstance(exc, V3Error) else None)
    data = json.dumps(body).encode()
    fault_kind = None if fault is None else fault.kind
    if fault_kind is FaultKind.RESET:
        reset_connection(request)
        return response
    if fault_kind is FaultKind.MALFORMED:
        data = data[: max(1, len(data) // 2)]
    elif fault_kind is FaultKind.HANG:
        await world.pause(world.config.hang_s)
    elif fault_kind is FaultKind.HOLD:
        await world.holds.hold(world.stopping)
    with contextlib.suppress(ConnectionResetError):  # the client left while it waited
        await response.write(data)
        await response.write_eof()
    return response
