"""What a Vehicle API request must get past before it is served, in Smartcar's order.

For a request on one vehicle the checks run in this order, each raising the error it
stands for:

1. authentication: a bearer access token that is known, unexpired, granted for this
   vehicle, whose user is still connected to it -> 401 AUTHENTICATION (the same answer for
   an unknown vehicle id: a token that does not reach a vehicle cannot tell it exists);
2. the app-wide bucket -> 429 RATE_LIMIT:SMARTCAR_API with `retry-after`;
3. request validation (unit system, JSON body, parameters) -> 400 VALIDATION;
4. permission (scope granted) -> 403 PERMISSION; capability (fuel on a BEV, battery on an
   ICE car, engine oil on a BEV) -> 501 COMPATIBILITY:VEHICLE_NOT_CAPABLE;
5. the per-vehicle bucket -> 429 RATE_LIMIT:VEHICLE with `retry-after`;
6. injected refusal faults (server_error, upstream, asleep, rate_limit);
7. the monthly allowance -> 430 BILLING:VEHICLE_REQUEST_LIMIT (the request is billed here:
   everything that gets past this point counts, whatever happens next);
8. then the handler: latency, the vehicle's own state (asleep -> 409 ASLEEP for reads,
   door open / in motion for commands), the answer, and transport faults.

Requests rejected in steps 1-6 are not billed; a sleeping car's 409 and a refused command's
409 are (the request reached the car's side of Smartcar), and so are transport faults.
"""

from __future__ import annotations

import json

from aiohttp import web

from clients.simulator.accounts import Grant
from clients.simulator.error_bodies import (
    ASLEEP,
    AUTHENTICATION,
    BILLING_VEHICLE_REQUEST_LIMIT,
    PERMISSION,
    RATE_LIMIT_SMARTCAR_API,
    RATE_LIMIT_VEHICLE,
    SERVER_INTERNAL,
    UPSTREAM_ERRORS,
    VALIDATION,
    VALIDATION_PARAMETER,
    ApiError,
    account_error,
    rate_limited,
)
from clients.simulator.faults import ACCOUNT_CODES, Fault, FaultKind
from clients.simulator.readings import Units
from clients.simulator.vehicles import VehicleState
from clients.simulator.world import World

_APP_BUCKET = "app"
MAX_PAGE = 100


def bearer_grant(world: World, request: web.Request) -> Grant:
    """Return the grant of the request's bearer token, or raise 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(AUTHENTICATION)
    grant = world.accounts.authenticate(token.strip(), now_s=world.clock.now_s())
    if grant is None:
        raise ApiError(AUTHENTICATION)
    return grant


def user_grant(world: World, request: web.Request) -> Grant:
    """Return the grant for a user-level call (`/user`, `/vehicles`), counted by the app bucket.

    A grant whose every connection was revoked is dead: 401, like an unknown token.
    """
    grant = bearer_grant(world, request)
    if not world.accounts.live_vehicles(grant):
        raise ApiError(AUTHENTICATION)
    take_app_token(world)
    return grant


def vehicle_grant(
    world: World, request: web.Request, vehicle_id: str
) -> tuple[Grant, VehicleState]:
    """Authenticate a call on `vehicle_id` and take an app-bucket token (steps 1-2)."""
    grant = bearer_grant(world, request)
    vehicle = world.garage.get(vehicle_id)
    if vehicle is None or not world.accounts.reaches(grant, vehicle_id):
        raise ApiError(AUTHENTICATION)
    take_app_token(world)
    return grant, vehicle


def take_app_token(world: World) -> None:
    """Take one token from the app-wide bucket, or raise 429 SMARTCAR_API."""
    decision = world.limits.app.take(_APP_BUCKET, now_s=world.clock.now_s())
    if not decision.allowed:
        raise rate_limited(RATE_LIMIT_SMARTCAR_API, decision.retry_after_s)


def require_permission(grant: Grant, permission: str | None) -> None:
    """Raise 403 PERMISSION unless `permission` was granted (None: no permission needed)."""
    if permission is not None and permission not in grant.scopes:
        raise ApiError(PERMISSION)


def take_vehicle_token(world: World, vehicle_id: str) -> None:
    """Take one token from the vehicle's bucket, or raise 429 VEHICLE."""
    decision = world.limits.vehicle.take(vehicle_id, now_s=world.clock.now_s())
    if not decision.allowed:
        raise rate_limited(RATE_LIMIT_VEHICLE, decision.retry_after_s)


def bill(world: World, vehicle_id: str, count: int = 1) -> int:
    """Bill up to `count` requests; raise 430 if not even one fits, else return how many did."""
    billed = world.limits.allowance.charge(vehicle_id, count, now_s=world.clock.now_s())
    if billed == 0 and count > 0:
        raise ApiError(BILLING_VEHICLE_REQUEST_LIMIT)
    return billed


def take_fault(
    world: World, vehicle_id: str | None, path: str, *, any_path: bool = True
) -> Fault | None:
    """Spend the fault hitting this request: raise a refusal, return a transport fault.

    With `any_path=False` only faults naming `path` match (a batch item).
    """
    if not world.faults:
        return None
    fault = world.faults.take(vehicle_id=vehicle_id, path=path, any_path=any_path)
    if fault is None:
        return None
    world.stats.faults_injected[str(fault.kind)] += 1
    if fault.kind.is_transport:
        return fault
    raise refusal(fault, client_id=world.config.client_id or "", vehicle_id=vehicle_id)


def refusal(fault: Fault, *, client_id: str, vehicle_id: str | None) -> ApiError:
    """Return the API error a refusal fault answers with (an account error's links name
    the client and the vehicle)."""
    if fault.kind is FaultKind.ACCOUNT:
        code = fault.code or ACCOUNT_CODES[0]
        return ApiError(account_error(code, client_id=client_id, vehicle_id=vehicle_id))
    if fault.kind is FaultKind.SERVER_ERROR:
        return ApiError(SERVER_INTERNAL)
    if fault.kind is FaultKind.UPSTREAM:
        return ApiError(UPSTREAM_ERRORS[fault.code or "NO_RESPONSE"])
    if fault.kind is FaultKind.ASLEEP:
        return ApiError(ASLEEP)
    return rate_limited(RATE_LIMIT_VEHICLE, fault.retry_after_s)


def units_of(request: web.Request) -> Units:
    """Return the unit system the request asks for (`sc-unit-system`, default metric)."""
    value = request.headers.get("sc-unit-system", "metric").strip().lower()
    try:
        return Units(value)
    except ValueError:
        raise ApiError(VALIDATION_PARAMETER) from None


async def json_object(request: web.Request) -> dict[str, object]:
    """Return the request's JSON object body, or raise 400 VALIDATION."""
    try:
        body = json.loads(await request.read() or b"null")
    except (ValueError, UnicodeDecodeError):
        raise ApiError(VALIDATION) from None
    if not isinstance(body, dict):
        raise ApiError(VALIDATION)
    return body


def paging(request: web.Request, *, default_limit: int) -> tuple[int, int]:
    """Return `(limit, offset)` from the query string, or raise 400 VALIDATION:PARAMETER."""
    limit = _query_int(request, "limit", default_limit)
    offset = _query_int(request, "offset", 0)
    if not 1 <= limit <= MAX_PAGE or offset < 0:
        raise ApiError(VALIDATION_PARAMETER)
    return limit, offset


def _query_int(request: web.Request, name: str, default: int) -> int:
    """Return an integer query parameter, or `default` when absent."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(VALIDATION_PARAMETER) from None
