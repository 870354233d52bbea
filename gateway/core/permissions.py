"""Permissions: what the gateway asks owners to grant, what each use needs, and what
happens when an owner takes one back.

    REQUESTED_PERMISSIONS   asked for at Connect: REQUIRED_PERMISSIONS, plus read_tires,
                            read_engine_oil, read_charge and control_charge where the car
                            offers them
    DEFAULT_REQUIRED_AT_CONNECT  the ones Connect URLs mark `required:` unless configured
                            otherwise (`ConnectPolicy.required_permissions`)
    OPERATING_PERMISSIONS   what the gateway uses after Connect (telemetry, commands)
    FIELD_PERMISSIONS       the permission reading each telemetry field needs
    COMMAND_PERMISSION      the permission LOCK and UNLOCK need
    CHARGE_PERMISSION       the permission START_CHARGE, STOP_CHARGE, SET_CHARGE_LIMIT need
    command_permission      the permission a command action needs
    ensure_permission       PermissionMissing unless the owner granted a permission
    withdraw_permissions    forget what Smartcar refused; DISCONNECTED when nothing the
                            gateway operates with is left
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime

from gateway.core.errors import PermissionMissing
from gateway.core.model import (
    CommandAction,
    ConnectionStatus,
    LockAction,
    TelemetryField,
    Vehicle,
)
from gateway.core.ports import UnitOfWork
from gateway.core.status import save, with_status

REQUIRED_PERMISSIONS = frozenset(
    {
        "read_vehicle_info",
        "read_vin",
        "read_location",
        "read_odometer",
        "read_battery",
        "read_fuel",
        "read_security",
        "control_security",
    }
)
"""What car sharing needs; the optional ones below are asked for where offered."""

OPTIONAL_PERMISSIONS = frozenset({"read_tires", "read_engine_oil", "read_charge", "control_charge"})
"""Asked for too, where the car offers them: tyres, oil, and an EV's or PHEV's charging."""
REQUESTED_PERMISSIONS = REQUIRED_PERMISSIONS | OPTIONAL_PERMISSIONS
OPERATING_PERMISSIONS = REQUESTED_PERMISSIONS - {"read_vehicle_info", "read_vin"}
"""What the gateway uses after Connect: commands and telemetry. Losing all of it is a
revocation."""

DEFAULT_REQUIRED_AT_CONNECT = frozenset(
    {
        "read_vehicle_info",
        "read_vin",
        "read_location",
        "read_odometer",
        "read_security",
        "control_security",
    }
)
"""What Connect URLs mark with Smartcar's `required:` prefix by default: what the rental flow
cannot work without, on any car. `control_security` hands the car over and takes it back
(Lock/Unlock), `read_security` tells whether it was left locked (and settles a command whose
outcome was lost), `read_odometer` is what billing charges distance by, `read_location`
finds the car, and `read_vehicle_info` and `read_vin` are what Connect itself reads to
identify the car. `read_fuel` and `read_battery` are asked for but not required: which of
them a car can serve depends on its powertrain: Smartcar's preview Connect page announces as
a change effective 2026-06-16 that the prefix locks the owner's checkbox and "does not filter
which vehicles can connect", so before it a required `read_fuel` may have kept EVs out."""

FIELD_PERMISSIONS: Mapping[TelemetryField, str] = {
    TelemetryField.LOCATION: "read_location",
    TelemetryField.ODOMETER: "read_odometer",
    TelemetryField.FUEL: "read_fuel",
    TelemetryField.BATTERY: "read_battery",
    TelemetryField.LOCK_STATUS: "read_security",
    TelemetryField.TIRE_PRESSURE: "read_tires",
    TelemetryField.ENGINE_OIL: "read_engine_oil",
    TelemetryField.CHARGE: "read_charge",
}
COMMAND_PERMISSION = "control_security"
CHARGE_PERMISSION = "control_charge"


def command_permission(action: CommandAction) -> str:
    """Return the permission the command `action` needs."""
    return COMMAND_PERMISSION if isinstance(action, LockAction) else CHARGE_PERMISSION


WITHDRAWN_REASON = "Smartcar refused every permission the owner had granted: access was revoked"


def ensure_permission(vehicle: Vehicle, permission: str) -> None:
    """Raise PermissionMissing unless the owner granted `permission`."""
    if permission not in vehicle.permissions:
        raise PermissionMissing(
            f"vehicle {vehicle.id}: the owner did not grant '{permission}'; reconnect to grant it",
            metadata={"vehicle_id": vehicle.id, "permission": permission},
        )


async def withdraw_permissions(
    uow: UnitOfWork, vehicle_id: str, refused: Iterable[str], *, now: datetime
) -> None:
    """Forget permissions Smartcar refused (403 PERMISSION) although the owner had granted
    them: the owner took them back. Reads and polls stop asking for what is gone and the
    panel lists it as missing; a vehicle left with none of the permissions the gateway
    operates with is DISCONNECTED (a refresh cannot bring permissions back, only a
    reconnect can)."""
    current = await uow.vehicles.get(vehicle_id, for_update=True)
    if current is None:
        return
    gone = frozenset(refused) & current.permissions
    if not gone:
        return
    updated = dataclasses.replace(current, permissions=current.permissions - gone)
    revoked = not updated.permissions & OPERATING_PERMISSIONS
    if revoked and current.status in (ConnectionStatus.ACTIVE, ConnectionStatus.ERROR):
        updated = with_status(
            updated, ConnectionStatus.DISCONNECTED, reason=WITHDRAWN_REASON, now=now
        )
    await save(uow, current, updated)
