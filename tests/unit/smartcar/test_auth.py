"""SmartcarAuth: Connect URLs, token grants with Basic auth, expiries, and OAuth errors."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from clients.smartcar import (
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    Secret,
    SmartcarAuth,
    SmartcarProtocolError,
    UnauthorizedClient,
    UnsupportedGrantType,
)
from tests.unit.smartcar.fakes import (
    CLIENT_SECRET,
    CREDENTIALS,
    ENDPOINTS,
    NOW,
    REFRESH_TOKEN,
    FakeSmartcar,
)

TOKEN_ANSWER = {
    "access_token": "new-access-token",
    "token_type": "Bearer",
    "expires_in": 7200,
    "refresh_token": "new-refresh-token",
}


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query, keep_blank_values=True)


def _form(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.content.decode())


def _basic(request: httpx.Request) -> str:
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(encoded).decode()


def test_connect_url_carries_every_parameter(auth: SmartcarAuth) -> None:
    """The URL goes to Connect's /oauth/authorize with the documented query."""
    url = auth.connect_url(
        scopes=["read_odometer", "control_security"],
        state="st-123",
        mode="simulated",
        single_select_vin="1HGCM82633A004352",
        force_prompt=True,
        make="TESLA",
        user="fleet-op-7",
        extra_params={"flags": "country:DE"},
    )
    assert url.startswith("https://connect.sc.test/oauth/authorize?")
    assert _query(url) == {
        "response_type": ["code"],
        "client_id": ["client-123"],
        "redirect_uri": ["https://fleet.test/callback"],
        "scope": ["read_odometer control_security"],
        "state": ["st-123"],
        "mode": ["simulated"],
        "approval_prompt": ["force"],
        "single_select": ["true"],
        "single_select_vin": ["1HGCM82633A004352"],
        "make": ["TESLA"],
        "user": ["fleet-op-7"],
        "flags": ["country:DE"],
    }


def test_connect_url_defaults(auth: SmartcarAuth) -> None:
    """By default: live mode, approval_prompt=auto, no single select."""
    query = _query(auth.connect_url(scopes=["read_vin"], state="s"))
    assert query["mode"] == ["live"]
    assert query["approval_prompt"] == ["auto"]
    assert "single_select" not in query
    assert "client_secret" not in str(query)


def test_connect_url_single_select_without_vin(auth: SmartcarAuth) -> None:
    """single_select alone limits the owner to one vehicle without naming it."""
    query = _query(auth.connect_url(scopes=["read_vin"], state="s", single_select=True))
    assert query["single_select"] == ["true"]
    assert "single_select_vin" not in query


def test_connect_url_marks_required_scopes_with_smartcars_prefix(auth: SmartcarAuth) -> None:
    """Scopes named in `required` carry Smartcar's `required:` prefix, in the scopes' order;
    the others are sent as they are."""
    query = _query(
        auth.connect_url(
            scopes=["read_odometer", "control_security", "read_tires"],
            required=["control_security", "read_odometer"],
            state="s",
        )
    )
    assert query["scope"] == ["required:read_odometer required:control_security read_tires"]


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"required": ["read_odometer"]}, "required"),
        ({"required": "read_vin"}, "required"),
        ({"scopes": ["required:read_vin"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"scopes": "read_vin read_odometer"}, "scopes"),
        ({"scopes": ["read vin"]}, "scopes"),
        ({"scopes": [""]}, "scopes"),
        ({"state": ""}, "state"),
        ({"mode": "production"}, "mode"),
        ({"single_select_vin": ""}, "single_select_vin"),
        ({"extra_params": {"state": "override"}}, "extra_params"),
        ({"extra_params": {"redirect_uri": "https://evil.test"}}, "extra_params"),
    ],
)
def test_connect_url_rejects_bad_arguments(
    auth: SmartcarAuth, kwargs: dict[str, Any], named: str
) -> None:
    """Bad input is a ValueError naming the argument."""
    arguments: dict[str, Any] = {"scopes": ["read_vin"], "state": "s", **kwargs}
    with pytest.raises(ValueError, match=named):
        auth.connect_url(**arguments)


