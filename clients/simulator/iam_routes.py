"""The IAM token endpoint of API V3: `POST /oauth2/token` (client credentials).

Smartcar's request-access-token page documents a form body (`application/x-www-form-
urlencoded`: `grant_type=client_credentials&client_id=…&client_secret=…`) in its
examples and a JSON body in its parameter table; both are accepted, and so is HTTP Basic
client authentication (reported by one third-party client, not documented) when the body
then names no credentials.

Success: 200 `{"access_token", "token_type": "Bearer", "expires_in": 3600}` with
`Cache-Control: no-store`; no refresh token ("request a new token when the current one
expires"). Errors, as OAuth 2.0 bodies `{"error", "error_description"}` (the body shape is
not documented; the error codes are):

- 400 `invalid_request`: a body that is neither form nor JSON object, a missing
  `grant_type`, `client_id` or `client_secret`, a non-string value, or credentials sent
  both by Basic and in the body;
- 400 `unsupported_grant_type`: a `grant_type` other than `client_credentials` (RFC 6749;
  Smartcar lists no other);
- 401 `invalid_client`: an unknown client id, or a secret that is none of the
  application's (up to three: see `iam`). Descriptions never echo what was sent.

Faults armed with `path: "oauth2/token"` hit this endpoint as `token` hits the v2 one (see
`oauth_routes`).
"""

from __future__ import annotations

import json

from aiohttp import web

from clients.simulator.delivery import WORLD, deliver, json_response
from clients.simulator.error_bodies import OAuthError
from clients.simulator.faults import IAM_TOKEN_PATH
from clients.simulator.iam import IssuedAppToken
from clients.simulator.oauth_routes import basic_credentials, invalid_client, token_fault
from clients.simulator.world import World

GRANT_TYPE = "client_credentials"
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the IAM route."""
    router.add_post(r"/oauth2/token{slash:/?}", token)


async def token(request: web.Request) -> web.StreamResponse:
    """Issue an application token to an authenticated client."""
    world = request.app[WORLD]
    try:
        fault = token_fault(world, IAM_TOKEN_PATH)
        issued = await _grant(world, request)
    except OAuthError as exc:
        world.stats.token_rejections[exc.error] += 1
        raise
    world.stats.token_grants[GRANT_TYPE] += 1
    response = json_response(
        issued.to_json(), headers={"Cache-Control": "no-store", "Pragma": "no-cache"}
    )
    return await deliver(world, request, response, fault)


async def _grant(world: World, request: web.Request) -> IssuedAppToken:
    """Validate the request, authenticate the client, and issue its token."""
    fields = await _fields(request)
    grant_type = fields.get("grant_type")
    if not grant_type:
        raise OAuthError("invalid_request", "Missing required parameter: grant_type.")
    if grant_type != GRANT_TYPE:
        raise OAuthError("unsupported_grant_type", "The grant_type is not supported.")
    client_id, secret = _credentials(request, fields)
    expected_id = world.config.client_id
    if expected_id is not None and client_id != expected_id:
        raise invalid_client()
    if not world.iam.secrets.accepts(secret):
        raise invalid_client()
    return world.iam.tokens.issue(
        client_id, now_s=world.clock.now_s(), ttl_s=world.config.app_token_ttl_s
    )


async def _fields(request: web.Request) -> dict[str, str]:
    """Return the body's parameters (form or JSON object of strings), or raise."""
    if request.content_type == _FORM:
        form = await request.post()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    if request.content_type != _JSON:
        raise OAuthError("invalid_request", f"The request body must be {_FORM} or {_JSON}.")
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError):
        raise OAuthError("invalid_request", "The request body is not valid JSON.") from None
    if not isinstance(body, dict) or not all(isinstance(v, str) for v in body.values()):
        raise OAuthError("invalid_request", "The request body must be a JSON object of strings.")
    return body


def _credentials(request: web.Request, fields: dict[str, str]) -> tuple[str, str]:
    """Return the client id and secret (Basic, or the body's), or raise."""
    header = request.headers.get("Authorization")
    if header is not None:
        if "client_id" in fields or "client_secret" in fields:
            raise OAuthError(
                "invalid_request", "Send the client credentials by one method, not two."
            )
        client_id, secret = basic_credentials(header)
    else:
        client_id, secret = fields.get("client_id", ""), fields.get("client_secret", "")
        for name, value in (("client_id", client_id), ("client_secret", secret)):
            if not value:
                raise OAuthError("invalid_request", f"Missing required parameter: {name}.")
    if not client_id or not secret:
        raise invalid_client()
    return client_id, secret
