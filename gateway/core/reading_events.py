"""The events readings make: a lock state that changed, a fuel or charge level gone low,
and what a rental's end reading shows open.

Every writer of the latest readings (a read or poll that asked Smartcar, a confirmed
command, a webhook) stores them through `store_readings`, in its own unit of work with the
vehicle's row locked first. It compares each new reading with the one stored before it, in
that same transaction, so the comparison is the database's and holds across replicas:

- LOCK_STATE_CHANGED when the stored lock state changes (locked to unlocked or back): not
  on every reading, not for the first one known, and not for a reading the car recorded
  before the one it replaces (an old value says nothing new about the car; a poll may
  still store it, and the next newer reading is compared with it, so a state may be
  reported twice, but never one the car had left). A confirmed command is never "older":
  it was sent after every reading held, whatever the car's and the gateway's clocks say;
- LOW_FUEL / LOW_CHARGE when a stored fuel or battery percent goes below its threshold
  (`LowLevelPolicy`): once per crossing. A latch in storage remembers that the event was
  written; it is cleared (re-armed) only once the level is back at threshold +
  `rearm_margin_percent` or more, so a level wavering around the threshold makes one
  event, not one per reading. A car first seen already below the threshold makes one too.

`open_at_end` tells what a lock status shows open, for DOORS_OPEN_AT_RENTAL_END
(`gateway.core.rental_records`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from gateway.core.model import (
    Battery,
    FieldReading,
    Fuel,
    LockStatus,
    TelemetryField,
)
from gateway.core.ports import UnitOfWork
from gateway.core.purpose import ReadPurpose
from gateway.core.vehicle_events import (
    Closure,
    ClosureKind,
    LockChange,
    LowLevel,
    OpenAtEnd,
    ReadingOrigin,
    VehicleEventKind,
    lock_changed,
    low_level,
    record,
)

WATCHED = frozenset({TelemetryField.LOCK_STATUS, TelemetryField.FUEL, TelemetryField.BATTERY})
"""The fields whose changes make events."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LowLevelPolicy:
    """When a fuel or charge level counts as low, and when it is high enough again."""

    low_fuel_percent: float = 15.0
    """LOW_FUEL below this (VG_LOW_FUEL_PERCENT)."""
    low_charge_percent: float = 20.0
    """LOW_CHARGE below this (VG_LOW_CHARGE_PERCENT)."""
    rearm_margin_percent: float = 5.0
    """A level must be back at its threshold plus this before it can make another event:
    a car refuelled a little, or a level read a point up and down again, makes none."""

    def __post_init__(self) -> None:
        for name in ("low_fuel_percent", "low_charge_percent"):
            if not 0 <= getattr(self, name) <= 100:
                raise ValueError(f"{name} must be a percent 0-100")
        if self.rearm_margin_percent < 0:
            raise ValueError("rearm_margin_percent must not be negative")


def origin_of(purpose: ReadPurpose) -> ReadingOrigin:
    """Return the origin of a reading fetched for `purpose`."""
    return _ORIGINS[purpose]


_ORIGINS = {
    ReadPurpose.INTERACTIVE: ReadingOrigin.READ,
    ReadPurpose.RENTAL: ReadingOrigin.RENTAL_READING,
    ReadPurpose.SCHEDULED: ReadingOrigin.POLL,
    ReadPurpose.COMMAND_CHECK: ReadingOrigin.POLL,
    ReadPurpose.OWNER_PROBE: ReadingOrigin.POLL,
}


