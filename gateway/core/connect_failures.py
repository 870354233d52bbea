"""Connect redirects that carry an error: what Smartcar's codes mean, and how a failed
Connect is recorded.

When connecting fails, Smartcar's Connect sends the owner back with `error` and
`error_description` (and the `state`) instead of a code or user id: "Error redirect
unchanged: error, error_description, state" (smartcar-v3-notes §1.3). The codes the
reference documents are `access_denied` (the owner denied access), `configuration_error`
(the owner met an error page in Connect and returned), `no_vehicles` (the implementation
checklist: "Map Connect errors (e.g. no_vehicles) to clear, actionable messages"); its test
accounts `smartcar@vehicle-incompatible.com` and `smartcar@invalid-subscription.com` stand
for `vehicle_incompatible` and `invalid_subscription`. Each of these gets a hint saying what
to do; any other code is reported as given, without one.

A failed Connect uses up its state (it was issued for one attempt), leaves the vehicle's
status as it was (a connection that works keeps working), and records why in the vehicle's
status reason, where GetVehicle shows it. The caller gets `ConnectFailed`, whose reason names
Smartcar's error: `CONNECT_` and the code in capitals (`CONNECT_ACCESS_DENIED`), the code
itself in the metadata `connect_error`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

from gateway.core.errors import ConnectFailed
from gateway.core.model import ConnectFailure, ConnectionStatus
from gateway.core.ports import UnitOfWork
from gateway.core.status import save
from gateway.core.vehicles import require_vehicle

HINTS: Mapping[str, str] = {
    "access_denied": "the owner denied the application access; send a new Connect URL and "
    "ask them to approve it",
    "configuration_error": "the owner met an error page in Connect and returned (the "
    "application's Connect settings, or a VIN Connect refused)",
    "no_vehicles": "the owner's connected-services account holds no vehicle: they must add the "
    "car or activate connected services, then connect again",
    "vehicle_incompatible": "Smartcar cannot connect this car (see CheckCompatibility)",
    "invalid_subscription": "the car's connected-services subscription is not active: the "
    "owner must renew it, then connect again",
}
"""What each documented Connect error means for the fleet, and what to do about it."""

REASON_PREFIX = "CONNECT_"
MAX_REASON_LENGTH = 63
"""ErrorInfo reasons are UPPER_SNAKE_CASE of at most 63 characters (google.rpc)."""
FALLBACK_REASON = "CONNECT_FAILED"
"""The reason of a code with no letter or digit to name it by."""

_NOT_NAME = re.compile(r"[^A-Z0-9]+")
_CONNECTED = (
    ConnectionStatus.ACTIVE,
    ConnectionStatus.ERROR,
    ConnectionStatus.NEEDS_REAUTHENTICATION,
)


def reason_of(error: str) -> str:
    """Return the ErrorInfo reason naming Smartcar's Connect error: `CONNECT_` and the code
    in capitals, anything but letters and digits turned into `_`."""
    name = _NOT_NAME.sub("_", error.upper()).strip("_")
    if not name:
        return FALLBACK_REASON
    return (REASON_PREFIX + name)[:MAX_REASON_LENGTH].rstrip("_")


def explanation(failure: ConnectFailure) -> str:
    """Say what Smartcar's redirect said, and what to do when the code is a known one."""
    said = failure.error
    if failure.description:
        said += f" ({failure.description})"
    hint = HINTS.get(failure.error)
    return f"{said}: {hint}" if hint else said


async def record_failure(
    uow: UnitOfWork, vehicle_id: str, failure: ConnectFailure
) -> ConnectFailed:
    """Note on the vehicle why its Connect failed (its status reason; the status stays)
    and return the error to answer the caller with. The caller commits."""
    vehicle = await require_vehicle(uow, vehicle_id, for_update=True)
    said = explanation(failure)
    if vehicle.status in _CONNECTED:
        note = f"a new Connect failed; the connection is unchanged. Smartcar: {said}"
    else:
        note = f"Connect failed. Smartcar: {said}"
    await save(uow, vehicle, dataclasses.replace(vehicle, status_reason=note))
    metadata = {"vehicle_id": vehicle_id, "connect_error": failure.error}
    if failure.description:
        metadata["connect_error_description"] = failure.description
    return ConnectFailed(
        f"vehicle {vehicle_id}: {note}", reason=reason_of(failure.error), metadata=metadata
    )
