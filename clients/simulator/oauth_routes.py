"""OAuth routes: simulated Connect (`GET /oauth/authorize`) and `POST /oauth/token`.

The token endpoint takes a form body (`application/x-www-form-urlencoded`) and client
credentials by HTTP Basic (as the SDK sends them) or as `client_id`/`client_secret` form
fields. With `client_id`/`client_secret` configured, anything else is 401 `invalid_client`
(any of the application's client secrets is accepted: see `iam`); unconfigured, any client
is accepted, but it must name itself (the code or refresh token must have been issued to
it).

Grants: `authorization_code` (`code`, and `redirect_uri` which must match Connect's when
sent) and `refresh_token` (see `accounts` for single use and the grace window). Errors:
`invalid_request` (missing parameter, not a form body), `unsupported_grant_type`,
`invalid_client` (401), `invalid_grant` (400, never echoing the code or token). Success:
`{"access_token", "token_type": "Bearer", "expires_in", "refresh_token",
"refresh_expires_in"}` with `Cache-Control: no-store`.

Faults armed with `path: "token"` hit this endpoint: `server_error` (500 `server_error`)
and `upstream` (503 `temporarily_unavailable`) refuse before anything is used; `hang`,
`malformed` and `reset` break the answer after the grant was made (a spent refresh token
whose new pair the client never saw).
"""

from __future__ import annotations

import base64
import binascii

from aiohttp import web

from clients.simulator import connect
from clients.simulator.accounts import IssuedTokens
from clients.simulator.delivery import WORLD, deliver, json_response
from clients.simulator.error_bodies import OAuthError
from clients.simulator.faults import TOKEN_PATH, Fault, FaultKind
from clients.simulator.world import World

_FORM = "application/x-www-form-urlencoded"


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the OAuth routes."""
    router.add_get(r"/oauth/authorize{slash:/?}", authorize)
    router.add_post(r"/oauth/token{slash:/?}", token)


async def authorize(request: web.Request) -> web.StreamResponse:
    """Approve at once and redirect with a code (or a denial), or answer 400 JSON."""
    world = request.app[WORLD]
    try:
        parsed = connect.parse_connect_request(
            request.query, expected_client_id=world.config.client_id
        )
    except connect.ConnectError as exc:
        world.stats.authorizations["rejected"] += 1
        raise OAuthError(exc.error, exc.description) from None
    location = connect.approve(world, parsed)
    return web.Response(status=302, headers={"Location": location})


async def token(request: web.Request) -> web.StreamResponse:
    """Exchange a code or a refresh token for a new token pair."""
    world = request.app[WORLD]
    try:
        fault = token_fault(world)
        tokens, grant_type = await _grant(world, request)
    except OAuthError as exc:
        world.stats.token_rejections[exc.error] += 1
        raise
    world.stats.token_grants[grant_type] += 1
    response = json_response(
        tokens.to_json(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )
    return await deliver(world, request, response, fault)


async def _grant(world: World, request: web.Request) -> tuple[IssuedTokens, str]:
    """Validate the request and run its grant; return the tokens and the grant type."""
    if request.content_type != _FORM:
        raise OAuthError("invalid_request", f"The request body must be {_FORM}.")
    form = await request.post()
    fields = {key: value for key, value in form.items() if isinstance(value, str)}
    client_id = _client_id(world, request, fields)
    grant_type = fields.get("grant_type")
    now_s = world.clock.now_s()
    if grant_type == "authorization_code":
        code = _required(fields, "code")
        tokens = world.accounts.redeem_code(
            code,
            client_id=client_id,
            redirect_uri=fields.get("redirect_uri"),
            now_s=now_s,
            lifetimes=world.lifetimes,
        )
        return tokens, grant_type
    if grant_type == "refresh_token":
        refresh = _required(fields, "refresh_token")
        tokens, reused = world.accounts.refresh(
            refresh, client_id=client_id, now_s=now_s, lifetimes=world.lifetimes
        )
        world.stats.refresh_token_reuses += int(reused)
        return tokens, grant_type
    if not grant_type:
        raise OAuthError("invalid_request", "Missing required parameter: grant_type.")
    raise OAuthError("unsupported_grant_type", "The grant_type is not supported.")


def _client_id(world: World, request: web.Request, fields: dict[str, str]) -> str:
    """Authenticate the client (Basic or form fields) and return its id, or raise 401."""
    header = request.headers.get("Authorization")
    if header is not None:
        client_id, secret = basic_credentials(header)
    else:
        client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
    if not client_id:
        raise invalid_client()
    config = world.config
    if config.client_id is not None and client_id != config.client_id:
        raise invalid_client()
    if not world.iam.secrets.accepts(secret):
        raise invalid_client()
    return client_id


def basic_credentials(header: str) -> tuple[str, str]:
    """Decode `Basic base64(id:secret)`, or raise 401 `invalid_client`."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise invalid_client() from None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def invalid_client() -> OAuthError:
    """Return the 401 of a client that failed to authenticate."""
    return OAuthError("invalid_client", "Client authentication failed.", status=401)


def _required(fields: dict[str, str], name: str) -> str:
    """Return a required form field, or raise `invalid_request` naming it."""
    value = fields.get(name)
    if not value:
        raise OAuthError("invalid_request", f"Missing required parameter: {name}.")
    return value


def token_fault(world: World, path: str = TOKEN_PATH) -> Fault | None:
    """Spend a fault armed for a token endpoint: raise a refusal, return a transport one."""
    if not world.faults:
        return None
    fault = world.faults.take(vehicle_id=None, path=path)
    if fault is None:
        return None
    world.stats.faults_injected[str(fault.kind)] += 1
    if fault.kind is FaultKind.SERVER_ERROR:
        raise OAuthError("server_error", "The server encountered an error.", status=500)
    if fault.kind is FaultKind.UPSTREAM:
        raise OAuthError("temporarily_unavailable", "Please retry later.", status=503)
    return fault
