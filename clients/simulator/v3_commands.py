"""API V3 commands (`POST /v3/vehicles/{id}/commands/<group>/<action>`): what each one
needs, accepts, refuses, and does to the car.

    path              commandType       permission        cars          refused (409 VEHICLE_STATE)
    security/lock     security-lock     control_security  all           IN_MOTION, DOOR_OPEN
    security/unlock   security-unlock   control_security  all           IN_MOTION
    charge/start      charge-start      control_charge    with battery  CHARGING_PLUG_NOT_CONNECTED,
                                                                        CHARGING_IN_PROGRESS
    charge/stop       charge-stop       control_charge    with battery  NOT_CHARGING
    charge/set-limit  charge-set-limit  control_charge    with battery  -

(The charge commands do what v2's do: `charging`.)

Lock and unlock take no body (Smartcar's example sends none; a body is ignored).
`set-limit` takes `{"data": {"attributes": {"percent": <integer 50-100>}}}` (the lower
bound is a third-party reading of the spec, UNCERTAIN) and echoes it as `parameters`; a
body that is not JSON is 400 VALIDATION:BAD_REQUEST, a missing or out-of-range percent
400 VALIDATION:INVALID_INPUT_FORMAT. A car without a traction battery answers the charge
commands 501 COMPATIBILITY:VEHICLE_NOT_CAPABLE. `commandType` follows the documented
`security-unlock` and `charge-set-limit` (the others by the same pattern, UNCERTAIN).

A command that succeeds changes the car and names the signals it changed (the triggers of
the VEHICLE_STATE webhook event it sends); commands do not return the car's state, which
is read back from the signals, as Smartcar documents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from clients.simulator import charging
from clients.simulator.error_bodies import DOOR_OPEN, IN_MOTION, ApiError
from clients.simulator.fleet import Powertrain
from clients.simulator.v3_errors import BAD_REQUEST, INVALID_INPUT_FORMAT, V3Error
from clients.simulator.vehicles import VehicleState

MIN_CHARGE_LIMIT = charging.MIN_LIMIT_PERCENT
MAX_CHARGE_LIMIT = charging.MAX_LIMIT_PERCENT

Parameters = dict[str, Any]
Apply = Callable[[VehicleState, Parameters, float], None]
"""Carry a command out on a car (with its parameters, at a moment), or raise its refusal."""


@dataclass(frozen=True, kw_only=True)
class Command:
    """One V3 command."""

    path: str
    command_type: str
    action: str
    """How stats count it under `commands` (`LOCK` and `UNLOCK` as for v2)."""
    permission: str
    powertrains: frozenset[Powertrain]
    triggers: tuple[str, ...]
    apply: Apply
    takes_parameters: bool = False

    @property
    def endpoint(self) -> str:
        """Return the name stats and faults know the command by (`v3/commands/<path>`)."""
        return f"v3/commands/{self.path}"

    def capable(self, state: VehicleState) -> bool:
        """Tell whether the car can carry the command out at all."""
        return state.spec.powertrain in self.powertrains

    def parameters(self, raw_body: bytes) -> Parameters | None:
        """Return the command's parameters from the request body, or raise 400."""
        if not self.takes_parameters:
            return None
        return _charge_limit(raw_body)


def _lock(state: VehicleState, _parameters: Parameters, now_s: float) -> None:
    if state.in_motion:
        raise ApiError(IN_MOTION)
    if state.door_open:
        raise ApiError(DOOR_OPEN)
    state.set_lock(locked=True, now_s=now_s)


def _unlock(state: VehicleState, _parameters: Parameters, now_s: float) -> None:
    if state.in_motion:
        raise ApiError(IN_MOTION)
    state.set_lock(locked=False, now_s=now_s)


def _start_charge(state: VehicleState, _parameters: Parameters, now_s: float) -> None:
    charging.start(state, now_s)


def _stop_charge(state: VehicleState, _parameters: Parameters, now_s: float) -> None:
    charging.stop(state, now_s)


def _set_limit(state: VehicleState, parameters: Parameters, now_s: float) -> None:
    charging.set_limit(state, int(parameters["percent"]), now_s)


def _charge_limit(raw_body: bytes) -> Parameters:
    """Return `{"percent": n}` from a set-limit body, or raise 400."""
    try:
        body = json.loads(raw_body or b"null")
    except (ValueError, UnicodeDecodeError):
        raise V3Error(BAD_REQUEST) from None
    data = body.get("data") if isinstance(body, dict) else None
    attributes = data.get("attributes") if isinstance(data, dict) else None
    percent = attributes.get("percent") if isinstance(attributes, dict) else None
    if isinstance(percent, float) and percent.is_integer():
        percent = int(percent)
    if (
        isinstance(percent, bool)
        or not isinstance(percent, int)
        or not MIN_CHARGE_LIMIT <= percent <= MAX_CHARGE_LIMIT
    ):
        raise V3Error(
            INVALID_INPUT_FORMAT,
            detail=(
                "data.attributes.percent must be an integer from "
                f"{MIN_CHARGE_LIMIT} to {MAX_CHARGE_LIMIT}."
            ),
        )
    return {"percent": percent}


_ALL = frozenset(Powertrain)

COMMANDS: dict[str, Command] = {
    command.path: command
    for command in (
        Command(
            path="security/lock",
            action="LOCK",
            command_type="security-lock",
            permission="control_security",
            powertrains=_ALL,
            triggers=("closure-islocked",),
            apply=_lock,
        ),
        Command(
            path="security/unlock",
            action="UNLOCK",
            command_type="security-unlock",
            permission="control_security",
            powertrains=_ALL,
            triggers=("closure-islocked",),
            apply=_unlock,
        ),
        Command(
            path="charge/start",
            action="CHARGE_START",
            command_type="charge-start",
            permission=charging.PERMISSION,
            powertrains=charging.POWERTRAINS,
            triggers=charging.STATE_SIGNALS,
            apply=_start_charge,
        ),
        Command(
            path="charge/stop",
            action="CHARGE_STOP",
            command_type="charge-stop",
            permission=charging.PERMISSION,
            powertrains=charging.POWERTRAINS,
            triggers=charging.STATE_SIGNALS,
            apply=_stop_charge,
        ),
        Command(
            path="charge/set-limit",
            action="CHARGE_SET_LIMIT",
            command_type="charge-set-limit",
            permission=charging.PERMISSION,
            powertrains=charging.POWERTRAINS,
            triggers=charging.LIMIT_SIGNALS,
            apply=_set_limit,
            takes_parameters=True,
        ),
    )
}
