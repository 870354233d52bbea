"""SmartcarIAM: client-credentials grants, their expiry, typed refusals, secret rotation."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from clients.smartcar import (
    AppRateLimited,
    InvalidClient,
    InvalidRequest,
    OAuthError,
    Secret,
    ServerError,
    SmartcarError,
    SmartcarProtocolError,
    SmartcarTimeout,
)
from clients.smartcar.v3 import (
    ApplicationCredentials,
    SmartcarIAM,
    TokenRequestStyle,
)
from tests.unit.smartcar.fakes import NOW, FakeSmartcar, fixed_clock
from tests.unit.smartcar.v3.fakes import (
    CLIENT_ID,
    CREDENTIALS,
    ENDPOINTS,
    SECRET_NEW,
    SECRET_OLD,
    v3_error,
)

TOKEN = {"access_token": "app-token-1", "token_type": "Bearer", "expires_in": 3600}
TOKEN_URL = "https://iam.sc.test/oauth2/token"


def _form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


def _iam(http: httpx.AsyncClient, style: TokenRequestStyle, *secrets: Secret) -> SmartcarIAM:
    credentials = ApplicationCredentials(client_id=CLIENT_ID, client_secrets=secrets)
    return SmartcarIAM(
        http=http, credentials=credentials, endpoints=ENDPOINTS, clock=fixed_clock, style=style
    )


async def test_token_request_is_form_encoded_with_the_credentials_in_the_body(
    fake: FakeSmartcar, iam: SmartcarIAM
) -> None:
    """POST {iam}/oauth2/token, form body grant_type/client_id/client_secret, no auth header."""
    fake.reply(200, json_body=TOKEN)
    await iam.request_token()
    request = fake.last
    assert (request.method, str(request.url)) == ("POST", TOKEN_URL)
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert _form(request) == {
        "grant_type": ["client_credentials"],
        "client_id": [CLIENT_ID],
        "client_secret": [SECRET_OLD.reveal()],
    }
    assert "authorization" not in request.headers


async def test_token_answer_becomes_an_application_token_valid_one_hour(
    fake: FakeSmartcar, iam: SmartcarIAM
) -> None:
    """The token is a Secret; it expires 3,600 s after the request was made."""
    fake.reply(200, json_body=TOKEN)
    grant = await iam.request_token()
    token = grant.token
    assert token.access_token == Secret("app-token-1")
    assert token.token_type == "Bearer"
    assert token.issued_at == NOW
    assert token.expires_at == NOW + timedelta(seconds=3600)
    assert (grant.secret_index, grant.refused) == (0, ())
    assert "app-token-1" not in repr(grant)


async def test_json_style_sends_the_same_fields_as_json(
    fake: FakeSmartcar, http: httpx.AsyncClient
) -> None:
    """TokenRequestStyle.JSON: the parameter table's JSON body."""
    fake.reply(200, json_body=TOKEN)
    await _iam(http, TokenRequestStyle.JSON, SECRET_NEW).request_token()
    assert fake.last.headers["content-type"] == "application/json"
    assert json.loads(fake.last.content) == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET_NEW.reveal(),
    }


async def test_basic_style_sends_the_credentials_as_basic_auth(
    fake: FakeSmartcar, http: httpx.AsyncClient
) -> None:
    """TokenRequestStyle.BASIC: Basic client_id:secret, only the grant type in the body."""
    fake.reply(200, json_body=TOKEN)
    await _iam(http, TokenRequestStyle.BASIC, SECRET_NEW).request_token()
    scheme, _, encoded = fake.last.headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == (
        "Basic",
        f"{CLIENT_ID}:{SECRET_NEW.reveal()}",
    )
    assert _form(fake.last) == {"grant_type": ["client_credentials"]}


@pytest.mark.parametrize(
    ("answer", "lifetime_s", "token_type"),
    [
        ({"access_token": "t", "token_type": "bearer", "expires_in": 3600}, 3600, "bearer"),
        ({"access_token": "t", "expires_in": "3600"}, 3600, "Bearer"),
        ({"access_token": "t", "token_type": "Bearer"}, 3600, "Bearer"),
        ({"access_token": "t", "token_type": "Bearer", "expires_in": 1800.5}, 1800.5, "Bearer"),
    ],
    ids=["lower-case-type", "string-expiry", "no-expiry", "fractional"],
)
async def test_token_answer_variants(
    fake: FakeSmartcar,
    iam: SmartcarIAM,
    answer: dict[str, Any],
    lifetime_s: float,
    token_type: str,
) -> None:
    """Any case of Bearer, expires_in as digits, and a missing expires_in (one hour) read."""
    fake.reply(200, json_body=answer)
    token = (await iam.request_token()).token
    assert token.expires_at - token.issued_at == timedelta(seconds=lifetime_s)
    assert token.token_type == token_type


