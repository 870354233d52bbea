"""Connection status rules: which statuses allow upstream calls, and how a status changes."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from gateway.core.errors import (
    ConnectionDisconnected,
    ConnectionExpired,
    NotConnected,
    PreconditionFailed,
    ReauthenticationRequired,
)
from gateway.core.model import ConnectionStatus, OwnerAction, StatusTransition, Vehicle
from gateway.core.ports import UnitOfWork
from gateway.core.vehicle_events import StatusChange, record, status_changed


def ensure_connected(vehicle: Vehicle) -> None:
    """Raise the precondition error explaining why this vehicle cannot reach Smartcar."""
    failure: PreconditionFailed | None = None
    reason = vehicle.status_reason or ""
    if vehicle.status is ConnectionStatus.NOT_CONNECTED:
        failure = NotConnected(f"vehicle {vehicle.id} has never been connected; use Connect")
    elif vehicle.status is ConnectionStatus.EXPIRED:
        failure = ConnectionExpired(f"vehicle {vehicle.id}: expired, reconnect it. {reason}")
    elif vehicle.status is ConnectionStatus.DISCONNECTED:
        failure = ConnectionDisconnected(
            f"vehicle {vehicle.id} is disconnected; reconnect to use it. {reason}"
        )
    elif vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION:
        failure = awaiting_owner(vehicle)
    if failure is not None:
        failure.metadata["vehicle_id"] = vehicle.id
        raise failure


def awaiting_owner(vehicle: Vehicle) -> ReauthenticationRequired:
    """The error refusing a call to a car that waits for its owner (NEEDS_REAUTHENTICATION):
    what Smartcar asked of the owner, with its resolution URL when it gave one."""
    action = vehicle.owner_action or OwnerAction(error="CONNECTED_SERVICES_ACCOUNT")
    where = f" ({action.resolution_url})" if action.resolution_url else ""
    return ReauthenticationRequired(
        f"vehicle {vehicle.id} needs its owner: Smartcar said {action.error}; the owner must "
        f"act in their connected-services account or reconnect the car{where}",
        action=action,
        metadata={"vehicle_id": vehicle.id, "status": vehicle.status.value},
    )


def with_status(
    vehicle: Vehicle, status: ConnectionStatus, *, reason: str | None, now: datetime
) -> Vehicle:
    """Return the vehicle in `status`; the change time moves only when the status changes.
    What the owner must do (`owner_action`) is kept only in NEEDS_REAUTHENTICATION."""
    changed_at = now if status is not vehicle.status else vehicle.status_changed_at
    waiting = status is ConnectionStatus.NEEDS_REAUTHENTICATION
    return dataclasses.replace(
        vehicle,
        status=status,
        status_reason=reason,
        status_changed_at=changed_at,
        owner_action=vehicle.owner_action if waiting else None,
    )


async def save(uow: UnitOfWork, before: Vehicle, after: Vehicle) -> None:
    """Write `after`; if its status differs from `before`'s, append the transition and its
    CONNECTION_STATUS_CHANGED event too.

    Every status change goes through here, so the history (and WatchVehicles, and
    WatchVehicleEvents) misses none.
    """
    await uow.vehicles.update(after)
    if after.status is not before.status:
        at = after.status_changed_at or after.created_at or _epoch()
        await uow.transitions.add(
            StatusTransition(
                vehicle_id=after.id,
                from_status=before.status,
                to_status=after.status,
                reason=after.status_reason,
                at=at,
            )
        )
        change = StatusChange(
            from_status=before.status, to_status=after.status, reason=after.status_reason
        )
        await record(uow, status_changed(after.id, change, at=at))


def _epoch() -> datetime:
    return datetime.fromtimestamp(0, tz=UTC)


async def set_grant_status(
    uow: UnitOfWork, grant_id: str, status: ConnectionStatus, *, reason: str, now: datetime
) -> None:
    """Put every vehicle on a grant in `status`; EXPIRED and DISCONNECTED also drop the grant."""
    vehicles = await uow.vehicles.by_grant(grant_id)
    detach = status in (ConnectionStatus.EXPIRED, ConnectionStatus.DISCONNECTED)
    for vehicle in vehicles:
        updated = with_status(vehicle, status, reason=reason, now=now)
        if detach:
            updated = dataclasses.replace(updated, grant_id=None)
        await save(uow, vehicle, updated)
    if detach:
        await uow.grants.delete(grant_id)
