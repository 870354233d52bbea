"""Plain forms (JSON-ready dicts) of domain values: telemetry values and command errors.

Storage keeps them in JSON columns and the shared Redis telemetry cache sends them between
replicas, so both read back what either wrote.

A telemetry value is stored as its dataclass fields plus a `type` tag naming the class,
so a row can be read back without knowing which field it belongs to. A charge's state is
its name (`CHARGING`); one this version does not know reads back as not reported (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from gateway.core.model import (
    Battery,
    Charge,
    ChargingState,
    CommandError,
    DoorState,
    EngineOil,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TelemetryValue,
    TirePressure,
)

_TYPES: dict[str, type[TelemetryValue]] = {
    "location": Location,
    "odometer": Odometer,
    "fuel": Fuel,
    "battery": Battery,
    "lock_status": LockStatus,
    "tire_pressure": TirePressure,
    "engine_oil": EngineOil,
    "charge": Charge,
}
_TAGS: dict[type[TelemetryValue], str] = {cls: tag for tag, cls in _TYPES.items()}


def telemetry_to_json(value: TelemetryValue) -> dict[str, Any]:
    """Return the JSON form of a telemetry value: its fields and a `type` tag."""
    return {"type": _TAGS[type(value)], **asdict(value)}


def telemetry_from_json(data: Mapping[str, Any]) -> TelemetryValue:
    """Rebuild a telemetry value from its JSON form; an unknown `type` is a ValueError."""
    fields = dict(data)
    tag = fields.pop("type", None)
    cls = _TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ValueError(f"unknown telemetry value type {tag!r}")
    if cls is LockStatus:
        doors = tuple(DoorState(**door) for door in fields.pop("doors", ()))
        return LockStatus(doors=doors, **fields)
    if cls is Charge:
        return Charge(state=_charging_state(fields.pop("state", None)), **fields)
    return cls(**fields)


def _charging_state(name: object) -> ChargingState | None:
    """Return the charging state a stored name stands for (None: none, or unknown)."""
    try:
        return ChargingState(name) if isinstance(name, str) else None
    except ValueError:
        return None


def command_error_to_json(error: CommandError) -> dict[str, Any]:
    """Return the JSON form of a command's failure."""
    return asdict(error)


def command_error_from_json(data: Mapping[str, Any]) -> CommandError:
    """Rebuild a command's failure from its JSON form."""
    return CommandError(**data)