@pytest.mark.parametrize(
    ("answer", "named"),
    [
        ({"token_type": "Bearer", "expires_in": 3600}, "access_token"),
        ({"access_token": "", "expires_in": 3600}, "access_token"),
        ({"access_token": "t", "token_type": "mac"}, "token_type"),
        ({"access_token": "t", "expires_in": 0}, "expires_in"),
        ({"access_token": "t", "expires_in": -5}, "expires_in"),
        ({"access_token": "t", "expires_in": "soon"}, "expires_in"),
        ({"access_token": "t", "expires_in": 1e300}, "expires_in"),
        ({"access_token": "t", "expires_in": True}, "expires_in"),
        (["not", "an", "object"], "token"),
    ],
)
async def test_unusable_token_answers_are_protocol_errors(
    fake: FakeSmartcar, iam: SmartcarIAM, answer: Any, named: str
) -> None:
    """A token answer without a usable token or lifetime names the key; never a crash."""
    fake.reply(200, json_body=answer)
    with pytest.raises(SmartcarProtocolError, match=named):
        await iam.request_token()


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (401, {"error": "invalid_client", "error_description": "bad secret"}, InvalidClient),
        (400, {"error": "invalid_request", "error_description": "no grant"}, InvalidRequest),
        (401, v3_error(401, "AUTHENTICATION", "UNAUTHORIZED"), InvalidClient),
        (400, v3_error(400, "VALIDATION", "BAD_REQUEST"), InvalidRequest),
        (401, {"type": "AUTHENTICATION", "code": None, "description": "nope"}, InvalidClient),
        (401, None, InvalidClient),
        (400, None, InvalidRequest),
        (500, {"error": "server_error"}, OAuthError),
        (500, v3_error(500, "SERVER", "INTERNAL"), ServerError),
        (429, v3_error(429, "RATE_LIMIT", "SMARTCAR_API"), AppRateLimited),
    ],
    ids=[
        "oauth-401",
        "oauth-400",
        "v3-401",
        "v3-400",
        "v2-401",
        "empty-401",
        "empty-400",
        "oauth-500",
        "v3-500",
        "v3-429",
    ],
)
async def test_token_errors_are_typed_whatever_the_body(
    fake: FakeSmartcar,
    http: httpx.AsyncClient,
    status: int,
    body: Any,
    expected: type[SmartcarError],
) -> None:
    """400 is InvalidRequest and 401 InvalidClient in any body shape, or none; others by body."""
    if body is None:
        fake.reply(status, content=b"")
    else:
        fake.reply(status, json_body=body)
    with pytest.raises(SmartcarError) as caught:
        await _iam(http, TokenRequestStyle.FORM, SECRET_OLD).request_token()
    assert type(caught.value) is expected


async def test_invalid_request_carries_the_description(
    fake: FakeSmartcar, iam: SmartcarIAM
) -> None:
    """What Smartcar said is kept: the OAuth description or the V3 detail."""
    fake.reply(400, json_body=v3_error(400, "VALIDATION", "BAD_REQUEST", detail="grant_type"))
    with pytest.raises(InvalidRequest) as caught:
        await iam.request_token()
    assert (caught.value.error, caught.value.status) == ("invalid_request", 400)
    assert caught.value.description == "grant_type"


async def test_a_refused_secret_moves_on_to_the_next(fake: FakeSmartcar, iam: SmartcarIAM) -> None:
    """invalid_client on the first secret → the second is tried; the grant says which."""
    fake.reply(401, json_body={"error": "invalid_client"})
    fake.reply(200, json_body=TOKEN)
    grant = await iam.request_token()
    sent = [_form(request)["client_secret"] for request in fake.requests]
    assert sent == [[SECRET_OLD.reveal()], [SECRET_NEW.reveal()]]
    assert (grant.secret_index, grant.refused) == (1, (0,))


async def test_first_starts_at_the_secret_that_worked_last(
    fake: FakeSmartcar, iam: SmartcarIAM
) -> None:
    """first=1 tries the second secret first, then wraps round to the first."""
    fake.reply(401, json_body={"error": "invalid_client"})
    fake.reply(200, json_body=TOKEN)
    grant = await iam.request_token(first=1)
    sent = [_form(request)["client_secret"] for request in fake.requests]
    assert sent == [[SECRET_NEW.reveal()], [SECRET_OLD.reveal()]]
    assert (grant.secret_index, grant.refused) == (0, (1,))


async def test_every_secret_refused_is_invalid_client_naming_how_many(
    fake: FakeSmartcar, iam: SmartcarIAM
) -> None:
    """When all secrets are refused, InvalidClient says so (and shows none of them)."""
    for _ in range(2):
        fake.reply(401, json_body={"error": "invalid_client", "error_description": "unknown"})
    with pytest.raises(InvalidClient) as caught:
        await iam.request_token()
    assert "all 2 client secret(s) refused" in str(caught.value)
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "script",
    [
        lambda fake: fake.reply(400, json_body={"error": "invalid_request"}),
        lambda fake: fake.reply(503, json_body=v3_error(503, "SERVER", "INTERNAL")),
        lambda fake: fake.fail_with(lambda request: httpx.ReadTimeout("t", request=request)),
    ],
    ids=["invalid-request", "server-error", "timeout"],
)
async def test_other_failures_do_not_try_another_secret(
    fake: FakeSmartcar, iam: SmartcarIAM, script: Any
) -> None:
    """Only invalid_client is about the secret: anything else is raised at once."""
    script(fake)
    with pytest.raises((InvalidRequest, ServerError, SmartcarTimeout)):
        await iam.request_token()
    assert len(fake.requests) == 1


@pytest.mark.parametrize("first", [-1, 2, True, "0"])
async def test_first_must_be_a_secret_position(iam: SmartcarIAM, first: Any) -> None:
    """A position outside the configured secrets is a ValueError."""
    with pytest.raises(ValueError, match="first"):
        await iam.request_token(first=first)


def test_credentials_must_be_application_credentials(http: httpx.AsyncClient) -> None:
    """v2 ClientCredentials (or anything else) are refused at construction."""
    with pytest.raises(TypeError, match="ApplicationCredentials"):
        SmartcarIAM(http=http, credentials=CREDENTIALS.client_id, endpoints=ENDPOINTS)  # type: ignore[arg-type]
