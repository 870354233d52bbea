"""The control routes of the application's client secrets under `/sim/secrets` (the
dashboard's "API Credentials" tab; errors as in `control_routes`).

Secrets are never shown: the answers name them by fingerprint (see `iam.fingerprint`).

- `GET /sim/secrets` -> `{"secrets": [<fingerprint>, …], "any_secret": bool}` (oldest
  first; `any_secret`: none was ever set, so any secret is accepted);
- `POST /sim/secrets` with `{"secret": "…"}` adds a secret -> 201 and the list; 409 when
  it is already valid or three are held;
- `DELETE /sim/secrets` with `{"secret": "…"}` removes one -> the list; 404 when it was not
  valid. Tokens issued with it stay valid until they expire.

Both token endpoints (`/oauth/token` and `/oauth2/token`) accept every valid secret, so a
client's secret rotation can be tested end to end without a restart.
"""

from __future__ import annotations

from aiohttp import web

from clients.simulator.control_routes import ControlError, guarded, json_body
from clients.simulator.delivery import WORLD, json_response
from clients.simulator.iam import ClientSecrets, SecretsError


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the client-secret control routes."""
    router.add_get("/sim/secrets", guarded(list_secrets))
    router.add_post("/sim/secrets", guarded(add_secret))
    router.add_delete("/sim/secrets", guarded(remove_secret))


async def list_secrets(request: web.Request) -> web.StreamResponse:
    """Return the fingerprints of the valid secrets."""
    return json_response(_listing(request.app[WORLD].iam.secrets))


async def add_secret(request: web.Request) -> web.StreamResponse:
    """Add a client secret."""
    secrets = request.app[WORLD].iam.secrets
    try:
        secrets.add(await _secret(request))
    except SecretsError as exc:
        raise ControlError("secret", str(exc), status=409) from None
    return json_response(_listing(secrets), status=201)


async def remove_secret(request: web.Request) -> web.StreamResponse:
    """Remove a client secret."""
    secrets = request.app[WORLD].iam.secrets
    if not secrets.remove(await _secret(request)):
        raise ControlError("secret", "no such secret", status=404)
    return json_response(_listing(secrets))


async def _secret(request: web.Request) -> str:
    """Return the body's `secret`, or raise ControlError."""
    secret = (await json_body(request)).get("secret")
    if not isinstance(secret, str) or not secret:
        raise ControlError("secret", "must be a non-empty string")
    return secret


def _listing(secrets: ClientSecrets) -> dict[str, object]:
    """Return what the routes answer: fingerprints, never the secrets."""
    return {"secrets": secrets.fingerprints(), "any_secret": secrets.any_secret}
