"""Smartcar's Compatibility API by VIN: `GET /v2.0/compatibility?vin=…&scope=…&country=…`.

The application authenticates with HTTP Basic `client_id:client_secret` (any of its client
secrets; with no client configured, any client); a wrong or missing one is 401
AUTHENTICATION (a v2 body: this is a v2 API, not OAuth). The request takes a token from
the app-wide bucket (429 RATE_LIMIT:SMARTCAR_API), is counted under `compatibility` in
stats and never billed: no vehicle is reached. Faults armed with `path: "compatibility"`
hit it (a fault without a path does not: it names Vehicle API requests).

Parameters, as the official SDK sends them: `vin` (17 characters of the VIN alphabet, any
case), `scope` (permission names, space-separated; `required:` is Connect's, not this
API's) and `country` (ISO 3166-1 alpha-2, two letters; US when absent, the SDK's default).
Anything else is 400 VALIDATION:PARAMETER.

The answer comes from the catalog, in Smartcar's shape (`compatible`, `reason`,
`capabilities` always present, as the SDK reads them):

- a VIN the garage holds, or one whose World Manufacturer Identifier is a catalog make's
  (the car simulated Connect would make for it; checking does not create it), is
  compatible, `reason: null`;
- any other VIN is `compatible: false` with `reason: "MAKE_NOT_COMPATIBLE"` (Smartcar's
  code for "not yet compatible with this vehicle's make in the country you specified") and
  no capabilities ("This array will be empty if compatible is false");
- capabilities list, for each permission asked about, every endpoint the simulator serves
  under it (its v2 reads, and `/security` and `/charge` for the commands): capable when
  the car's powertrain has the part, else `VEHICLE_NOT_CAPABLE`. A permission the
  simulator serves no endpoint for gets no entry;
- outside the United States the capabilities are empty: Smartcar "only supports checking
  capabilities for vehicles sold in the United States".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp import web

from clients.simulator import admission
from clients.simulator.delivery import WORLD, deliver, json_response
from clients.simulator.error_bodies import (
    AUTHENTICATION,
    VALIDATION_PARAMETER,
    ApiError,
    OAuthError,
)
from clients.simulator.fleet import (
    Powertrain,
    VehicleSpec,
    is_well_formed_vin,
    known_wmi,
    vehicle_for_vin,
)
from clients.simulator.oauth_routes import basic_credentials
from clients.simulator.readings import READ_ENDPOINTS
from clients.simulator.v3_commands import COMMANDS
from clients.simulator.world import World

PATH = "compatibility"
"""The endpoint's name in stats and faults."""
DEFAULT_COUNTRY = "US"
CAPABILITIES_COUNTRY = "US"
"""The one country whose vehicles Smartcar checks capabilities for."""
MAKE_NOT_COMPATIBLE = "MAKE_NOT_COMPATIBLE"
VEHICLE_NOT_CAPABLE = "VEHICLE_NOT_CAPABLE"
MAX_SCOPES = 50


@dataclass(frozen=True, kw_only=True)
class CapabilityEndpoint:
    """One endpoint a permission authorises, and the cars that can serve it."""

    permission: str
    endpoint: str
    powertrains: frozenset[Powertrain]


def _endpoints() -> tuple[CapabilityEndpoint, ...]:
    """Every endpoint the simulator serves, by the permission it needs (reads, commands)."""
    found: dict[tuple[str, str], CapabilityEndpoint] = {}
    for read in READ_ENDPOINTS.values():
        if read.permission is not None:
            endpoint = "/" if read.name == "attributes" else f"/{read.name}"
            found[(read.permission, endpoint)] = CapabilityEndpoint(
                permission=read.permission, endpoint=endpoint, powertrains=read.powertrains
            )
    for command in COMMANDS.values():
        endpoint = "/" + command.path.split("/")[0]
        found[(command.permission, endpoint)] = CapabilityEndpoint(
            permission=command.permission, endpoint=endpoint, powertrains=command.powertrains
        )
    return tuple(found.values())


ENDPOINTS = _endpoints()


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Compatibility API route."""
    router.add_get(r"/v2.0/compatibility{slash:/?}", check)


async def check(request: web.Request) -> web.StreamResponse:
    """Answer whether a VIN is compatible, and capable of what the scopes authorise."""
    world = request.app[WORLD]
    world.stats.count_request(PATH, method="GET", vehicle_id=None)
    _authenticate(world, request)
    admission.take_app_token(world)
    vin, scopes, country = _parameters(request)
    fault = admission.take_fault(world, None, PATH, any_path=False)
    return await deliver(world, request, json_response(answer(world, vin, scopes, country)), fault)


def answer(world: World, vin: str, scopes: tuple[str, ...], country: str) -> dict[str, Any]:
    """Return the body answering a (validated) check of `vin` for `scopes` in `country`."""
    spec = _vehicle(world, vin)
    if spec is None:
        return {"compatible": False, "reason": MAKE_NOT_COMPATIBLE, "capabilities": []}
    capabilities = []
    if country == CAPABILITIES_COUNTRY:
        capabilities = [
            {
                "permission": endpoint.permission,
                "endpoint": endpoint.endpoint,
                "capable": spec.powertrain in endpoint.powertrains,
                "reason": None if spec.powertrain in endpoint.powertrains else VEHICLE_NOT_CAPABLE,
            }
            for scope in scopes
            for endpoint in ENDPOINTS
            if endpoint.permission == scope
        ]
    return {"compatible": True, "reason": None, "capabilities": capabilities}


def _vehicle(world: World, vin: str) -> VehicleSpec | None:
    """Return the car a VIN stands for: the garage's, or the one simulated Connect would
    make for a VIN of a catalog make; None for a make the catalog does not have."""
    known = world.garage.by_vin(vin)
    if known is not None:
        return known.spec
    if not known_wmi(vin):
        return None
    return vehicle_for_vin(seed=world.config.seed, vin=vin)


def _parameters(request: web.Request) -> tuple[str, tuple[str, ...], str]:
    """Return the VIN (upper case), the permissions and the country, or raise 400."""
    vin = request.query.get("vin", "")
    country = request.query.get("country") or DEFAULT_COUNTRY
    scopes = tuple(dict.fromkeys(request.query.get("scope", "").split()))
    if (
        not is_well_formed_vin(vin)
        or len(country) != 2
        or not (country.isascii() and country.isalpha())
        or not 1 <= len(scopes) <= MAX_SCOPES
        or not all(_is_permission(scope) for scope in scopes)
    ):
        raise ApiError(VALIDATION_PARAMETER)
    return vin.upper(), scopes, country.upper()


def _is_permission(scope: str) -> bool:
    """Tell whether `scope` is shaped like a permission name (`read_…`, `control_…`)."""
    prefix, _, rest = scope.partition("_")
    return prefix in ("read", "control") and bool(rest) and rest.replace("_", "").isalpha()


def _authenticate(world: World, request: web.Request) -> None:
    """Check Basic `client_id:client_secret`, or raise 401 AUTHENTICATION."""
    try:
        client_id, secret = basic_credentials(request.headers.get("Authorization", ""))
    except OAuthError:
        raise ApiError(AUTHENTICATION) from None
    expected = world.config.client_id
    if not client_id or (expected is not None and client_id != expected):
        raise ApiError(AUTHENTICATION)
    if not world.iam.secrets.accepts(secret):
        raise ApiError(AUTHENTICATION)
