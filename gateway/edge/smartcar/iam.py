"""`SmartcarApplicationAuth`: the ApplicationAuth port on our API V3 IAM client.

One grant is `POST {SMARTCAR_IAM_ORIGIN}/oauth2/token` with the client credentials
(`clients.smartcar.v3.SmartcarIAM`, which follows Smartcar's documented form request;
smartcar-v3-notes §1.1). Several client secrets may be configured, so a secret rotated at
Smartcar needs no restart: the client tries them in turn, moving on only on
`invalid_client`, and this adapter starts each grant from the secret that worked last time,
so a secret already rotated out costs one refused request once, not every hour. Secrets
Smartcar refused are logged by position (never by value) for an operator to remove.

Smartcar documents two errors of the token endpoint (`400 invalid_request`, `401
invalid_client`) but not their bodies; the client reads OAuth bodies and bare statuses
alike. The translation, once, here:

    invalid_client (or any 401)                 → ApplicationCredentialsRefused
    server_error, temporarily_unavailable,
      5xx, 429, timeouts, unreadable answers    → UpstreamUnavailable (with retry-after)
    any other refusal (invalid_request, …)      → UpstreamRejected

The grant's timeout is the adapter's own, not a caller's deadline: one grant serves every
caller waiting for it, and must not end with the first caller's deadline.
"""

from __future__ import annotations

import logging

from clients import smartcar as sc
from clients.smartcar.v3 import SmartcarIAM, TokenGrant
from gateway.core import errors
from gateway.core.model import ApplicationGrant
from gateway.core.secret import Secret
from gateway.edge.smartcar.failures import TRANSIENT_OAUTH_ERRORS, failure_of

_log = logging.getLogger(__name__)

DEFAULT_GRANT_TIMEOUT_S = 10.0
"""Each request to the token endpoint (per client secret tried) ends after this long."""


class SmartcarApplicationAuth:
    """Implements `gateway.core.ports.ApplicationAuth` with Smartcar's IAM token endpoint."""

    def __init__(
        self,
        *,
        iam: SmartcarIAM,
        client_id: str,
        timeout_s: float = DEFAULT_GRANT_TIMEOUT_S,
    ) -> None:
        """`client_id` is the one `iam` was configured with (it keys the stored token)."""
        if not client_id:
            raise ValueError("client_id must not be empty")
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self._iam = iam
        self._client_id = client_id
        self._timeout_s = timeout_s
        self._first = 0

    @property
    def client_id(self) -> str:
        """The client id the tokens are granted to."""
        return self._client_id

    async def grant(self) -> ApplicationGrant:
        """Ask Smartcar for a new application token, from the secret that worked last."""
        try:
            granted = await self._iam.request_token(first=self._first, timeout_s=self._timeout_s)
        except sc.SmartcarError as error:
            raise translate_iam_error(error) from None
        self._first = granted.secret_index
        _warn_about_refused_secrets(granted)
        token = granted.token
        return ApplicationGrant(
            token=Secret(token.access_token.reveal()),
            issued_at=token.issued_at,
            expires_at=token.expires_at,
        )


def translate_iam_error(error: sc.SmartcarError) -> errors.GatewayError:
    """Return the core's error for a failure of the IAM token endpoint."""
    failure = failure_of(error)
    if isinstance(error, sc.InvalidClient | sc.AuthenticationError):
        return errors.ApplicationCredentialsRefused(
            "Smartcar refused the application's client credentials (invalid_client) with "
            "every configured client secret: check SMARTCAR_CLIENT_ID and the client secrets",
            upstream=failure,
        )
    if isinstance(error, sc.OAuthError):
        if error.error in TRANSIENT_OAUTH_ERRORS:
            return errors.UpstreamUnavailable(
                f"Smartcar's token endpoint is failing ({error.error}); try again",
                upstream=failure,
            )
        return errors.UpstreamRejected(
            f"Smartcar refused the application token request ({error.error or 'no reason'})",
            upstream=failure,
        )
    if isinstance(error, sc.SmartcarAPIError):
        if isinstance(error, sc.RateLimited) or error.status >= 500:
            return errors.UpstreamUnavailable(
                f"Smartcar's token endpoint is failing (HTTP {error.status}); try again",
                upstream=failure,
                retry_after_s=error.retry_after_s,
            )
        return errors.UpstreamRejected(
            f"Smartcar refused the application token request (HTTP {error.status})",
            upstream=failure,
        )
    return errors.UpstreamUnavailable(
        f"Smartcar's token endpoint is unreachable: {error}", upstream=failure
    )


def _warn_about_refused_secrets(granted: TokenGrant) -> None:
    """Log the positions of the secrets Smartcar refused before one worked."""
    if not granted.refused:
        return
    positions = ", ".join(str(index + 1) for index in granted.refused)
    _log.warning(
        "Smartcar refused client secret(s) #%s (in configured order, counting from 1) and "
        "accepted #%d: remove the refused ones from the configuration",
        positions,
        granted.secret_index + 1,
        extra={"event": "client_secrets_refused", "refused": positions},
    )
