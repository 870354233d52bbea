"""Simulated Smartcar Connect: `GET /oauth/authorize` approves at once and redirects.

There is no login page: the request is validated, the owner "approves", and the answer is
a 302 to `redirect_uri?code=…&user_id=…&state=…`: `code` for a v2 code exchange, `user_id`
(the Smartcar user id, snake_case as live redirects send it) for API V3, which names the
owner with `sc-user-id` instead of exchanging a code. Smartcar's current page shows only
`user_id`, an older one both; the simulator sends both, so either kind of client works.

Parameters the official SDK sends are accepted: `response_type` (must be `code`),
`client_id`, `redirect_uri`, `scope` (space-separated; when absent the grant gets every
permission the gateway uses; a scope may carry Smartcar's `required:` prefix), `state`,
`mode` (`test`, `simulated` or `live`), `approval_prompt`, `single_select`,
`single_select_vin`, `make`, `user`, `flags`. A missing or invalid `client_id`,
`redirect_uri` or `response_type`, or a bad parameter value, is a 400 JSON body
`{"error", "error_description"}`: the redirect target cannot be trusted yet.

Which vehicles the owner connects:

- `single_select_vin=<VIN>`: that vehicle only. A well-formed VIN the simulator does not
  know becomes a new vehicle (deterministic for the seed and VIN), so a gateway can connect
  its own fleet by VIN;
- otherwise, an owner who already owns vehicles connects all of them (as logging into the
  same OEM account would), and a new owner gets the next catalog vehicle without an owner;
- `single_select=true` limits the approval to one vehicle.

Which user approves: `user=<key>` always maps to the same Smartcar user id; without it, the
owner of the selected VIN if it has one, else a new user. Approving makes that user the
vehicle's owner: a VIN connected under another key has changed hands, and the former
owner's connection stays until it is revoked or deleted.

Simulator-only parameters (never sent by real clients):

- `sim_vehicles=N` (1-50): the owner connects N vehicles (their own first, then unowned
  catalog vehicles);
- `sim_deny=1`: the owner denies access: 302 to
  `redirect_uri?error=access_denied&error_description=User+denied+access+to+application`
  (plus `state`), as Smartcar documents;
- `sim_withhold=perm1 perm2` (spaces or commas): the owner grants the requested scopes minus
  these, so the app ends up with fewer permissions than it asked for. A scope the URL marks
  `required:` cannot be withheld: as on Smartcar's Connect since 2026-06-16, its checkbox is
  locked, so the owner grants it whatever they would untick (the prefix does not filter
  which vehicles can connect either).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from clients.simulator.accounts import DEFAULT_SCOPES as DEFAULT_SCOPES  # re-exported
from clients.simulator.fleet import is_well_formed_vin
from clients.simulator.world import World

MODES = ("test", "simulated", "live")
MAX_SIM_VEHICLES = 50


class ConnectError(ValueError):
    """An authorization request Connect refuses to redirect for."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True, kw_only=True)
class ConnectRequest:
    """A validated `GET /oauth/authorize`."""

    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    required: frozenset[str]
    """The scopes marked `required:`: the owner cannot leave them out."""
    state: str | None
    single_select: bool
    single_select_vin: str | None
    user_key: str | None
    sim_vehicles: int | None
    sim_deny: bool
    sim_withhold: frozenset[str]


def parse_connect_request(
    query: Mapping[str, str], *, expected_client_id: str | None
) -> ConnectRequest:
    """Validate the authorize query string (raises ConnectError)."""
    if query.get("response_type") != "code":
        raise ConnectError("unsupported_response_type", "response_type must be code")
    client_id = query.get("client_id", "")
    if not client_id:
        raise ConnectError("invalid_request", "client_id is required")
    if expected_client_id is not None and client_id != expected_client_id:
        raise ConnectError("invalid_client", "client_id is not a registered application")
    redirect_uri = _redirect_uri(query.get("redirect_uri", ""))
    mode = query.get("mode", "live")
    if mode not in MODES:
        raise ConnectError("invalid_request", "mode must be one of test, simulated, live")
    vin = query.get("single_select_vin") or None
    if vin is not None and not is_well_formed_vin(vin):
        raise ConnectError("invalid_request", "single_select_vin must be a 17-character VIN")
    scopes, required = _scopes(query.get("scope"))
    return ConnectRequest(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
        required=required,
        state=query.get("state"),
        single_select=query.get("single_select", "").lower() == "true" or vin is not None,
        single_select_vin=vin.upper() if vin else None,
        user_key=query.get("user") or None,
        sim_vehicles=_sim_vehicles(query.get("sim_vehicles")),
        sim_deny=query.get("sim_deny", "").lower() in ("1", "true"),
        sim_withhold=frozenset(query.get("sim_withhold", "").replace(",", " ").split()),
    )


