"""The Smartcar client's typed readings as the core's telemetry values, for both API versions.

The v2.0 client (`clients.smartcar`) and the V3 client (`clients.smartcar.v3`) return the
same reading types (`Location`, `Odometer`, `Fuel`, `Battery`, `LockStatus`,
`TirePressure`, `EngineOil`), already normalised to percent 0-100, km, litres and kPa, so
one conversion serves the v2 adapter (`adapter`) and the V3 translation (`v3_readings`).
Door names are passed on as the client gives them (`frontLeft`, …); the V3 translation
renames them as the core's model names them (`front_left`, …).
"""

from __future__ import annotations

from clients import smartcar as sc
from gateway.core import model


def telemetry_value(value: object) -> model.TelemetryValue | None:
    """Return the core's value for one client reading; None for anything else."""
    match value:
        case sc.Location(latitude=lat, longitude=lon):
            return model.Location(latitude=lat, longitude=lon)
        case sc.Odometer(distance_km=km):
            return model.Odometer(distance_km=km)
        case sc.Fuel():
            return model.Fuel(
                percent_remaining=value.percent_remaining,
                amount_remaining_l=value.amount_remaining_l,
                range_km=value.range_km,
            )
        case sc.Battery():
            return model.Battery(percent_remaining=value.percent_remaining, range_km=value.range_km)
        case sc.LockStatus():
            doors = tuple(model.DoorState(door=d.type, status=d.status) for d in value.doors)
            return model.LockStatus(is_locked=value.is_locked, doors=doors)
        case sc.TirePressure():
            return model.TirePressure(
                front_left_kpa=value.front_left_kpa,
                front_right_kpa=value.front_right_kpa,
                back_left_kpa=value.back_left_kpa,
                back_right_kpa=value.back_right_kpa,
            )
        case sc.EngineOil(life_remaining_percent=oil):
            return model.EngineOil(life_remaining_percent=oil)
    return None
