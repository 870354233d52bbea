"""The IAM token endpoint (`POST /oauth2/token`): client credentials, secrets and expiry."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from clients.simulator import SimulatorConfig
from clients.simulator.iam import fingerprint
from tests.integration.simulator.flows import CLIENT, advance, stats
from tests.integration.simulator.v3_flows import app_token, connect_v3, error_of, v3_client

GRANT = {"grant_type": "client_credentials", "client_id": CLIENT[0], "client_secret": CLIENT[1]}


async def test_a_form_body_gets_an_hour_long_bearer_token() -> None:
    """The documented form request answers `{access_token, token_type, expires_in: 3600}`
    without a refresh token, and is counted as a client_credentials grant."""
    async with v3_client() as (_, client):
        response = await client.post("/oauth2/token", data=GRANT)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"access_token", "token_type", "expires_in"}
        assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
        assert response.headers["cache-control"] == "no-store"
        assert (await stats(client))["token_grants"]["client_credentials"] == 1


@pytest.mark.parametrize(
    "send",
    [
        pytest.param({"json": GRANT}, id="json-body"),
        pytest.param(
            {"data": {"grant_type": "client_credentials"}, "auth": CLIENT}, id="basic-auth"
        ),
    ],
)
async def test_a_json_body_and_basic_auth_are_accepted(send: dict[str, Any]) -> None:
    """The parameter table's JSON body and HTTP Basic client auth also get a token."""
    async with v3_client() as (_, client):
        response = await client.post("/oauth2/token", **send)
        assert response.status_code == 200, response.text
        assert response.json()["expires_in"] == 3600


@pytest.mark.parametrize(
    ("send", "status", "error"),
    [
        pytest.param({"data": {**GRANT, "grant_type": ""}}, 400, "invalid_request", id="no-grant"),
        pytest.param(
            {"data": {**GRANT, "grant_type": "password"}},
            400,
            "unsupported_grant_type",
            id="other-grant",
        ),
        pytest.param(
            {"data": {"grant_type": "client_credentials", "client_id": CLIENT[0]}},
            400,
            "invalid_request",
            id="no-secret",
        ),
        pytest.param({"content": b"grant_type=x"}, 400, "invalid_request", id="no-content-type"),
        pytest.param(
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
            400,
            "invalid_request",
            id="bad-json",
        ),
        pytest.param({"json": {**GRANT, "client_id": 7}}, 400, "invalid_request", id="not-str"),
        pytest.param({"json": ["client_credentials"]}, 400, "invalid_request", id="json-list"),
        pytest.param({"data": GRANT, "auth": CLIENT}, 400, "invalid_request", id="two-methods"),
        pytest.param(
            {"data": {**GRANT, "client_secret": "wrong-secret"}},
            401,
            "invalid_client",
            id="wrong-secret",
        ),
        pytest.param(
            {"data": {**GRANT, "client_id": "someone-else"}}, 401, "invalid_client", id="wrong-id"
        ),
    ],
)
async def test_bad_requests_and_bad_clients_get_oauth_errors(
    send: dict[str, Any], status: int, error: str
) -> None:
    """Malformed requests are 400 (invalid_request or unsupported_grant_type), unknown
    credentials 401 invalid_client; nothing sent is echoed, and the refusal is counted."""
    async with v3_client() as (_, client):
        response = await client.post("/oauth2/token", **send)
        assert response.status_code == status
        body = response.json()
        assert body["error"] == error
        assert "wrong-secret" not in response.text
        assert "sc-request-id" not in response.headers
        if status == 401:
            assert response.headers["www-authenticate"].startswith("Basic")
        counters = await stats(client)
        assert counters["token_rejections"][error] == 1
        assert counters["token_grants"]["client_credentials"] == 0


