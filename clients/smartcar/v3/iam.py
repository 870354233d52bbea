"""SmartcarIAM: the application's access token, by OAuth 2.0 client credentials.

``POST {SMARTCAR_IAM_ORIGIN}/oauth2/token`` with ``grant_type=client_credentials``,
``client_id`` and ``client_secret`` answers ``{access_token, token_type, expires_in}``: a
token valid one hour for the whole fleet, without refresh token. Smartcar's pages show
the request form-encoded with the credentials in the body (every example), while the
parameter table is titled JSON and one live user reports HTTP Basic; form is the default
here, and ``TokenRequestStyle`` selects JSON or Basic (smartcar-v3-notes §1.1).

Secrets rotate without a restart: ``request_token`` tries the configured secrets in turn,
moving to the next only when Smartcar answers ``invalid_client``, and reports by position
which one worked and which were refused, never the secrets themselves. Every error is
scrubbed of every configured secret.
"""

from __future__ import annotations

from enum import StrEnum
from urllib.parse import urlsplit

import httpx

from clients.smartcar._clock import Clock, system_clock, utc_now
from clients.smartcar._transport import Call, Transport, basic_auth
from clients.smartcar.errors import InvalidClient
from clients.smartcar.secret import Secret
from clients.smartcar.v3._errors import iam_error
from clients.smartcar.v3._resources import application_token
from clients.smartcar.v3.credentials import ApplicationCredentials
from clients.smartcar.v3.endpoints import V3Endpoints
from clients.smartcar.v3.models import ApplicationToken, TokenGrant

__all__ = ["SmartcarIAM", "TokenRequestStyle"]

_GRANT = "client_credentials"


class TokenRequestStyle(StrEnum):
    """How the client credentials travel to the token endpoint."""

    FORM = "form"
    """``application/x-www-form-urlencoded`` body with the credentials (the documented one)."""
    JSON = "json"
    """A JSON body with the same three fields (the parameter table's title)."""
    BASIC = "basic"
    """HTTP Basic ``client_id:client_secret`` and a form body with only the grant type."""


class _NoAuth(httpx.Auth):
    """Sends the request as built: the credentials are in its body."""


class SmartcarIAM:
    """Obtains application tokens from Smartcar's IAM server."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        credentials: ApplicationCredentials,
        endpoints: V3Endpoints,
        clock: Clock = system_clock,
        timeout_s: float | None = None,
        style: TokenRequestStyle = TokenRequestStyle.FORM,
    ) -> None:
        if not isinstance(credentials, ApplicationCredentials):
            raise TypeError("credentials must be ApplicationCredentials")
        self._transport = Transport(http=http, clock=clock, timeout_s=timeout_s)
        self._credentials = credentials
        self._url = endpoints.token_url
        self._clock = clock
        self._style = TokenRequestStyle(style)

    async def request_token(self, *, first: int = 0, timeout_s: float | None = None) -> TokenGrant:
        """Obtain a token, trying the client secrets from position ``first`` on (wrapping).

        Start where the last grant succeeded (``TokenGrant.secret_index``) to skip
        secrets already rotated out. Only ``invalid_client`` moves on to the next
        secret; any other failure is raised at once. When every secret is refused,
        InvalidClient says how many were tried.
        """
        secrets = self._credentials.client_secrets
        if isinstance(first, bool) or not isinstance(first, int) or not 0 <= first < len(secrets):
            raise ValueError(f"first must be a secret position from 0 to {len(secrets) - 1}")
        refused: list[int] = []
        last: InvalidClient | None = None
        for index in [*range(first, len(secrets)), *range(first)]:
            try:
                token = await self._grant(secrets[index], timeout_s=timeout_s)
            except InvalidClient as exc:
                refused.append(index)
                last = exc
                continue
            return TokenGrant(token=token, secret_index=index, refused=tuple(refused))
        assert last is not None  # there is at least one secret, and each was refused
        raise InvalidClient(
            error=last.error,
            description=f"all {len(secrets)} client secret(s) refused; last: {last.description}",
            status=last.status,
        ) from None

    async def _grant(self, secret: Secret, *, timeout_s: float | None) -> ApplicationToken:
        issued_at = utc_now(self._clock)  # expiry counts from the request, not the answer
        client_id = self._credentials.client_id
        fields = {"grant_type": _GRANT, "client_id": client_id, "client_secret": secret.reveal()}
        auth: httpx.Auth = _NoAuth()
        form: dict[str, str] | None = fields
        json_body: object = None
        if self._style is TokenRequestStyle.JSON:
            form, json_body = None, fields
        elif self._style is TokenRequestStyle.BASIC:
            auth, form = basic_auth(client_id, secret), {"grant_type": _GRANT}
        call = Call(
            method="POST",
            url=self._url,
            route=urlsplit(self._url).path or "/",
            auth=auth,
            secrets=self._credentials.client_secrets,
            headers={"Accept": "application/json"},
            form=form,
            json_body=json_body,
            empty_body_ok=True,  # the error bodies are undocumented: an empty one is read by status
            timeout_s=timeout_s,
        )
        answer = await self._transport.send(call, read_error=iam_error)
        return application_token(answer.body, issued_at=issued_at)
