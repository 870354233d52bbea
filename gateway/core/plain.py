"""Plain forms (JSON-ready dicts) of domain values: telemetry values, command errors and
the details of vehicle events.

Storage keeps them in JSON columns and the shared Redis telemetry cache sends them between
replicas, so both read back what either wrote.

A telemetry value is stored as its dataclass fields plus a `type` tag naming the class,
so a row can be read back without knowing which field it belongs to. A lock status leaves
out the closure groups it has none of (windows, trunks, sunroof), so what a car reporting
doors only writes reads back in versions before those groups; a key this version does not
know is left out when read (a newer replica's), rather than failing the row. A charge's state is
its name (`CHARGING`); one this version does not know reads back as not reported (None).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.core.model import (
    Battery,
    Charge,
    ChargingState,
    CommandError,
    ConnectionStatus,
    DoorState,
    EngineOil,
    FinalReadingState,
    Fuel,
    Location,
    LockStatus,
    Odometer,
    TelemetryValue,
    TirePressure,
)
from gateway.core.vehicle_events import (
    DETAIL_TYPES,
    Closure,
    ClosureKind,
    ErrorState,
    EventDetail,
    ReadingOrigin,
    VehicleEventKind,
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
_CLOSURE_GROUPS = ("doors", "windows", "trunks", "sunroof")
"""A lock status's parts that open."""
_LATER_GROUPS = frozenset(_CLOSURE_GROUPS) - {"doors"}
"""The closure groups stored only when the car reported some (see the module docstring)."""


def telemetry_to_json(value: TelemetryValue) -> dict[str, Any]:
    """Return the JSON form of a telemetry value: its fields and a `type` tag."""
    plain = asdict(value)
    if isinstance(value, LockStatus):
        plain = {k: v for k, v in plain.items() if k not in _LATER_GROUPS or v}
    return {"type": _TAGS[type(value)], **plain}


def telemetry_from_json(data: Mapping[str, Any]) -> TelemetryValue:
    """Rebuild a telemetry value from its JSON form; an unknown `type` is a ValueError."""
    tag = data.get("type")
    cls = _TYPES.get(tag) if isinstance(tag, str) else None
    if cls is None:
        raise ValueError(f"unknown telemetry value type {tag!r}")
    known = {f.name for f in fields(cls)}
    values = {k: v for k, v in data.items() if k in known}
    if cls is LockStatus:
        doors, windows, trunks, sunroof = (
            tuple(DoorState(door=p["door"], status=p["status"]) for p in values.pop(group, ()))
            for group in _CLOSURE_GROUPS
        )
        return LockStatus(doors=doors, windows=windows, trunks=trunks, sunroof=sunroof, **values)
    if cls is Charge:
        return Charge(state=_charging_state(values.pop("state", None)), **values)
    return cls(**values)


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


def event_detail_to_json(detail: EventDetail) -> dict[str, Any]:
    """Return the JSON form of a vehicle event's detail: its fields, times as ISO-8601
    text, enums by value, closures as `{kind, name}` objects."""
    return {f.name: _plain(getattr(detail, f.name)) for f in fields(detail)}


def event_detail_from_json(kind: VehicleEventKind, data: Mapping[str, Any]) -> EventDetail:
    """Rebuild the detail of an event of `kind` from its JSON form (what
    `event_detail_to_json` wrote); a malformed one is a ValueError."""
    cls = DETAIL_TYPES[kind]
    values: dict[str, Any] = {}
    try:
        for f in fields(cls):
            if f.name in data:
                values[f.name] = _typed(str(f.type), data[f.name])
        return cls(**values)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"a malformed {kind} event detail: {exc}") from None


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, Closure):
        return {"kind": value.kind.value, "name": value.name}
    if isinstance(value, tuple):
        return [_plain(item) for item in value]
    return value


def _typed(annotation: str, value: Any) -> Any:
    """Read one stored field back by its annotation (the detail classes use a few types)."""
    if value is None:
        return None
    if "datetime" in annotation:
        return datetime.fromisoformat(value)
    if "tuple[Closure" in annotation:
        return tuple(Closure(kind=ClosureKind(c["kind"]), name=c["name"]) for c in value)
    for enum in _ENUMS:
        if annotation.startswith(enum.__name__):
            return enum(value)
    return value


_ENUMS: tuple[type[StrEnum], ...] = (
    ReadingOrigin,
    ErrorState,
    ConnectionStatus,
    FinalReadingState,
)