def approve(world: World, request: ConnectRequest) -> str:
    """Run the simulated approval and return the URL Connect redirects to."""
    if request.sim_deny:
        world.stats.authorizations["denied"] += 1
        return _redirect(
            request,
            error="access_denied",
            error_description="User denied access to application",
        )
    user_id, vehicle_ids = _select(world, request)
    now_s = world.clock.now_s()
    withheld = request.sim_withhold - request.required  # a required scope's box is locked
    grant = world.accounts.approve(
        user_id=user_id,
        client_id=request.client_id,
        vehicle_ids=vehicle_ids,
        scopes=tuple(s for s in request.scopes if s not in withheld),
        now_s=now_s,
    )
    code = world.accounts.issue_code(
        grant,
        redirect_uri=request.redirect_uri,
        expires_at_s=now_s + world.config.code_ttl_s,
    )
    world.stats.authorizations["granted"] += 1
    return _redirect(request, code=code, user_id=user_id)


def _select(world: World, request: ConnectRequest) -> tuple[str, list[str]]:
    """Decide which user approves and which vehicles they connect."""
    accounts = world.accounts
    if request.single_select_vin is not None:
        vehicle = world.garage.add_vin(request.single_select_vin, now_s=world.clock.now_s())
        return accounts.user_for(request.user_key, owner_of=vehicle.id), [vehicle.id]
    user_id = accounts.user_for(request.user_key)
    owned = accounts.owned_by(user_id)
    wanted = request.sim_vehicles or max(1, len(owned))
    if request.single_select:
        wanted = 1
    chosen = owned[:wanted]
    while len(chosen) < wanted:
        chosen.append(world.next_unowned_vehicle().id)
        accounts.owners[chosen[-1]] = user_id  # claimed now, so the next draw skips it
    return user_id, chosen


def _redirect(request: ConnectRequest, **params: str) -> str:
    """Append `params` (and the state, when given) to the redirect URI."""
    if request.state is not None:
        params["state"] = request.state
    separator = "&" if "?" in request.redirect_uri else "?"
    return request.redirect_uri + separator + urlencode(params)


def _redirect_uri(value: str) -> str:
    """Accept an absolute URI without a fragment (https, http, or an app's custom scheme)."""
    parts = urlsplit(value)
    if not value or not parts.scheme or not parts.netloc or parts.fragment:
        raise ConnectError("invalid_request", "redirect_uri must be an absolute URI")
    return value


REQUIRED_PREFIX = "required:"
"""Smartcar's prefix for a scope the owner may not leave out."""


def _scopes(value: str | None) -> tuple[tuple[str, ...], frozenset[str]]:
    """Split the space-separated scope into its permissions (without `required:`) and the
    ones marked required; no scope at all is every permission the gateway uses."""
    if value is None or not value.strip():
        return DEFAULT_SCOPES, frozenset()
    scopes: dict[str, None] = {}
    required: set[str] = set()
    for item in value.split():
        scope = item.removeprefix(REQUIRED_PREFIX)
        prefix, _, rest = scope.partition("_")
        if prefix not in ("read", "control") or not rest or not rest.replace("_", "").isalpha():
            raise ConnectError("invalid_scope", "scope contains an unknown permission")
        scopes[scope] = None
        if scope != item:
            required.add(scope)
    return tuple(scopes), frozenset(required)


def _sim_vehicles(value: str | None) -> int | None:
    """Parse `sim_vehicles` (1-50)."""
    if value is None:
        return None
    if not value.isdigit() or not 1 <= int(value) <= MAX_SIM_VEHICLES:
        raise ConnectError("invalid_request", "sim_vehicles must be an integer from 1 to 50")
    return int(value)
