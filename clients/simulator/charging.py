"""Charging a simulated car: what the charge commands of both APIs do and refuse.

    command    v2.0 (POST …/vehicles/{id}/…)   V3 (POST …/commands/…)   refused (409)
    start      charge {"action": "START"}      charge/start             CHARGING_PLUG_NOT_CONNECTED,
                                                                        CHARGING_IN_PROGRESS
    stop       charge {"action": "STOP"}       charge/stop              NOT_CHARGING
    set limit  charge/limit {"limit": 0.5-1}   charge/set-limit         -
                                               {"data": {"attributes":
                                               {"percent": 50-100}}}

Both need `control_charge`; only cars with a traction battery (BEV, PHEV) charge, others
answer 501 VEHICLE_NOT_CAPABLE (the routes check both before anything is billed). A car
reports what the commands and `/sim/vehicles/{id}/state` (the plug) made of it: plugged in
or not, CHARGING or NOT_CHARGING, its limit. FULLY_CHARGED is not simulated: a car's
battery level follows the distance it drives (`readings`), not its charging.
"""

from __future__ import annotations

from clients.simulator.error_bodies import (
    CHARGING_IN_PROGRESS,
    CHARGING_PLUG_NOT_CONNECTED,
    NOT_CHARGING,
    ApiError,
)
from clients.simulator.fleet import Powertrain
from clients.simulator.vehicles import VehicleState

PERMISSION = "control_charge"
POWERTRAINS = frozenset({Powertrain.BEV, Powertrain.PHEV})
MIN_LIMIT_PERCENT = 50
MAX_LIMIT_PERCENT = 100
STATE_SIGNALS = ("charge-ischarging", "charge-detailedchargingstatus")
"""The signals starting or stopping changes (a webhook event's triggers)."""
LIMIT_SIGNALS = ("charge-chargelimits",)
"""The signal setting the limit changes."""


def start(state: VehicleState, now_s: float) -> None:
    """Start charging, or raise the car's refusal."""
    if not state.plugged_in:
        raise ApiError(CHARGING_PLUG_NOT_CONNECTED)
    if state.charging:
        raise ApiError(CHARGING_IN_PROGRESS)
    state.set_charging(charging=True, now_s=now_s)


def stop(state: VehicleState, now_s: float) -> None:
    """Stop charging, or raise the car's refusal."""
    if not state.charging:
        raise ApiError(NOT_CHARGING)
    state.set_charging(charging=False, now_s=now_s)


def set_limit(state: VehicleState, percent: int, now_s: float) -> None:
    """Set the charge limit (the caller checked it is within the accepted range)."""
    state.set_charge_limit(percent=percent, now_s=now_s)


def state_name(state: VehicleState) -> str:
    """Return the charging state the car reports: CHARGING or NOT_CHARGING."""
    return "CHARGING" if state.charging else "NOT_CHARGING"
