"""SmartcarApplicationAuth: API V3 client-credentials grants as the core's ApplicationAuth,
secret rotation without a restart, and every failure of the token endpoint translated
once, with no secret in any message."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from urllib.parse import parse_qs

import httpx
import pytest

from clients import smartcar as sc
from clients.smartcar.v3 import SmartcarIAM
from gateway.core import errors
from gateway.core.secret import Secret
from gateway.edge.smartcar.iam import SmartcarApplicationAuth, translate_iam_error
from tests.unit.smartcar.fakes import NOW, FakeSmartcar, fixed_clock
from tests.unit.smartcar.v3.fakes import CLIENT_ID, CREDENTIALS, ENDPOINTS, SECRET_NEW, SECRET_OLD

TOKEN = {"access_token": "app-token-1", "token_type": "Bearer", "expires_in": 3600}
REFUSED = {"error": "invalid_client", "error_description": "Invalid client_id or client_secret"}


@pytest.fixture
def fake() -> FakeSmartcar:
    """A scripted IAM server."""
    return FakeSmartcar()


@pytest.fixture
async def auth(fake: FakeSmartcar) -> AsyncIterator[SmartcarApplicationAuth]:
    """The adapter over the IAM client over the fake, with secrets (old, new)."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as http:
        iam = SmartcarIAM(
            http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=fixed_clock
        )
        yield SmartcarApplicationAuth(iam=iam, client_id=CLIENT_ID)


def secret_sent(request: httpx.Request) -> str:
    """The client secret a token request carried."""
    return parse_qs(request.content.decode())["client_secret"][0]


async def test_a_grant_is_the_token_with_its_hour(
    fake: FakeSmartcar, auth: SmartcarApplicationAuth
) -> None:
    """A token answer becomes an ApplicationGrant: the token as the core's Secret, issued
    when asked for, expiring an hour later."""
    fake.reply(200, json_body=TOKEN)
    grant = await auth.grant()
    assert grant.token == Secret("app-token-1")
    assert (grant.issued_at, grant.expires_at) == (NOW, NOW + timedelta(hours=1))
    assert auth.client_id == CLIENT_ID


async def test_a_rotated_out_secret_is_skipped_from_then_on(
    fake: FakeSmartcar, auth: SmartcarApplicationAuth, caplog: pytest.LogCaptureFixture
) -> None:
    """The old secret is refused, the new one works: the grant succeeds, the refusal is
    logged by position only, and the next grant starts with the new secret."""
    fake.reply(401, json_body=REFUSED)
    fake.reply(200, json_body=TOKEN)
    with caplog.at_level(logging.WARNING, logger="gateway.edge.smartcar.iam"):
        await auth.grant()
    assert [secret_sent(r) for r in fake.requests] == [SECRET_OLD.reveal(), SECRET_NEW.reveal()]
    assert "#1" in caplog.text
    assert "accepted #2" in caplog.text
    assert SECRET_OLD.reveal() not in caplog.text
    assert SECRET_NEW.reveal() not in caplog.text
    fake.reply(200, json_body=TOKEN)
    await auth.grant()
    assert secret_sent(fake.last) == SECRET_NEW.reveal()


async def test_every_secret_refused_is_a_clear_credentials_error(
    fake: FakeSmartcar, auth: SmartcarApplicationAuth
) -> None:
    """invalid_client for both secrets: ApplicationCredentialsRefused saying the client
    credentials were refused, with no secret in its message, repr or details."""
    fake.reply(401, json_body=REFUSED)
    fake.reply(401, json_body=REFUSED)
    with pytest.raises(errors.ApplicationCredentialsRefused) as refused:
        await auth.grant()
    error = refused.value
    shown = f"{error} {error!r} {error.upstream!r} {error.metadata}"
    assert "client credentials" in str(error)
    for secret in (SECRET_OLD, SECRET_NEW):
        assert secret.reveal() not in shown
    assert error.reason == "APPLICATION_CREDENTIALS_REFUSED"


@pytest.mark.parametrize(
    ("status", "body", "headers", "expected"),
    [
        pytest.param(500, {"error": "server_error"}, {}, errors.UpstreamUnavailable, id="5xx"),
        pytest.param(
            503, {"error": "temporarily_unavailable"}, {}, errors.UpstreamUnavailable, id="503"
        ),
        pytest.param(400, {"error": "invalid_request"}, {}, errors.UpstreamRejected, id="400"),
        pytest.param(401, None, {}, errors.ApplicationCredentialsRefused, id="bare-401"),
    ],
)
async def test_failures_of_the_token_endpoint_are_translated(
    fake: FakeSmartcar,
    auth: SmartcarApplicationAuth,
    status: int,
    body: object,
    headers: dict[str, str],
    expected: type[errors.GatewayError],
) -> None:
    """Smartcar failing is UNAVAILABLE, a malformed request is a rejection, a 401 is the
    credentials (a bare one too: Smartcar documents no error body)."""
    for _ in range(2):  # a 401 is tried with each secret
        fake.reply(status, json_body=body, headers=headers)
    with pytest.raises(expected) as failure:
        await auth.grant()
    assert type(failure.value) is expected


async def test_a_rate_limit_at_the_token_endpoint_is_unavailable_with_its_delay(
    fake: FakeSmartcar, auth: SmartcarApplicationAuth
) -> None:
    """A 429 is not the vehicle's limit: UNAVAILABLE, retrying after Smartcar's delay."""
    body = {"errors": [{"status": "429", "type": "RATE_LIMIT", "code": "SMARTCAR_API"}]}
    fake.reply(429, json_body=body, headers={"retry-after": "7"})
    with pytest.raises(errors.UpstreamUnavailable) as limited:
        await auth.grant()
    assert limited.value.retry_after_s == 7


async def test_an_unreachable_token_endpoint_is_unavailable(
    fake: FakeSmartcar, auth: SmartcarApplicationAuth
) -> None:
    """A connection refused or a timeout is UpstreamUnavailable."""
    fake.fail_with(lambda request: httpx.ConnectError("refused", request=request))
    with pytest.raises(errors.UpstreamUnavailable):
        await auth.grant()
    fake.fail_with(lambda request: httpx.ReadTimeout("slow", request=request))
    with pytest.raises(errors.UpstreamUnavailable):
        await auth.grant()


@pytest.mark.parametrize(
    "error",
    [
        sc.InvalidClient(error="invalid_client", description=None, status=401),
        sc.InvalidGrant(error="invalid_grant", description=None, status=400),
        sc.UnsupportedGrantType(error="unsupported_grant_type", description=None, status=400),
        sc.ServerError(status=500, type="SERVER", code=None),
        sc.ValidationError(status=400, type="VALIDATION", code=None),
        sc.AuthenticationError(status=401, type="AUTHENTICATION", code=None),
        sc.SmartcarProtocolError("not JSON"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_every_client_error_becomes_a_gateway_error(error: sc.SmartcarError) -> None:
    """Nothing the IAM client raises is left untranslated."""
    assert isinstance(translate_iam_error(error), errors.GatewayError)


async def test_the_adapter_refuses_an_empty_client_id_or_timeout() -> None:
    """An empty client id or a non-positive timeout is a ValueError at wiring time."""
    async with httpx.AsyncClient() as http:
        iam = SmartcarIAM(http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS)
        with pytest.raises(ValueError, match="client_id"):
            SmartcarApplicationAuth(iam=iam, client_id="")
        with pytest.raises(ValueError, match="timeout_s"):
            SmartcarApplicationAuth(iam=iam, client_id=CLIENT_ID, timeout_s=0)