async def test_exchange_code_posts_a_form_with_basic_client_auth(
    fake: FakeSmartcar, auth: SmartcarAuth
) -> None:
    """The code goes in a form body; the client authenticates with Basic, never in the body."""
    fake.reply(200, json_body=TOKEN_ANSWER)
    await auth.exchange_code("code-abc")
    request = fake.last
    assert request.method == "POST"
    assert str(request.url) == "https://auth.sc.test/oauth/token"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert _form(request) == {
        "grant_type": ["authorization_code"],
        "code": ["code-abc"],
        "redirect_uri": ["https://fleet.test/callback"],
    }
    assert _basic(request) == f"client-123:{CLIENT_SECRET.reveal()}"
    assert CLIENT_SECRET.reveal() not in str(request.url) + request.content.decode()


async def test_exchange_code_computes_absolute_expiries(
    fake: FakeSmartcar, auth: SmartcarAuth
) -> None:
    """Access expires expires_in after the request; refresh 60 days after it."""
    fake.reply(200, json_body=TOKEN_ANSWER)
    pair = await auth.exchange_code("code-abc")
    assert pair.access_token == Secret("new-access-token")
    assert pair.refresh_token == Secret("new-refresh-token")
    assert pair.token_type == "Bearer"
    assert pair.access_expires_at == NOW + timedelta(hours=2)
    assert pair.refresh_expires_at == NOW + timedelta(days=60)
    assert pair.access_expires_at.tzinfo is UTC


async def test_refresh_expiry_follows_refresh_expires_in_when_stated(
    fake: FakeSmartcar, auth: SmartcarAuth
) -> None:
    """A stated refresh_expires_in replaces the documented 60 days."""
    fake.reply(200, json_body={**TOKEN_ANSWER, "refresh_expires_in": 3600})
    pair = await auth.refresh(REFRESH_TOKEN)
    assert pair.refresh_expires_at == NOW + timedelta(hours=1)


async def test_expiries_count_from_the_request_not_the_answer(fake: FakeSmartcar) -> None:
    """The clock is read when the request starts, so a slow answer never extends expiry."""
    ticks: Iterator[datetime] = iter(NOW + timedelta(seconds=10 * i) for i in range(10))
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        auth = SmartcarAuth(
            http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=lambda: next(ticks)
        )
        fake.reply(200, json_body=TOKEN_ANSWER)
        pair = await auth.exchange_code("code")
    assert pair.access_expires_at == NOW + timedelta(seconds=7200)


async def test_expiries_are_utc_whatever_the_clocks_zone(fake: FakeSmartcar) -> None:
    """A clock in another zone still yields UTC expiry times."""
    paris = timezone(timedelta(hours=2))
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        auth = SmartcarAuth(
            http=http,
            credentials=CREDENTIALS,
            endpoints=ENDPOINTS,
            clock=lambda: NOW.astimezone(paris),
        )
        fake.reply(200, json_body=TOKEN_ANSWER)
        pair = await auth.exchange_code("code")
    assert pair.access_expires_at == NOW + timedelta(hours=2)
    assert pair.access_expires_at.utcoffset() == timedelta(0)


