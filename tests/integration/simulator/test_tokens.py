"""`POST /oauth/token`: both grants, client authentication, single-use refresh tokens, expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import (
    CLIENT,
    REDIRECT_URI,
    advance,
    authorize,
    bearer,
    client_for,
    connect,
    exchange,
    refresh,
    stats,
)

AUTHENTICATION_DESCRIPTION = (
    "The authorization header is missing or malformed, or it contains invalid or expired "
    "authentication credentials. Please check for missing parameters, spelling and casing "
    "mistakes, and other syntax issues."
)


@pytest.fixture
async def strict_client() -> AsyncIterator[httpx.AsyncClient]:
    """Return a client for a simulator that only accepts the registered client."""
    config = unlimited_config(client_id=CLIENT[0], client_secret=CLIENT[1])
    async with client_for(config) as http:
        yield http


async def test_code_exchange_returns_a_bearer_pair(client: httpx.AsyncClient) -> None:
    """The authorization_code grant answers Smartcar's token shape, not cacheable."""
    response = await exchange(client, await authorize(client))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 7200
    assert body["refresh_expires_in"] == 60 * 86400
    assert body["access_token"] != body["refresh_token"]
    assert response.headers["cache-control"] == "no-store"
    assert (await stats(client))["token_grants"]["authorization_code"] == 1


async def test_client_credentials_may_come_in_the_form(strict_client: httpx.AsyncClient) -> None:
    """`client_id`/`client_secret` form fields authenticate like HTTP Basic."""
    code = await authorize(strict_client)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT[0],
        "client_secret": CLIENT[1],
    }
    response = await strict_client.post("/oauth/token", data=data)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "auth",
    [("fleet-app", "wrong-secret"), ("other-app", "fleet-secret"), None],
)
async def test_a_configured_client_rejects_others(
    strict_client: httpx.AsyncClient, auth: tuple[str, str] | None
) -> None:
    """Wrong or missing client credentials are 401 invalid_client with a Basic challenge."""
    code = await authorize(strict_client)
    data = {"grant_type": "authorization_code", "code": code}
    response = await strict_client.post("/oauth/token", data=data, auth=auth)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert (await stats(strict_client))["token_rejections"]["invalid_client"] == 1


async def test_a_configured_client_is_checked_at_connect(strict_client: httpx.AsyncClient) -> None:
    """Connect refuses an unregistered client_id with a 400 JSON error."""
    params = {"response_type": "code", "client_id": "nobody", "redirect_uri": REDIRECT_URI}
    response = await strict_client.get("/oauth/authorize", params=params)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


async def test_refresh_mints_a_new_pair_and_keeps_the_old_access(
    client: httpx.AsyncClient,
) -> None:
    """A refresh returns a new pair; the previous access token works until it expires."""
    session = await connect(client)
    response = await refresh(client, session.refresh_token)
    assert response.status_code == 200
    new = response.json()
    assert new["refresh_token"] != session.refresh_token
    assert new["access_token"] != session.access_token
    for token in (session.access_token, new["access_token"]):
        user = await client.get("/v2.0/user", headers=bearer(token))
        assert user.status_code == 200
    assert (await stats(client))["token_grants"]["refresh_token"] == 1


async def test_refresh_reuse_inside_the_grace_window_succeeds(client: httpx.AsyncClient) -> None:
    """Reusing a refresh token within 60 s mints another valid pair and is counted."""
    session = await connect(client)
    first = await refresh(client, session.refresh_token)
    await advance(client, 59)
    second = await refresh(client, session.refresh_token)
    assert second.status_code == 200
    assert second.json()["refresh_token"] != first.json()["refresh_token"]
    counters = await stats(client)
    assert counters["token_grants"]["refresh_token"] == 2
    assert counters["refresh_token_reuses"] == 1


async def test_refresh_reuse_after_the_grace_window_is_invalid_grant(
    client: httpx.AsyncClient,
) -> None:
    """Past 60 s after first use the refresh token is invalid_grant, and never echoed."""
    session = await connect(client)
    assert (await refresh(client, session.refresh_token)).status_code == 200
    await advance(client, 61)
    response = await refresh(client, session.refresh_token)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid refresh_token: it was already used.",
    }
    assert session.refresh_token not in response.text
    assert (await stats(client))["token_rejections"]["invalid_grant"] == 1


async def test_unknown_refresh_token_is_invalid_grant(client: httpx.AsyncClient) -> None:
    """A made-up refresh token is invalid_grant without repeating it."""
    response = await refresh(client, "THIS_SHOULD_NOT_WORK")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "THIS_SHOULD_NOT_WORK" not in response.text


async def test_access_tokens_expire_after_two_simulated_hours(client: httpx.AsyncClient) -> None:
    """After 7200 s of simulated time the access token gets Smartcar's 401 body."""
    session = await connect(client)
    await advance(client, 7199)
    assert (await client.get("/v2.0/user", headers=session.headers)).status_code == 200
    await advance(client, 2)
    response = await client.get(
        f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=session.headers
    )
    assert response.status_code == 401
    body = response.json()
    assert body["type"] == "AUTHENTICATION"
    assert body["code"] is None
    assert body["description"] == AUTHENTICATION_DESCRIPTION
    assert body["requestId"] == response.headers["sc-request-id"]
    assert (await refresh(client, session.refresh_token)).status_code == 200


async def test_refresh_tokens_expire_after_sixty_simulated_days(
    client: httpx.AsyncClient,
) -> None:
    """An unused refresh token older than 60 days is invalid_grant."""
    session = await connect(client)
    await advance(client, 60 * 86400 + 1)
    response = await refresh(client, session.refresh_token)
    assert response.status_code == 400
    assert response.json()["error_description"] == "Invalid refresh_token: it has expired."


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"grant_type": "password", "username": "x"}, "unsupported_grant_type"),
        ({"code": "abc"}, "invalid_request"),
        ({"grant_type": "authorization_code"}, "invalid_request"),
        ({"grant_type": "refresh_token"}, "invalid_request"),
    ],
)
async def test_bad_grants_get_oauth_errors(
    client: httpx.AsyncClient, data: dict[str, str], error: str
) -> None:
    """Unknown or incomplete grants are 400 with the matching OAuth error."""
    response = await client.post("/oauth/token", data=data, auth=CLIENT)
    assert response.status_code == 400
    assert response.json()["error"] == error


async def test_a_json_body_is_invalid_request(client: httpx.AsyncClient) -> None:
    """The token endpoint wants a form body; JSON is invalid_request."""
    response = await client.post(
        "/oauth/token", json={"grant_type": "refresh_token", "refresh_token": "x"}, auth=CLIENT
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_tokens_are_bound_to_their_client(client: httpx.AsyncClient) -> None:
    """A code or refresh token presented by another client is invalid_grant."""
    code = await authorize(client)
    data = {"grant_type": "authorization_code", "code": code}
    response = await client.post("/oauth/token", data=data, auth=("someone-else", "x"))
    assert response.status_code == 400
    assert response.json()["error_description"] == "Invalid code: it was issued to another client."
