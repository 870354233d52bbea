"""SmartcarVehiclesV3: Smartcar's Vehicle API V3 — vehicle, signals, commands.

Every call takes the application token (never kept) and, where Smartcar requires it, the
owner's Smartcar user id, sent as ``sc-user-id``: signals and commands need it;
``GET /v3/vehicles/{id}`` is documented without it (pass ``user_id`` to send it anyway).

``signals`` is one request (one billed call, as live users count it): paging that the
answer advertises is reported, not followed. No documented way to ask for a subset of
signals exists. Commands answer a CommandExecution or raise (``_commands`` says how 200
and 202 bodies are read); a command can take minutes at the car (Smartcar holds a
long-running one open before its 202), so give commands a ``timeout_s`` to match.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from clients.smartcar._clock import Clock, system_clock
from clients.smartcar._ids import checked_id
from clients.smartcar._json import JsonObject
from clients.smartcar._transport import Answer
from clients.smartcar.errors import SmartcarProtocolError
from clients.smartcar.secret import Secret, redact
from clients.smartcar.units import UnitSystem
from clients.smartcar.v3 import _resources
from clients.smartcar.v3._calls import Sender
from clients.smartcar.v3._commands import command_execution
from clients.smartcar.v3._fields import vehicle_signals
from clients.smartcar.v3._jsonapi import page_of, single
from clients.smartcar.v3._signal_items import signal_item, signal_items
from clients.smartcar.v3.endpoints import V3Endpoints
from clients.smartcar.v3.models import CommandExecution, Vehicle
from clients.smartcar.v3.signals import Signal, VehicleSignals

__all__ = ["SmartcarVehiclesV3"]

_VEHICLE = "/v3/vehicles/{id}"


class SmartcarVehiclesV3:
    """Vehicle API V3 on an injected ``httpx.AsyncClient``.

    ``unit_system`` is sent as ``sc-unit-system`` and is the unit of a value Smartcar
    sends without one; values with a unit are converted by it. Every method takes
    ``timeout_s`` to bound that call; without it the client's ``timeout_s`` applies,
    else the AsyncClient's own.
    """

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        endpoints: V3Endpoints,
        unit_system: UnitSystem = UnitSystem.METRIC,
        clock: Clock = system_clock,
        timeout_s: float | None = None,
    ) -> None:
        self._sender = Sender(http=http, clock=clock, timeout_s=timeout_s)
        self._origin = endpoints.vehicle_origin
        self._unit_system = UnitSystem(unit_system)

    async def vehicle(
        self,
        token: Secret,
        vehicle_id: str,
        *,
        user_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Vehicle:
        """Return make, model, year, mode and powertrain (``GET /v3/vehicles/{id}``)."""
        answer = await self._send(
            token, "GET", vehicle_id, "", user_id=user_id, timeout_s=timeout_s
        )
        return _resources.vehicle(answer.body)

    async def signals(
        self, token: Secret, vehicle_id: str, *, user_id: str, timeout_s: float | None = None
    ) -> VehicleSignals:
        """Read every signal Smartcar holds for the car (``GET …/signals``), one request."""
        answer = await self._send(
            token, "GET", vehicle_id, "/signals", user_id=user_id, timeout_s=timeout_s
        )
        return self._vehicle_signals(answer, token)

    async def signal(
        self,
        token: Secret,
        vehicle_id: str,
        code: str,
        *,
        user_id: str,
        timeout_s: float | None = None,
    ) -> Signal:
        """Read one signal by code (``GET …/signals/{code}``, e.g. ``closure-islocked``).

        Smartcar answers an unknown or unstored code with 404 (ResourceNotFound).
        """
        checked_id("code", code)
        answer = await self._send(
            token,
            "GET",
            vehicle_id,
            f"/signals/{code}",
            route_suffix="/signals/{code}",
            user_id=user_id,
            timeout_s=timeout_s,
        )
        signal = signal_item(
            single(answer.body, "signal").raw,
            http_status=answer.status,
            headers=answer.headers,
            now=answer.received_at,
            secrets=(token,),
        )
        if signal is None:
            raise SmartcarProtocolError("signal: the answer names no signal code")
        return signal

    async def lock(
        self, token: Secret, vehicle_id: str, *, user_id: str, timeout_s: float | None = None
    ) -> CommandExecution:
        """Lock the car (``POST …/commands/security/lock``)."""
        return await self._command(token, vehicle_id, "security/lock", user_id, None, timeout_s)

    async def unlock(
        self, token: Secret, vehicle_id: str, *, user_id: str, timeout_s: float | None = None
    ) -> CommandExecution:
        """Unlock the car (``POST …/commands/security/unlock``)."""
        return await self._command(token, vehicle_id, "security/unlock", user_id, None, timeout_s)

    async def start_charge(
        self, token: Secret, vehicle_id: str, *, user_id: str, timeout_s: float | None = None
    ) -> CommandExecution:
        """Start charging (``POST …/commands/charge/start``)."""
        return await self._command(token, vehicle_id, "charge/start", user_id, None, timeout_s)

    async def stop_charge(
        self, token: Secret, vehicle_id: str, *, user_id: str, timeout_s: float | None = None
    ) -> CommandExecution:
        """Stop charging (``POST …/commands/charge/stop``)."""
        return await self._command(token, vehicle_id, "charge/stop", user_id, None, timeout_s)

    async def set_charge_limit(
        self,
        token: Secret,
        vehicle_id: str,
        percent: int,
        *,
        user_id: str,
        timeout_s: float | None = None,
    ) -> CommandExecution:
        """Set the charge limit in percent (``POST …/commands/charge/set-limit``).

        V3 takes a percentage (v2 took a fraction). The body is
        ``{"data": {"attributes": {"percent": …}}}``. Any integer 0-100 is sent: Smartcar
        is reported to accept 50-100 and answers a VALIDATION error otherwise.
        """
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError("percent must be an integer from 0 to 100")
        body = {"data": {"attributes": {"percent": percent}}}
        return await self._command(token, vehicle_id, "charge/set-limit", user_id, body, timeout_s)

    async def _command(
        self,
        token: Secret,
        vehicle_id: str,
        command: str,
        user_id: str,
        body: Mapping[str, object] | None,
        timeout_s: float | None,
    ) -> CommandExecution:
        answer = await self._send(
            token,
            "POST",
            vehicle_id,
            f"/commands/{command}",
            user_id=user_id,
            json_body=body,
            empty_ok=True,
            timeout_s=timeout_s,
        )
        return command_execution(
            answer.body,
            http_status=answer.status,
            headers=answer.headers,
            now=answer.received_at,
            secrets=(token,),
        )

    async def _send(
        self,
        token: Secret,
        method: str,
        vehicle_id: str,
        suffix: str,
        *,
        user_id: str | None,
        route_suffix: str | None = None,
        json_body: object = None,
        empty_ok: bool = False,
        timeout_s: float | None,
    ) -> Answer:
        path = f"/v3/vehicles/{checked_id('vehicle_id', vehicle_id)}{suffix}"
        return await self._sender.send(
            token,
            method,
            f"{self._origin}{path}",
            route=f"{_VEHICLE}{suffix if route_suffix is None else route_suffix}",
            user_id=user_id,
            headers={"sc-unit-system": self._unit_system.value},
            json_body=json_body,
            empty_body_ok=empty_ok,
            timeout_s=timeout_s,
        )

    def _vehicle_signals(self, answer: Answer, token: Secret) -> VehicleSignals:
        """Read a ``/signals`` answer: its items, included vehicle and paging."""
        body = answer.body
        document = body if isinstance(body, Mapping) else None
        signals = signal_items(
            document.get("data") if document is not None else body,
            what="signals",
            http_status=answer.status,
            headers=answer.headers,
            now=answer.received_at,
            secrets=(token,),
        )
        units = UnitSystem.parse(answer.headers.get("sc-unit-system")) or self._unit_system
        top = JsonObject(document, "signals") if document is not None else None
        return vehicle_signals(
            signals,
            unit_system=units,
            vehicle=_included_vehicle(document),
            page=page_of(top, items=len(signals)) if top is not None else None,
            request_id=_request_id(answer, token),
        )


def _request_id(answer: Answer, token: Secret) -> str | None:
    """Return the answer's sc-request-id, scrubbed of the token (an echo is not trusted)."""
    request_id = answer.headers.get("sc-request-id")
    return redact(request_id, (token,)) if request_id else None


def _included_vehicle(document: Mapping[str, object] | None) -> Vehicle | None:
    """Return ``included.vehicle`` (keyed, or in a JSON:API list) when it is readable."""
    included = document.get("included") if document is not None else None
    candidates: list[object] = []
    if isinstance(included, Mapping):
        candidates = [included.get("vehicle")]
    elif isinstance(included, list):
        candidates = [i for i in included if isinstance(i, Mapping) and i.get("type") == "vehicle"]
    for raw in candidates:
        try:
            return _resources.vehicle(raw)
        except SmartcarProtocolError:
            continue  # auxiliary: an unreadable included vehicle does not spoil the signals
    return None