async def store_readings(
    uow: UnitOfWork,
    vehicle_id: str,
    readings: Sequence[FieldReading],
    *,
    origin: ReadingOrigin,
    at: datetime,
    levels: LowLevelPolicy = LowLevelPolicy(),
    previous: Mapping[TelemetryField, FieldReading] | None = None,
    request_id: str | None = None,
) -> None:
    """Store the vehicle's latest readings and write the events their changes make, in
    `uow` (the vehicle's row locked by the caller). `previous`: the readings stored before,
    when the caller has read them in this unit of work already; `request_id`: the command
    that made the readings (origin COMMAND)."""
    watched = [r for r in readings if r.field in WATCHED and r.value is not None]
    if watched and previous is None:
        previous = await uow.telemetry.latest(vehicle_id)
    await uow.telemetry.store(vehicle_id, readings)
    for reading in watched:
        before = (previous or {}).get(reading.field)
        if before is not None and origin is not ReadingOrigin.COMMAND and _older(reading, before):
            continue
        if isinstance(reading.value, LockStatus):
            await _lock_change(uow, vehicle_id, reading, before, origin, at, request_id)
        else:
            await _low_level(uow, vehicle_id, reading, before, origin, at, levels)


async def _lock_change(
    uow: UnitOfWork,
    vehicle_id: str,
    reading: FieldReading,
    before: FieldReading | None,
    origin: ReadingOrigin,
    at: datetime,
    request_id: str | None,
) -> None:
    """Write LOCK_STATE_CHANGED if the stored lock state changed."""
    new, old = reading.value, before.value if before is not None else None
    if not isinstance(new, LockStatus) or not isinstance(old, LockStatus):
        return
    if new.is_locked == old.is_locked:
        return
    change = LockChange(
        locked=new.is_locked,
        origin=origin,
        recorded_at=reading.recorded_at,
        request_id=request_id if origin is ReadingOrigin.COMMAND else None,
    )
    await record(uow, lock_changed(vehicle_id, change, at=at))


async def _low_level(
    uow: UnitOfWork,
    vehicle_id: str,
    reading: FieldReading,
    before: FieldReading | None,
    origin: ReadingOrigin,
    at: datetime,
    levels: LowLevelPolicy,
) -> None:
    """Write LOW_FUEL or LOW_CHARGE once per crossing below the threshold; re-arm above
    threshold + margin. The latch is touched only when the level moved across a bound
    since the stored reading (a poll of a car that stays low, or high, costs nothing)."""
    if reading.field is TelemetryField.FUEL:
        kind, threshold = VehicleEventKind.LOW_FUEL, levels.low_fuel_percent
    else:
        kind, threshold = VehicleEventKind.LOW_CHARGE, levels.low_charge_percent
    percent = _percent(reading)
    if percent is None:
        return
    was = _percent(before) if before is not None else None
    rearm_at = threshold + levels.rearm_margin_percent
    if percent < threshold:
        if (was is None or was >= threshold) and await uow.events.latch(vehicle_id, kind, at=at):
            detail = LowLevel(
                percent=percent,
                threshold_percent=threshold,
                origin=origin,
                recorded_at=reading.recorded_at,
            )
            await record(uow, low_level(vehicle_id, kind, detail, at=at))
    elif percent >= rearm_at and (was is None or was < rearm_at):
        await uow.events.unlatch(vehicle_id, kind)


def _percent(reading: FieldReading) -> float | None:
    value = reading.value
    if isinstance(value, Fuel | Battery):
        return value.percent_remaining
    return None


def _older(reading: FieldReading, before: FieldReading) -> bool:
    """Tell whether the car recorded `reading` before the stored one."""
    if reading.recorded_at is None or before.recorded_at is None:
        return False
    return reading.recorded_at < before.recorded_at


_GROUPS = (
    (ClosureKind.DOOR, "doors"),
    (ClosureKind.WINDOW, "windows"),
    (ClosureKind.TRUNK, "trunks"),
    (ClosureKind.SUNROOF, "sunroof"),
)


def open_at_end(reading: FieldReading) -> OpenAtEnd | None:
    """What a lock status reading shows open (doors, windows, trunks, sunroof), or None
    when nothing is open or the reading has no lock status."""
    value = reading.value
    if not isinstance(value, LockStatus):
        return None
    opened = tuple(
        Closure(kind=kind, name=part.door)
        for kind, group in _GROUPS
        for part in getattr(value, group)
        if part.is_open
    )
    if not opened:
        return None
    return OpenAtEnd(open=opened, locked=value.is_locked, recorded_at=reading.recorded_at)
