"""Plain (JSON) forms of telemetry values, as storage and the shared cache keep them: a lock
status with doors only is written as before windows, trunks and sunroof existed, and a key
a newer version wrote is left out when read."""

from __future__ import annotations

from gateway.core.model import DoorState, Fuel, LockStatus
from gateway.core.plain import telemetry_from_json, telemetry_to_json


def test_a_lock_status_keeps_every_closure_group_it_has() -> None:
    """Doors, windows, trunks and sunroof come back as they were; groups a car reported none
    of are not written at all."""
    full = LockStatus(
        is_locked=True,
        doors=(DoorState(door="front_left", status="CLOSED"),),
        windows=(DoorState(door="frontLeft", status="OPEN"),),
        trunks=(DoorState(door="rear", status="OPEN"),),
        sunroof=(DoorState(door="sunroof", status="CLOSED"),),
    )
    assert telemetry_from_json(telemetry_to_json(full)) == full
    doors_only = LockStatus(is_locked=False, doors=(DoorState(door="back_left", status="OPEN"),))
    assert set(telemetry_to_json(doors_only)) == {"type", "is_locked", "doors"}
    assert telemetry_from_json(telemetry_to_json(doors_only)) == doors_only


def test_a_key_this_version_does_not_know_is_left_out() -> None:
    """A value written by a newer version, with a part this one lacks, still reads."""
    written = {"type": "fuel", "percent_remaining": 40.0, "amount_remaining_l": None}
    written |= {"range_km": 300.0, "octane": 95}
    assert telemetry_from_json(written) == Fuel(
        percent_remaining=40.0, amount_remaining_l=None, range_km=300.0
    )
