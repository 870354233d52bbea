"""`POST /v2.0/vehicles/{id}/batch`: several reads in one round trip, billed per path.

Body: `{"requests": [{"path": "/odometer"}, …]}` (1-50 items; paths are the GET endpoints,
`/` being attributes, plus `/permissions`). Answer: `{"responses": [{"path", "code", "body",
"headers"?}, …]}` in request order, `path` echoed as sent.

- A 200 item always has a `headers` dict (the official SDK writes `sc-request-id` into it):
  lowercase `sc-unit-system`, plus `sc-data-age` and `sc-fetched-at` for car data. Error
  items carry the v2 error body (its `requestId` is the batch's) and a `headers` key only
  when a header matters (`retry-after` on a 429), as in Smartcar's recorded batches.
- The whole batch takes one token from the vehicle's rate-limit bucket (429 for the whole
  request when empty) and one app-bucket token.
- Billing: each path counts against the monthly allowance. When the allowance is already
  spent the whole request is 430; when only some paths fit, those are served in order and
  the rest are answered with a 430 item each. Every billed path counts, whatever its
  outcome (404 path, 403 permission, 501 capability and 409 asleep items included).
- Per-item errors: unknown path 404 RESOURCE_NOT_FOUND:PATH, scope not granted 403
  PERMISSION, not capable 501 VEHICLE_NOT_CAPABLE, sleeping car 409 ASLEEP (attributes, VIN
  and permissions still answer), and refusal faults armed for that path.
- A transport fault armed for the batch, or for one of its paths, breaks the whole answer.
- Stats: one request under `batch`, each path under `batch_paths`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from clients.simulator import admission
from clients.simulator.accounts import Grant
from clients.simulator.delivery import data_headers, deliver, json_response, request_id
from clients.simulator.error_bodies import (
    ASLEEP,
    BILLING_VEHICLE_REQUEST_LIMIT,
    PERMISSION,
    RESOURCE_NOT_FOUND_PATH,
    VALIDATION_PARAMETER,
    VEHICLE_NOT_CAPABLE,
    ApiError,
    ErrorKind,
)
from clients.simulator.faults import Fault, normalize_path
from clients.simulator.readings import READ_ENDPOINTS, Units, recorded_at
from clients.simulator.vehicles import VehicleState
from clients.simulator.world import World

MAX_PATHS = 50


async def serve_batch(world: World, request: web.Request, vehicle_id: str) -> web.Response:
    """Serve one batch request."""
    grant, vehicle = admission.vehicle_grant(world, request, vehicle_id)
    units = admission.units_of(request)
    paths = _paths(await admission.json_object(request))
    admission.take_vehicle_token(world, vehicle_id)
    fault = admission.take_fault(world, vehicle_id, "batch")
    billed = admission.bill(world, vehicle_id, len(paths))
    await world.pause(world.config.read_latency_s)
    item = _Items(world, grant, vehicle, units)
    responses = [item.answer(path, billed=index < billed) for index, path in enumerate(paths)]
    return await deliver(
        world, request, json_response({"responses": responses}), fault or item.transport_fault
    )


def _paths(body: dict[str, object]) -> list[str]:
    """Return the requested paths, or raise 400 VALIDATION:PARAMETER."""
    requests = body.get("requests")
    if not isinstance(requests, list) or not 1 <= len(requests) <= MAX_PATHS:
        raise ApiError(VALIDATION_PARAMETER)
    paths = []
    for entry in requests:
        path = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(path, str) or not path:
            raise ApiError(VALIDATION_PARAMETER)
        paths.append(path)
    return paths


class _Items:
    """Answers the items of one batch (and remembers a transport fault an item armed)."""

    def __init__(
        self,
        world: World,
        grant: Grant,
        vehicle: VehicleState,
        units: Units,
    ) -> None:
        self._world = world
        self._request_id = request_id()
        self._grant = grant
        self._vehicle = vehicle
        self._units = units
        self._now_s = world.clock.now_s()
        self.transport_fault: Fault | None = None

    def answer(self, path: str, *, billed: bool) -> dict[str, Any]:
        """Return the response item for one path."""
        name = normalize_path(path)
        self._world.stats.batch_paths[name] += 1
        try:
            if not billed:
                raise ApiError(BILLING_VEHICLE_REQUEST_LIMIT)
            return self._success(path, name)
        except ApiError as exc:
            return self._failure(path, exc)

    def _success(self, path: str, name: str) -> dict[str, Any]:
        """Serve one item, or raise the error it gets."""
        if name == "permissions":
            scopes = list(self._grant.scopes)
            body = {"permissions": scopes, "paging": {"count": len(scopes), "offset": 0}}
            return self._ok(path, body, recorded_s=None)
        endpoint = READ_ENDPOINTS.get(name)
        if endpoint is None:
            raise ApiError(RESOURCE_NOT_FOUND_PATH)
        if endpoint.permission not in self._grant.scopes:
            raise ApiError(PERMISSION)
        if not endpoint.capable(self._vehicle):
            raise ApiError(VEHICLE_NOT_CAPABLE)
        fault = admission.take_fault(self._world, self._vehicle.id, name, any_path=False)
        self.transport_fault = self.transport_fault or fault
        if endpoint.needs_awake and self._vehicle.asleep:
            raise ApiError(ASLEEP)
        if not endpoint.reports_data_age:
            body = endpoint.reader(self._vehicle, self._now_s, self._units)
            return self._ok(path, body, recorded_s=None)
        recorded_s = recorded_at(self._vehicle, endpoint, self._now_s)
        body = endpoint.reader(self._vehicle, recorded_s, self._units)
        return self._ok(path, body, recorded_s=recorded_s)

    def _ok(self, path: str, body: dict[str, Any], recorded_s: float | None) -> dict[str, Any]:
        """Return a 200 item."""
        headers = data_headers(recorded_s=recorded_s, fetched_s=self._now_s, units=self._units)
        return {"path": path, "code": 200, "body": body, "headers": headers}

    def _failure(self, path: str, exc: ApiError) -> dict[str, Any]:
        """Return an error item and count the error."""
        kind: ErrorKind = exc.kind
        self._world.stats.errors[kind.label] += 1
        item: dict[str, Any] = {
            "path": path,
            "code": kind.status,
            "body": kind.body(self._request_id),
        }
        if exc.headers:
            item["headers"] = dict(exc.headers)
        return item
