"""Calls authorised by the application's Smartcar API V3 token rather than an owner's.

    listed = await as_application(tokens, user_id, smartcar.vehicle_ids)

API V3 authorises the application once (client credentials, `gateway.core.application_tokens`)
and names the owner per request. Outside a vehicle's upstream path (Connect, the fleet
migration, checking whether an owner still has a connection, deleting a connection whose
owner tokens are gone) a call runs with that token here: a token Smartcar refuses is
replaced once and the call retried; refused again, the application's own credentials are
at fault (`UpstreamUnavailable`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from gateway.core.errors import UpstreamUnavailable
from gateway.core.model import SmartcarAccess
from gateway.core.ports import TokenRejected
from gateway.core.secret import Secret

T = TypeVar("T")

APPLICATION_REFUSED = (
    "Smartcar refused a freshly granted application token; check the application's client "
    "credentials"
)


class ApplicationTokenSource(Protocol):
    """The application's Smartcar API V3 token, shared by the fleet
    (`gateway.core.application_tokens`)."""

    async def current(self) -> Secret:
        """Return a valid application token (granting one only when none is)."""
        ...

    async def rejected(self, token: Secret) -> Secret:
        """Drop `token`, which Smartcar refused, and return a newer one."""
        ...


async def as_application(
    source: ApplicationTokenSource,
    user_id: str,
    call: Callable[[SmartcarAccess], Awaitable[T]],
) -> T:
    """Run `call` with the application's token for the owner `user_id`, outside a
    vehicle's upstream path (Connect, the fleet migration): a refused token is replaced
    once and the call retried; refused again is UpstreamUnavailable (the application's own
    credentials are at fault)."""
    token = await source.current()
    try:
        return await call(SmartcarAccess.v3(token, user_id=user_id))
    except TokenRejected:
        token = await source.rejected(token)
    try:
        return await call(SmartcarAccess.v3(token, user_id=user_id))
    except TokenRejected:
        raise UpstreamUnavailable(APPLICATION_REFUSED) from None
