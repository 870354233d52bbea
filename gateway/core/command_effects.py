"""What a command does to the car, as its telemetry shows it.

    command            field         a confirmed command leaves    a later reading proves
    LOCK / UNLOCK      LOCK_STATUS   locked / unlocked (doors and  locked / unlocked: done;
                                     the rest as last reported)    the opposite: not done
    START_CHARGE       CHARGE        CHARGING, plugged in          CHARGING: done;
                                                                   NOT_CHARGING: not done
    STOP_CHARGE        CHARGE        NOT_CHARGING                  NOT_CHARGING: done;
                                                                   CHARGING: not done
    SET_CHARGE_LIMIT   CHARGE        the limit asked for           that limit: done;
                                                                   another limit: not done

The command service records the reading a confirmed command leaves (`after`), so that a
read right after it answers what the car was told, not what it reported before. The
reconciler settles a command whose outcome is unknown from what a later reading shows
(`shows`). FULLY_CHARGED proves nothing either way: a car at its limit draws no power
whether or not it was told to charge, and one told to stop may report either. A reading
without the part a command changes (a car that reports no limit) proves nothing.
"""

from __future__ import annotations

import dataclasses

from gateway.core.model import (
    Charge,
    ChargeAction,
    ChargingState,
    Command,
    LockAction,
    LockStatus,
    TelemetryField,
    TelemetryValue,
)


def effect_field(command: Command) -> TelemetryField:
    """Return the telemetry field that shows whether `command` happened."""
    if isinstance(command.action, LockAction):
        return TelemetryField.LOCK_STATUS
    return TelemetryField.CHARGE


def after(command: Command, previous: TelemetryValue | None) -> TelemetryValue:
    """Return the value of `effect_field(command)` once the car confirmed `command`,
    keeping what the command does not change from `previous` (the last value known)."""
    action = command.action
    if isinstance(action, LockAction):
        locked = action is LockAction.LOCK
        if isinstance(previous, LockStatus):
            return dataclasses.replace(previous, is_locked=locked)
        return LockStatus(is_locked=locked)
    charge = previous if isinstance(previous, Charge) else _UNKNOWN_CHARGE
    match action:
        case ChargeAction.START_CHARGE:
            return dataclasses.replace(charge, is_plugged_in=True, state=ChargingState.CHARGING)
        case ChargeAction.STOP_CHARGE:
            return dataclasses.replace(
                charge, state=ChargingState.NOT_CHARGING, minutes_to_complete=None
            )
        case ChargeAction.SET_CHARGE_LIMIT:
            return dataclasses.replace(charge, limit_percent=command.charge_limit_percent)


_UNKNOWN_CHARGE = Charge(is_plugged_in=None, state=None, limit_percent=None)


def shows(command: Command, value: TelemetryValue) -> bool | None:
    """Tell whether `value` shows that `command` happened (True), that it did not (False),
    or proves nothing (None; see the module docstring)."""
    action = command.action
    if isinstance(value, LockStatus) and isinstance(action, LockAction):
        return value.is_locked == (action is LockAction.LOCK)
    if not isinstance(value, Charge) or isinstance(action, LockAction):
        return None
    match action:
        case ChargeAction.START_CHARGE:
            return _state_shows(value.state, done=ChargingState.CHARGING)
        case ChargeAction.STOP_CHARGE:
            return _state_shows(value.state, done=ChargingState.NOT_CHARGING)
        case ChargeAction.SET_CHARGE_LIMIT:
            if value.limit_percent is None:
                return None
            return value.limit_percent == command.charge_limit_percent


def _state_shows(state: ChargingState | None, *, done: ChargingState) -> bool | None:
    """CHARGING or NOT_CHARGING is `done` or its opposite; anything else proves nothing."""
    if state not in (ChargingState.CHARGING, ChargingState.NOT_CHARGING):
        return None
    return state is done


def describe(command: Command, value: TelemetryValue) -> str:
    """Say what `value` shows of the part of the car `command` changes, for messages."""
    if isinstance(value, LockStatus):
        return "locked" if value.is_locked else "unlocked"
    if isinstance(value, Charge):
        if command.action is ChargeAction.SET_CHARGE_LIMIT:
            limit = value.limit_percent
            return "no charge limit" if limit is None else f"a charge limit of {limit:g} %"
        return value.state.value.lower().replace("_", " ") if value.state else "no charge state"
    return "another state"
