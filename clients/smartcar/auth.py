"""SmartcarAuth: Smartcar Connect URLs and the OAuth 2.0 token grants.

A Connect URL may mark scopes the application cannot work without: Smartcar's documented
``required:`` prefix (``scope=required:read_location read_odometer``; the Tesla page and
the backend tutorial show ``required:read_vehicle_info``). Smartcar's preview Connect page
says that from 2026-06-16 such a scope's checkbox is locked for the owner and the prefix
"does not filter which vehicles can connect" (smartcar-v3-notes §1.3).

The client authenticates to the token endpoint with HTTP Basic auth; the client secret
never goes into a body or a URL. Refused grants raise the OAuthError family, scrubbed
of the code, refresh token and client secret they were about (Smartcar's own message
is ``Invalid refresh_token: <the token>``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, get_args
from urllib.parse import urlencode, urlsplit

import httpx

from clients.smartcar._clock import Clock, system_clock, utc_now
from clients.smartcar._decode import token_pair
from clients.smartcar._transport import Call, Transport, basic_auth
from clients.smartcar._wire import oauth_error
from clients.smartcar.credentials import ClientCredentials
from clients.smartcar.endpoints import SmartcarEndpoints
from clients.smartcar.models import TokenPair
from clients.smartcar.secret import Secret

__all__ = ["ConnectMode", "SmartcarAuth"]

ConnectMode = Literal["live", "test", "simulated"]

_CONNECT_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "mode",
        "approval_prompt",
        "single_select",
        "single_select_vin",
        "make",
        "user",
    }
)


class SmartcarAuth:
    """Builds Connect URLs and exchanges codes and refresh tokens for token pairs."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        credentials: ClientCredentials,
        endpoints: SmartcarEndpoints,
        clock: Clock = system_clock,
        timeout_s: float | None = None,
    ) -> None:
        self._transport = Transport(http=http, clock=clock, timeout_s=timeout_s)
        self._credentials = credentials
        self._endpoints = endpoints
        self._clock = clock

    def connect_url(
        self,
        *,
        scopes: Iterable[str],
        state: str,
        required: Iterable[str] = (),
        mode: ConnectMode = "live",
        single_select_vin: str | None = None,
        single_select: bool = False,
        force_prompt: bool = False,
        make: str | None = None,
        user: str | None = None,
        extra_params: Mapping[str, str] | None = None,
    ) -> str:
        """Return the Smartcar Connect URL that sends the owner back with a code and ``state``.

        ``required`` names scopes among ``scopes`` that are sent with Smartcar's
        ``required:`` prefix (the owner cannot leave them out). ``single_select_vin``
        implies ``single_select``; ``extra_params`` (e.g. ``flags``) may not override a
        parameter this method sets.
        """
        query = {
            "response_type": "code",
            "client_id": self._credentials.client_id,
            "redirect_uri": self._credentials.redirect_uri,
            "scope": _scope(scopes, required),
            "state": _non_empty("state", state),
            "mode": _mode(mode),
            "approval_prompt": "force" if force_prompt else "auto",
        }
        if single_select or single_select_vin is not None:
            query["single_select"] = "true"
        optional = {"single_select_vin": single_select_vin, "make": make, "user": user}
        for name, value in optional.items():
            if value is not None:
                query[name] = _non_empty(name, value)
        query.update(_extra(extra_params))
        return f"{self._endpoints.connect_origin}/oauth/authorize?{urlencode(query)}"

    async def exchange_code(self, code: str, *, timeout_s: float | None = None) -> TokenPair:
        """Exchange an authorization code from the Connect redirect for a token pair."""
        form = {
            "grant_type": "authorization_code",
            "code": _non_empty("code", code),
            "redirect_uri": self._credentials.redirect_uri,
        }
        return await self._grant(form, sent=Secret(code), timeout_s=timeout_s)

    async def refresh(self, refresh_token: Secret, *, timeout_s: float | None = None) -> TokenPair:
        """Trade a (single-use) refresh token for a new token pair."""
        if not isinstance(refresh_token, Secret):
            raise TypeError("refresh_token must be passed as Secret")
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()}
        return await self._grant(form, sent=refresh_token, timeout_s=timeout_s)

    async def _grant(
        self, form: Mapping[str, str], *, sent: Secret, timeout_s: float | None
    ) -> TokenPair:
        issued_at = utc_now(self._clock)  # expiry counts from the request, not the answer
        secret = self._credentials.client_secret
        call = Call(
            method="POST",
            url=self._endpoints.auth_url,
            route=urlsplit(self._endpoints.auth_url).path or "/",
            auth=basic_auth(self._credentials.client_id, secret),
            secrets=(sent, secret),
            headers={"Accept": "application/json"},
            form=form,
            timeout_s=timeout_s,
        )
        answer = await self._transport.send(call, read_error=oauth_error)
        return token_pair(answer.body, issued_at=issued_at)


def _non_empty(name: str, value: str) -> str:
    """Return ``value`` if it is a non-empty string, else raise ValueError naming ``name``."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string")
    return value


REQUIRED_PREFIX = "required:"
"""Smartcar's prefix for a scope the owner may not leave out of the grant."""


def _scope(scopes: Iterable[str], required: Iterable[str]) -> str:
    """Return the space-joined scope, the ``required`` ones prefixed with ``required:``;
    refuse a bare string, blanks, no scope at all, or a required scope not asked for."""
    names = _names("scopes", scopes)
    if not names:
        raise ValueError("scopes must name at least one permission")
    marked = set(_names("required", required))
    unknown = sorted(marked.difference(names))
    if unknown:
        raise ValueError(f"required names scopes not among scopes: {', '.join(unknown)}")
    return " ".join(f"{REQUIRED_PREFIX}{n}" if n in marked else n for n in names)


def _names(what: str, scopes: Iterable[str]) -> list[str]:
    """Return the scope names of a collection, refusing a bare string and blank names."""
    if isinstance(scopes, str):
        raise ValueError(f"{what} must be a collection of scope names, not one string")
    names = list(scopes)
    if any(not isinstance(n, str) or not n or " " in n or ":" in n for n in names):
        raise ValueError(f"{what} must be non-empty names without spaces or colons")
    return names


def _mode(mode: str) -> str:
    """Return ``mode`` if Connect knows it, else raise ValueError naming the choices."""
    if mode not in get_args(ConnectMode):
        raise ValueError(f"mode must be one of {', '.join(get_args(ConnectMode))}")
    return mode


def _extra(extra_params: Mapping[str, str] | None) -> dict[str, str]:
    """Return extra Connect parameters, refusing any that would override ours."""
    extra = dict(extra_params or {})
    clashes = sorted(_CONNECT_PARAMS.intersection(extra))
    if clashes:
        raise ValueError(f"extra_params must not set {', '.join(clashes)}")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items()):
        raise ValueError("extra_params must map strings to strings")
    return extra
