"""Owner revocation: which of Smartcar's answers mean the owner took the application's access
away, and what follows (DISCONNECTED, the reason naming the revocation).

    listing = SmartcarListing(smartcar=smartcar, application=tokens)
    listed = await listing.listed(user_id)       # the cars Smartcar still lists; None: unknown

What Smartcar tells, and how the gateway reads it (the reference's error pages, token facts
and smartcar-v3-notes §2.6, §4.2, §6.2):

- v2, refreshing the owner's pair: a revoked pair is refused with `invalid_grant`, the very
  answer a refresh token past its 60 days or one already spent gets ("invalid, expired,
  already used or revoked"); the pages give no code to tell them apart. The age the gateway
  knows itself: a pair past its 60 days is EXPIRED without asking (`rotation`). For a pair
  refused before then the gateway asks API V3's Connections API whether the owner still
  has the connection (`GET /v3/connections?filter[userId]`, the application's token, not
  billed, and listing connections made through v2 too: the migration guide's "backfill
  existing connections" step, which `migration` relies on as well). A car it no longer
  lists was revoked: DISCONNECTED. A car it still lists only lost its tokens: EXPIRED (a
  reconnect, or the fleet migration to V3, brings it back). When the listing cannot be
  asked (no application credentials, Smartcar failing) DESIGN's rule stands: EXPIRED.
- v2, a vehicle call: a 401 that survives freshly rotated tokens is revocation
  (`upstream`, DESIGN's "early revocation"): the car is DISCONNECTED. The owner's other cars
  on the same pair are too when the listing cannot be asked (as before); with it, only
  those Smartcar no longer lists (revoking one car must not cut off the others).
- V3, a vehicle call: a car whose connection the owner removed is refused 403
  AUTHENTICATION:ACCESS_DENIED, the same answer as for a user id that never owned the car.
  The listing tells them apart: not listed, DISCONNECTED; still listed, the 403 stands
  (`AuthorizationMismatch`) and the status is kept.
- Webhooks: Smartcar documents no event for a deleted connection (the reference found no
  `VEHICLE_CONNECTION_STATUS`; VERIFY, VEHICLE_STATE and VEHICLE_ERROR only), so none is
  read as revocation.
- CONNECTED_SERVICES_ACCOUNT:PERMISSION ("the vehicle owner has revoked Smartcar's access to
  their OEM account", resolution REAUTHENTICATE) is revocation at the manufacturer, not of
  the application's connection, which still stands at Smartcar and works again once the
  owner re-authenticates: NEEDS_REAUTHENTICATION (`reauthentication`), tokens kept.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from typing import Protocol

from gateway.core.application_access import ApplicationTokenSource, as_application
from gateway.core.errors import GatewayError
from gateway.core.model import ConnectionStatus, Grant, SmartcarAccess, Vehicle
from gateway.core.ports import UnitOfWork
from gateway.core.status import save, with_status

_log = logging.getLogger(__name__)

REFRESH_REFUSED = "Smartcar rejected the refresh token (invalid_grant)"
"""Why a pair Smartcar refused while it still lists the connection is EXPIRED."""
REFRESH_REVOKED = (
    "the owner revoked the application's access: Smartcar rejected the refresh token "
    "(invalid_grant) and no longer lists the connection"
)
ACCESS_REVOKED = (
    "the owner revoked the application's access: Smartcar refused the car (403 ACCESS_DENIED) "
    "and no longer lists the connection"
)


class ConnectedCars(Protocol):
    """What the listing asks of Smartcar: the cars a V3 access's user connected (the
    `SmartcarAPI` port's `vehicle_ids`)."""

    async def vehicle_ids(self, access: SmartcarAccess) -> list[str]:
        """Return the Smartcar vehicle ids the access covers."""
        ...


class ConnectionListing(Protocol):
    """Which cars Smartcar still lists as connected by an owner."""

    async def listed(self, user_id: str | None) -> frozenset[str] | None:
        """Return the Smartcar vehicle ids the owner's connections cover now; None when
        that cannot be known (no user id, no application credentials, Smartcar failing)."""
        ...


class SmartcarListing:
    """Asks API V3's Connections API with the application's token (not billed)."""

    def __init__(self, *, smartcar: ConnectedCars, application: ApplicationTokenSource) -> None:
        self._smartcar = smartcar
        self._application = application

    async def listed(self, user_id: str | None) -> frozenset[str] | None:
        """Return the cars the owner still has connected; None when Smartcar cannot say."""
        if not user_id:
            return None
        try:
            cars = await as_application(self._application, user_id, self._smartcar.vehicle_ids)
        except GatewayError as failure:
            _log.warning(
                "could not ask Smartcar whether an owner's connections stand",
                extra={"reason": failure.reason},
            )
            return None
        return frozenset(cars)


def revoked(vehicle: Vehicle, listed: frozenset[str] | None) -> bool:
    """Tell whether the listing shows the owner removed the car's connection (a listing
    that could not be had shows nothing)."""
    return listed is not None and vehicle.smartcar_vehicle_id not in listed


async def retire_refused_pair(
    uow: UnitOfWork, grant: Grant, listed: frozenset[str] | None, *, now: datetime
) -> bool:
    """Settle every vehicle on a pair Smartcar refused with `invalid_grant`: DISCONNECTED
    when Smartcar no longer lists its connection, EXPIRED otherwise; erase the pair.
    Return whether every vehicle on it was revoked (False when none was on it)."""
    vehicles = await uow.vehicles.by_grant(grant.id)
    for vehicle in vehicles:
        gone = revoked(vehicle, listed)
        status = ConnectionStatus.DISCONNECTED if gone else ConnectionStatus.EXPIRED
        reason = REFRESH_REVOKED if gone else REFRESH_REFUSED
        updated = with_status(vehicle, status, reason=reason, now=now)
        await save(uow, vehicle, dataclasses.replace(updated, grant_id=None))
    await uow.grants.delete(grant.id)
    return bool(vehicles) and all(revoked(v, listed) for v in vehicles)


async def disconnect_revoked(
    uow: UnitOfWork, vehicle_id: str, *, reason: str, now: datetime
) -> Vehicle | None:
    """Make one car whose owner revoked access DISCONNECTED, its v2 pair detached (and
    erased once no vehicle uses it); return it (None when it is gone or not connected)."""
    current = await uow.vehicles.get(vehicle_id, for_update=True)
    if current is None or current.status in (
        ConnectionStatus.NOT_CONNECTED,
        ConnectionStatus.DISCONNECTED,
    ):
        return current
    grant_id = current.grant_id
    updated = with_status(current, ConnectionStatus.DISCONNECTED, reason=reason, now=now)
    updated = dataclasses.replace(updated, grant_id=None)
    await save(uow, current, updated)
    if grant_id is not None and not await uow.vehicles.by_grant(grant_id):
        await uow.grants.delete(grant_id)
    return updated
