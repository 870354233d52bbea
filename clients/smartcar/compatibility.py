"""SmartcarCompatibility: Smartcar's Compatibility API by VIN, asked before any owner connects.

    compatibility = SmartcarCompatibility(http=http, credentials=credentials, endpoints=endpoints)
    answer = await compatibility.by_vin("5YJ3E1EA7KF317000", scopes=["read_odometer"],
                                        country="US")        # Reading[Compatibility]

``GET {SMARTCAR_API_ORIGIN}/v2.0/compatibility?vin=…&scope=…&country=…``, authenticated with
HTTP Basic ``client_id:client_secret`` (the application's credentials: no owner is involved
yet), answers ``{"compatible", "reason", "capabilities": [{"permission", "endpoint",
"capable", "reason"}]}``.

Smartcar's pages disagree on the address and the authentication. The overview page names
the base URL ``https://api.smartcar.com/compatibility/v2.0`` and a bearer token; the
by-region page's cURL example calls ``https://api.smartcar.com/v2.0/compatibility/matrix``
with Basic client credentials, and the official SDKs call ``{API origin}/v2.0/compatibility``
with Basic client credentials (Python SDK 6.19, ``get_compatibility``). This client follows
the SDK and the cURL example: the path under ``/v2.0`` of the API origin, Basic auth. API
V3 documents no check by VIN: smartcar-v3-notes §7 mentions only
``compatibility.api.smartcar.com/v3`` ``GET /compatible-vehicles`` filtered by make, from
third-party summaries (UNCERTAIN), so it is not used.

What Smartcar says about the answer, and what is tolerated: it is "for reference purposes
only" and "does not guarantee that a specific vehicle will be compatible"; capabilities are
checked "only … for vehicles sold in the United States" and the array "will be empty if
``compatible`` is false". An answer without ``reason`` or ``capabilities`` (API v1.0's shape
was ``{"compatible"}`` alone) reads as none; reason strings are kept as Smartcar sends them.
The API is an Enterprise feature of Smartcar's plans. Nothing of a vehicle's monthly
allowance is spent: Smartcar bills "successful API requests that perform actions on or
pull data from vehicles", and this one reaches no vehicle.

Client-secret rotation: Smartcar lets an application hold up to three client secrets at
once. With ``additional_secrets``, a 401 for one secret tries the next, and the one accepted
is tried first from then on (as the IAM client does for API V3 tokens); only when every
secret is refused does the caller see the ``AuthenticationError``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import httpx

from clients.smartcar._clock import Clock, system_clock
from clients.smartcar._json import JsonObject
from clients.smartcar._transport import Call, Transport, basic_auth
from clients.smartcar._wire import meta_from_headers
from clients.smartcar.credentials import ClientCredentials
from clients.smartcar.endpoints import SmartcarEndpoints
from clients.smartcar.errors import AuthenticationError, SmartcarProtocolError
from clients.smartcar.models import Capability, Compatibility, Reading
from clients.smartcar.secret import Secret
from clients.smartcar.units import UnitSystem

__all__ = ["SmartcarCompatibility"]

ROUTE = "/v2.0/compatibility"
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
_COUNTRY = re.compile(r"[A-Z]{2}")
_SCOPE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_MAX_TEXT = 256
"""The longest permission, endpoint or reason read from an answer; longer is not Smartcar's."""


class SmartcarCompatibility:
    """The Compatibility API on an injected ``httpx.AsyncClient``, authenticated with the
    application's client id and secret."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        credentials: ClientCredentials,
        endpoints: SmartcarEndpoints,
        clock: Clock = system_clock,
        timeout_s: float | None = None,
        additional_secrets: tuple[Secret, ...] = (),
    ) -> None:
        self._transport = Transport(http=http, clock=clock, timeout_s=timeout_s)
        self._credentials = credentials
        self._secrets = (credentials.client_secret, *additional_secrets)
        self._accepted = 0
        """Index in `_secrets` of the secret Smartcar last accepted: tried first."""
        self._url = f"{endpoints.api_origin}{ROUTE}"

    async def by_vin(
        self,
        vin: str,
        *,
        scopes: Iterable[str],
        country: str,
        timeout_s: float | None = None,
    ) -> Reading[Compatibility]:
        """Ask whether the car with ``vin`` (registered in ``country``, ISO 3166-1 alpha-2)
        is likely compatible, and capable of what ``scopes`` authorise.

        ValueError for a VIN that is not 17 characters of the VIN alphabet, a country that
        is not two capital letters, or scopes that are not permission names.
        """
        order = [self._accepted, *(i for i in range(len(self._secrets)) if i != self._accepted)]
        for index in order[:-1]:
            try:
                answer = await self._ask(
                    self._secrets[index], vin, scopes=scopes, country=country, timeout_s=timeout_s
                )
            except AuthenticationError:
                continue  # a rotated-out secret: the next one may be the current
            self._accepted = index
            return answer
        answer = await self._ask(
            self._secrets[order[-1]], vin, scopes=scopes, country=country, timeout_s=timeout_s
        )
        self._accepted = order[-1]
        return answer

    async def _ask(
        self,
        secret: Secret,
        vin: str,
        *,
        scopes: Iterable[str],
        country: str,
        timeout_s: float | None,
    ) -> Reading[Compatibility]:
        """One request authenticated with `secret`."""
        call = Call(
            method="GET",
            url=self._url,
            route=ROUTE,
            auth=basic_auth(self._credentials.client_id, secret),
            secrets=(secret,),
            headers={"Accept": "application/json"},
            params={
                "vin": _checked(_VIN, "vin", vin),
                "scope": " ".join(_scopes(scopes)),
                "country": _checked(_COUNTRY, "country", country),
            },
            timeout_s=timeout_s,
        )
        answer = await self._transport.send(call)
        meta = meta_from_headers(answer.headers, default_unit_system=UnitSystem.METRIC)
        return Reading(compatibility(answer.body), meta)


def compatibility(raw: object) -> Compatibility:
    """Read a Compatibility API answer; SmartcarProtocolError names what is malformed."""
    body = JsonObject(raw, "compatibility")
    return Compatibility(
        compatible=body.boolean("compatible"),
        reason=_text(body, "reason"),
        capabilities=tuple(
            Capability(
                permission=_required_text(item, "permission"),
                endpoint=_required_text(item, "endpoint"),
                capable=item.boolean("capable"),
                reason=_text(item, "reason"),
            )
            for item in body.objects("capabilities", required=False)
        ),
    )


def _text(body: JsonObject, key: str) -> str | None:
    """Return a bounded string, or None when absent, null or empty."""
    value = body.optional_string(key)
    if value is not None and len(value) > _MAX_TEXT:
        raise SmartcarProtocolError(f"{body.what}: '{key}' is longer than {_MAX_TEXT} characters")
    return value or None


def _required_text(body: JsonObject, key: str) -> str:
    """Return a bounded, non-empty string."""
    value = _text(body, key)
    if value is None:
        raise body.fail(key, "a non-empty string")
    return value


def _checked(pattern: re.Pattern[str], name: str, value: str) -> str:
    """Return ``value`` if it matches ``pattern`` whole, else raise ValueError naming it."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"{name} is malformed")
    return value


def _scopes(scopes: Iterable[str]) -> list[str]:
    """Return permission names (at least one), refusing a bare string and anything else."""
    if isinstance(scopes, str):
        raise ValueError("scopes must be a collection of permission names, not one string")
    names = list(scopes)
    if not names or not all(isinstance(n, str) and _SCOPE.fullmatch(n) for n in names):
        raise ValueError("scopes must hold at least one permission name, and only those")
    return names
