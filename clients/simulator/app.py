"""The simulator's aiohttp application: routes of every surface, and one error boundary.

Surfaces and their error formats:

- `/oauth/…` (Connect and the token endpoint) and `/oauth2/…` (the V3 IAM token
  endpoint): OAuth 2.0 `{"error", "error_description"}`;
- `/v3/…` (the Vehicle, Connections and Management APIs V3): V3 `{"errors": [...]}` bodies
  (see `v3_errors`; errors both versions share are rendered in this shape), with
  `SC-Request-Id` on every response; an unknown path is 404 RESOURCE_NOT_FOUND:PATH;
- `/v2.0/…` (Vehicle, Management and Compatibility APIs) and anything else: Smartcar v2
  error bodies, with `SC-Request-Id` on every response (its value is also the body's
  `requestId`). A path that does not exist is 404 RESOURCE_NOT_FOUND:PATH, one under
  another version (`/v1.0/…`, `/v4/…`) is 404 RESOURCE_NOT_FOUND:VERSION;
- `/sim/…` (the control API): `{"error", "field"?, "message"}`.

Whatever a client sends, the answer is JSON: unexpected exceptions are logged and become
500 SERVER:INTERNAL (or OAuth `server_error`), never a traceback or a text/plain page.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from clients.simulator import (
    compatibility,
    control_routes,
    iam_routes,
    management_routes,
    oauth_routes,
    secret_routes,
    v3_connections,
    v3_management_routes,
    v3_routes,
    vehicle_routes,
    webhook_routes,
)
from clients.simulator.delivery import WORLD, json_response, new_request_id, request_id
from clients.simulator.error_bodies import (
    RESOURCE_NOT_FOUND_PATH,
    RESOURCE_NOT_FOUND_VERSION,
    SERVER_INTERNAL,
    VALIDATION,
    ApiError,
    OAuthError,
)
from clients.simulator.state_file import StateFile, StateFileError
from clients.simulator.v3_errors import NOT_FOUND, V3Error, V3ErrorKind, from_v2
from clients.simulator.world import World

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_log = logging.getLogger(__name__)
_OTHER_VERSION = re.compile(r"^/v\d+(\.\d+)?(/|$)")
_OAUTH = ("/oauth/", "/oauth2/")
_V3 = "/v3/"


_READ_ONLY_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHANGING_GETS = frozenset({"/oauth/authorize"})
"""GETs that change the world: Connect's approval creates connections and a code."""


def create_app(world: World, *, state_file: StateFile | None = None) -> web.Application:
    """Return the application serving every surface of `world`; with a `state_file`, the
    world is written there after each request that may change it."""
    middlewares: list[Middleware] = [_error_boundary]
    if state_file is not None:
        middlewares.insert(0, _persisting(world, state_file))
    app = web.Application(middlewares=middlewares)
    app[WORLD] = world
    oauth_routes.add_routes(app.router)
    iam_routes.add_routes(app.router)
    vehicle_routes.add_routes(app.router)
    management_routes.add_routes(app.router)
    compatibility.add_routes(app.router)
    v3_routes.add_routes(app.router)
    v3_connections.add_routes(app.router)
    v3_management_routes.add_routes(app.router)
    control_routes.add_routes(app.router)
    secret_routes.add_routes(app.router)
    webhook_routes.add_routes(app.router)
    app.router.add_route("*", "/{tail:.*}", _not_found)
    app.on_shutdown.append(_wake_sleepers)
    app.on_cleanup.append(_stop_webhooks)
    return app


async def _wake_sleepers(app: web.Application) -> None:
    """Tell handlers sleeping for latency or a hang that the server is stopping."""
    app[WORLD].stopping.set()


async def _stop_webhooks(app: web.Application) -> None:
    """Cancel webhook deliveries in flight and close their HTTP session."""
    await app[WORLD].webhooks.close()


