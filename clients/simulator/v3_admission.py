"""Who an API V3 request acts as, and whether it may touch the vehicle it names.

Credentials (`Authorization: Bearer <token>`):

- an *application token* from `POST /oauth2/token` (the documented V3 form): the user is
  named per request with `sc-user-id`, and the permissions are those of that user's
  connection to the vehicle;
- a v2 *access token* from `POST /oauth/token`, without `sc-user-id`, as the official
  Python SDK 6.19 still calls `/v3/vehicles/{id}/signals` (Smartcar's newest migration page
  says V3 takes application tokens only, an older one that per-vehicle tokens keep working:
  both are accepted). The token's user and permissions apply; an `sc-user-id` naming
  another user is refused.

Checks, in order, each raising the V3 error it stands for:

1. a bearer token that is a valid application token, or a valid v2 access token whose
   grant still reaches a vehicle -> 401 AUTHENTICATION:UNAUTHORIZED;
2. the app-wide bucket (as on v2) -> 429 RATE_LIMIT:SMARTCAR_API;
3. with an application token, `sc-user-id` on a vehicle's signals and commands -> 400
   VALIDATION:MISSING_PARAMETER ("missing userId");
4. a connection of that user to the vehicle (or a v2 token reaching it) -> 403
   AUTHENTICATION:ACCESS_DENIED (also for a vehicle that does not exist: a caller without
   access cannot tell).

The Connections API takes application tokens only (a v2 token there is 403) and the app
bucket; the Management API takes application tokens only, and no bucket (it is another
host, with no documented limit).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from clients.simulator import admission
from clients.simulator.accounts import Grant
from clients.simulator.error_bodies import PERMISSION, ApiError
from clients.simulator.iam import AppToken
from clients.simulator.v3_errors import ACCESS_DENIED, MISSING_PARAMETER, UNAUTHORIZED, V3Error
from clients.simulator.vehicles import VehicleState
from clients.simulator.world import World

USER_HEADER = "sc-user-id"


@dataclass(frozen=True, kw_only=True)
class Caller:
    """Whom a request on a vehicle acts for, with the permissions it holds on it."""

    user_id: str
    scopes: tuple[str, ...]

    def require(self, permission: str) -> None:
        """Raise 403 PERMISSION unless `permission` was granted."""
        if permission not in self.scopes:
            raise ApiError(PERMISSION)


def vehicle_caller(
    world: World, request: web.Request, vehicle_id: str
) -> tuple[Caller, VehicleState]:
    """Admit a request on a vehicle's signals or commands (steps 1-4)."""
    credential = _credential(world, request)
    admission.take_app_token(world)
    named = named_user(request)
    vehicle = world.garage.get(vehicle_id)
    if isinstance(credential, Grant):
        if named not in (None, credential.user_id) or vehicle is None:
            raise V3Error(ACCESS_DENIED)
        if not world.accounts.reaches(credential, vehicle_id):
            raise V3Error(ACCESS_DENIED)
        return Caller(user_id=credential.user_id, scopes=credential.scopes), vehicle
    if named is None:
        raise V3Error(MISSING_PARAMETER)
    connection = world.accounts.connections.get((named, vehicle_id))
    if vehicle is None or connection is None:
        raise V3Error(ACCESS_DENIED)
    return Caller(user_id=named, scopes=connection.scopes), vehicle


def visible_vehicle(world: World, request: web.Request, vehicle_id: str) -> VehicleState:
    """Admit `GET /vehicles/{id}`: `sc-user-id` is optional there (Smartcar's example sends
    none); the vehicle must be connected (to the named user, when one is named)."""
    credential = _credential(world, request)
    admission.take_app_token(world)
    named = named_user(request)
    vehicle = world.garage.get(vehicle_id)
    if isinstance(credential, Grant):
        reaches = world.accounts.reaches(credential, vehicle_id)
        allowed = reaches and named in (None, credential.user_id)
    else:
        users = world.accounts.users_of(vehicle_id)
        allowed = bool(users) if named is None else named in users
    if vehicle is None or not allowed:
        raise V3Error(ACCESS_DENIED)
    return vehicle


def application(world: World, request: web.Request, *, bucket: bool) -> AppToken:
    """Admit a Connections or Management API request: an application token only (with an
    app-bucket token when `bucket`)."""
    credential = _credential(world, request)
    if not isinstance(credential, AppToken):
        raise V3Error(ACCESS_DENIED)
    if bucket:
        admission.take_app_token(world)
    return credential


def named_user(request: web.Request) -> str | None:
    """Return the user the request names in `sc-user-id` (None when absent or blank)."""
    return request.headers.get(USER_HEADER, "").strip() or None


def _credential(world: World, request: web.Request) -> AppToken | Grant:
    """Return the application token or v2 grant of the bearer token, or raise 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise V3Error(UNAUTHORIZED)
    now_s = world.clock.now_s()
    app_token = world.iam.tokens.authenticate(token, now_s=now_s)
    if app_token is not None:
        return app_token
    grant = world.accounts.authenticate(token, now_s=now_s)
    if grant is None or not world.accounts.live_vehicles(grant):
        raise V3Error(UNAUTHORIZED)
    return grant