async def test_an_application_token_expires_after_its_hour() -> None:
    """A token reads until 3600 s have passed, then V3 answers 401 UNAUTHORIZED."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        await advance(client, 3599)
        fresh = await client.get(f"{car.base}/signals", headers=car.headers)
        assert fresh.status_code == 200, fresh.text
        await advance(client, 1)
        expired = await client.get(f"{car.base}/signals", headers=car.headers)
        assert expired.status_code == 401
        assert error_of(expired)["code"] == "UNAUTHORIZED"


async def test_three_secrets_are_valid_at_once_and_a_fourth_is_refused() -> None:
    """`additional_client_secrets` adds up to two valid secrets; `/sim/secrets` lists them
    by fingerprint and refuses a fourth with 409."""
    async with v3_client(additional_client_secrets=("second", "third")) as (_, client):
        for secret in (CLIENT[1], "second", "third"):
            assert await app_token(client, secret)
        listed = (await client.get("/sim/secrets")).json()
        assert listed == {
            "secrets": [fingerprint(s) for s in (CLIENT[1], "second", "third")],
            "any_secret": False,
        }
        assert "second" not in str(listed)
        fourth = await client.post("/sim/secrets", json={"secret": "fourth"})
        assert fourth.status_code == 409
        assert fourth.json()["field"] == "secret"


async def test_a_secret_rotates_without_a_restart() -> None:
    """Add a new secret, switch to it, remove the old one: the old secret is then refused
    on both token endpoints, tokens issued with it keep working until they expire."""
    async with v3_client() as (_, client):
        car = await connect_v3(client)
        added = await client.post("/sim/secrets", json={"secret": "rotated"})
        assert added.status_code == 201, added.text
        new_token = await app_token(client, "rotated")
        removed = await client.request("DELETE", "/sim/secrets", json={"secret": CLIENT[1]})
        assert removed.json()["secrets"] == [fingerprint("rotated")]
        refused = await client.post("/oauth2/token", data=GRANT)
        assert refused.status_code == 401
        v2_refused = await client.post(
            "/oauth/token",
            data={"grant_type": "refresh_token", "refresh_token": "x"},
            auth=CLIENT,
        )
        assert v2_refused.json()["error"] == "invalid_client"
        old = await client.get(f"{car.base}/signals", headers=car.headers)
        assert old.status_code == 200
        new = await client.get(
            f"{car.base}/signals", headers={**car.headers, "Authorization": f"Bearer {new_token}"}
        )
        assert new.status_code == 200
        again = await client.request("DELETE", "/sim/secrets", json={"secret": CLIENT[1]})
        assert again.status_code == 404


async def test_without_a_configured_client_any_credentials_get_a_token() -> None:
    """A simulator started without client credentials accepts any client and secret (as
    its v2 token endpoint does) until a secret is added."""
    async with v3_client(client_id=None, client_secret=None) as (_, client):
        assert await app_token(client, "anything")
        assert (await client.get("/sim/secrets")).json() == {"secrets": [], "any_secret": True}
        await client.post("/sim/secrets", json={"secret": "now-required"})
        refused = await client.post("/oauth2/token", data={**GRANT, "client_secret": "other"})
        assert refused.status_code == 401


@pytest.mark.parametrize(
    ("kind", "status", "error"),
    [("server_error", 500, "server_error"), ("upstream", 503, "temporarily_unavailable")],
)
async def test_faults_armed_for_the_iam_path_refuse_only_there(
    kind: str, status: int, error: str
) -> None:
    """A fault with path `oauth2/token` refuses the IAM endpoint; a fault without a path
    never hits it."""
    async with v3_client() as (_, client):
        await client.post("/sim/faults", json={"kind": "server_error"})
        assert (await client.post("/oauth2/token", data=GRANT)).status_code == 200
        await client.request("DELETE", "/sim/faults")
        await client.post("/sim/faults", json={"kind": kind, "path": "oauth2/token", "count": 1})
        response = await client.post("/oauth2/token", data=GRANT)
        assert (response.status_code, response.json()["error"]) == (status, error)
        assert (await client.post("/oauth2/token", data=GRANT)).status_code == 200


def test_more_than_three_secrets_cannot_be_configured() -> None:
    """A configuration with four secrets is refused naming the field."""
    with pytest.raises(ValueError, match="additional_client_secrets"):
        SimulatorConfig(client_secret="a", additional_client_secrets=("b", "c", "d"))


async def test_secret_control_input_is_checked(client: httpx.AsyncClient) -> None:
    """`/sim/secrets` refuses a missing or empty secret with 400 naming the field."""
    for body in ({}, {"secret": ""}, {"secret": 7}):
        response = await client.post("/sim/secrets", json=body)
        assert response.status_code == 400
        assert response.json()["field"] == "secret"


async def test_application_tokens_are_among_the_issued_secrets() -> None:
    """`World.issued_secrets` lists application tokens beside codes and v2 tokens, for
    leak scans."""
    async with v3_client() as (sim, client):
        car = await connect_v3(client)
        issued = sim.world.issued_secrets()
        assert car.app_token in issued
        assert car.code in issued