async def _not_found(request: web.Request) -> web.StreamResponse:
    """Answer a path no route serves."""
    if request.path.startswith(_OAUTH):
        raise OAuthError("invalid_request", "Unknown OAuth endpoint.", status=404)
    if request.path.startswith("/sim/"):
        return json_response(
            {"error": "not_found", "message": "Unknown control endpoint."}, status=404
        )
    if request.path.startswith(_V3):
        raise V3Error(NOT_FOUND, detail="The requested path does not exist.")
    if _OTHER_VERSION.match(request.path) and not request.path.startswith("/v2.0/"):
        raise ApiError(RESOURCE_NOT_FOUND_VERSION)
    raise ApiError(RESOURCE_NOT_FOUND_PATH)


def _persisting(world: World, state_file: StateFile) -> Middleware:
    """Return the middleware that writes the world after a request that may change it,
    before the answer leaves (a client never holds a token the file does not). A failed
    write is logged and the answer still leaves: the simulator already acted on it."""

    @web.middleware
    async def persist(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        finally:
            if request.method not in _READ_ONLY_METHODS or request.path in _CHANGING_GETS:
                try:
                    state_file.save(world)
                except StateFileError as exc:  # the answer still goes out; the next save retries
                    _log.warning("simulator state not saved: %s", exc)

    return persist


@web.middleware
async def _error_boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every response a request id and turn every failure into the surface's JSON."""
    current_id = new_request_id()
    try:
        response = await handler(request)
    except V3Error as exc:
        response = _v3_error(request, exc.kind, detail=exc.detail, headers=exc.headers)
    except ApiError as exc:
        response = _api_error(request, exc)
    except OAuthError as exc:
        response = _oauth_error(exc)
    except web.HTTPException as exc:  # raised by aiohttp itself, e.g. a body over the size cap
        response = _http_error(request, exc)
    except Exception:  # noqa: BLE001 - the boundary: clients must never see a traceback
        _log.exception("unexpected error serving %s %s", request.method, request.path)
        response = _internal_error(request)
    if not request.path.startswith((*_OAUTH, "/sim/")):
        response.headers["SC-Request-Id"] = current_id
    return response


def _v3_error(
    request: web.Request,
    kind: V3ErrorKind,
    *,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """Render a V3 error and count it."""
    request.app[WORLD].stats.errors[kind.label] += 1
    return json_response(kind.body(detail=detail), status=kind.status, headers=headers)


def _api_error(request: web.Request, exc: ApiError) -> web.Response:
    """Render an error both API versions share (in the V3 shape on `/v3/…`) and count it."""
    if request.path.startswith(_V3):
        return _v3_error(request, from_v2(exc.kind), headers=exc.headers)
    request.app[WORLD].stats.errors[exc.kind.label] += 1
    body = exc.kind.body(request_id())
    return json_response(body, status=exc.kind.status, headers=exc.headers)


def _oauth_error(exc: OAuthError) -> web.Response:
    """Render an OAuth 2.0 error (`WWW-Authenticate` on 401, as RFC 6749 asks)."""
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="smartcar"'
    return json_response(exc.body(), status=exc.status, headers=headers)


def _http_error(request: web.Request, exc: web.HTTPException) -> web.Response:
    """Render an aiohttp HTTP exception in the surface's format."""
    if request.path.startswith(_OAUTH):
        return _oauth_error(OAuthError("invalid_request", exc.reason, status=400))
    if request.path.startswith("/sim/"):
        return json_response({"error": "invalid_request", "message": exc.reason}, status=400)
    return _api_error(request, ApiError(VALIDATION))


def _internal_error(request: web.Request) -> web.Response:
    """Render an unexpected failure as JSON."""
    if request.path.startswith(_OAUTH):
        return _oauth_error(OAuthError("server_error", "Unexpected server error.", status=500))
    if request.path.startswith("/sim/"):
        return json_response({"error": "internal", "message": "Unexpected error."}, status=500)
    return _api_error(request, ApiError(SERVER_INTERNAL))