async def test_naive_clock_is_refused(fake: FakeSmartcar) -> None:
    """A clock returning naive datetimes is a ValueError, not a silent local-time bug."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        auth = SmartcarAuth(
            http=http,
            credentials=CREDENTIALS,
            endpoints=ENDPOINTS,
            clock=lambda: datetime(2025, 1, 1),
        )
        with pytest.raises(ValueError, match="timezone-aware"):
            await auth.exchange_code("code")
    assert fake.requests == []


async def test_refresh_posts_the_refresh_grant(fake: FakeSmartcar, auth: SmartcarAuth) -> None:
    """A refresh sends grant_type=refresh_token and the token, with Basic client auth."""
    fake.reply(200, json_body=TOKEN_ANSWER)
    await auth.refresh(REFRESH_TOKEN)
    assert _form(fake.last) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [REFRESH_TOKEN.reveal()],
    }
    assert _basic(fake.last) == f"client-123:{CLIENT_SECRET.reveal()}"


async def test_refresh_requires_a_secret(auth: SmartcarAuth) -> None:
    """A plain-string refresh token is a TypeError: tokens travel as Secret."""
    with pytest.raises(TypeError, match="Secret"):
        await auth.refresh("plain")  # type: ignore[arg-type]


async def test_token_pair_repr_hides_both_tokens(fake: FakeSmartcar, auth: SmartcarAuth) -> None:
    """Printing a TokenPair shows neither token."""
    fake.reply(200, json_body=TOKEN_ANSWER)
    pair = await auth.exchange_code("code")
    assert "new-access-token" not in repr(pair)
    assert "new-refresh-token" not in repr(pair)


@pytest.mark.parametrize(
    ("error", "status", "expected"),
    [
        ("invalid_grant", 400, InvalidGrant),
        ("invalid_client", 401, InvalidClient),
        ("invalid_request", 400, InvalidRequest),
        ("invalid_scope", 400, InvalidScope),
        ("unauthorized_client", 400, UnauthorizedClient),
        ("unsupported_grant_type", 400, UnsupportedGrantType),
        ("temporarily_unavailable", 503, OAuthError),
    ],
)
async def test_oauth_error_bodies_map_to_their_class(
    fake: FakeSmartcar,
    auth: SmartcarAuth,
    error: str,
    status: int,
    expected: type[OAuthError],
) -> None:
    """Each OAuth error value raises its class, keeping error, description and status."""
    fake.reply(status, json_body={"error": error, "error_description": "nope"})
    with pytest.raises(OAuthError) as caught:
        await auth.refresh(REFRESH_TOKEN)
    assert type(caught.value) is expected
    assert (caught.value.error, caught.value.description) == (error, "nope")
    assert caught.value.status == status


async def test_invalid_grant_description_never_echoes_the_refresh_token(
    fake: FakeSmartcar, auth: SmartcarAuth
) -> None:
    """Smartcar's "Invalid refresh_token: <token>" is kept with the token redacted."""
    description = f"Invalid refresh_token: {REFRESH_TOKEN.reveal()}."
    fake.reply(400, json_body={"error": "invalid_grant", "error_description": description})
    with pytest.raises(InvalidGrant) as caught:
        await auth.refresh(REFRESH_TOKEN)
    assert caught.value.description == "Invalid refresh_token: [REDACTED]."
    assert REFRESH_TOKEN.reveal() not in str(caught.value) + repr(caught.value)


@pytest.mark.parametrize(
    "body",
    [{"access_token": "a"}, {**TOKEN_ANSWER, "expires_in": "7200"}, []],
    ids=["missing-keys", "string-expiry", "list"],
)
async def test_malformed_token_answer_is_a_protocol_error(
    fake: FakeSmartcar, auth: SmartcarAuth, body: object
) -> None:
    """A 200 token answer without the documented fields cannot become a TokenPair."""
    fake.reply(200, json_body=body)
    with pytest.raises(SmartcarProtocolError, match="token"):
        await auth.exchange_code("code")


@pytest.mark.parametrize("expires_in", [0, -60])
async def test_non_positive_expiry_is_a_protocol_error(
    fake: FakeSmartcar, auth: SmartcarAuth, expires_in: int
) -> None:
    """A token that expires on arrival would make callers refresh in a loop: refused."""
    fake.reply(200, json_body={**TOKEN_ANSWER, "expires_in": expires_in})
    with pytest.raises(SmartcarProtocolError, match="expires_in"):
        await auth.refresh(REFRESH_TOKEN)
