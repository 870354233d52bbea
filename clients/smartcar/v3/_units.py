"""Free-form V3 unit strings normalised to kilometres, litres, kPa and percent.

API V3 does not spell units one way (smartcar-v3-notes §3.2): its docs write
``kilometers``, ``liters``, ``percent``; live payloads ``km``, ``kPa``; imperial answers
``miles``, ``gallons``, ``psi``; the older spec ``percentage`` and ``bar``. Units are
matched case-insensitively. A value sent without a unit is in the answer's unit system
(metric unless Smartcar said otherwise); a percentage without a unit is 0-100, as the
signal pages document (a fraction seen once in a TEST-mode webhook is not guessed at).
A unit we do not know raises ``UnknownUnit`` rather than being passed through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from clients.smartcar.units import UnitSystem, kilometres, kilopascals, litres

__all__ = [
    "UnknownUnit",
    "to_kilometres",
    "to_kilopascals",
    "to_litres",
    "to_minutes",
    "to_percent",
]

_PLACES = 6

Convert = Callable[[float], float]


def _same(value: float) -> float:
    return value


def _imperial(convert: Callable[[float, UnitSystem], float]) -> Convert:
    return lambda value: convert(value, UnitSystem.IMPERIAL)


_DISTANCE: Mapping[str, Convert] = {
    **dict.fromkeys(("km", "kms", "kilometer", "kilometers", "kilometre", "kilometres"), _same),
    **dict.fromkeys(("mi", "mile", "miles"), _imperial(kilometres)),
}
_VOLUME: Mapping[str, Convert] = {
    **dict.fromkeys(("l", "liter", "liters", "litre", "litres"), _same),
    **dict.fromkeys(("gal", "gallon", "gallons"), _imperial(litres)),
}
_PRESSURE: Mapping[str, Convert] = {
    **dict.fromkeys(("kpa", "kilopascal", "kilopascals"), _same),
    "bar": lambda value: round(value * 100, _PLACES),
    "psi": _imperial(kilopascals),
}
_PERCENT = frozenset({"percent", "percentage", "%"})
_DURATION: Mapping[str, Convert] = {
    **dict.fromkeys(("min", "mins", "minute", "minutes"), _same),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), lambda value: round(value * 60, _PLACES)),
}

_DEFAULT_UNIT = {
    UnitSystem.METRIC: {"distance": "km", "volume": "l", "pressure": "kpa"},
    UnitSystem.IMPERIAL: {"distance": "miles", "volume": "gallons", "pressure": "psi"},
}


class UnknownUnit(ValueError):
    """A unit string that is not one of the dimension's known spellings."""


def to_kilometres(value: float, unit: str | None, system: UnitSystem) -> float:
    """Return a distance in km."""
    return _convert(value, unit, system, "distance", _DISTANCE)


def to_litres(value: float, unit: str | None, system: UnitSystem) -> float:
    """Return a volume in litres."""
    return _convert(value, unit, system, "volume", _VOLUME)


def to_kilopascals(value: float, unit: str | None, system: UnitSystem) -> float:
    """Return a pressure in kPa."""
    return _convert(value, unit, system, "pressure", _PRESSURE)


def to_percent(value: float, unit: str | None) -> float:
    """Return a percentage (0-100 as sent); a unit other than a percentage is refused."""
    if unit is not None and unit.strip().lower() not in _PERCENT:
        raise UnknownUnit("a percentage")
    return value


def to_minutes(value: float, unit: str | None) -> float:
    """Return a duration in minutes; without a unit it is minutes, as Smartcar documents
    ``charge-timetocomplete`` ("in minutes"; live answers spell ``minute`` or nothing)."""
    name = unit.strip().lower() if unit is not None else "minutes"
    convert = _DURATION.get(name)
    if convert is None:
        raise UnknownUnit(f"a duration unit ({', '.join(sorted(_DURATION))})")
    return convert(value)


def _convert(
    value: float,
    unit: str | None,
    system: UnitSystem,
    dimension: str,
    table: Mapping[str, Convert],
) -> float:
    name = unit.strip().lower() if unit is not None else _DEFAULT_UNIT[system][dimension]
    convert = table.get(name)
    if convert is None:
        raise UnknownUnit(f"a {dimension} unit ({', '.join(sorted(table))})")
    return convert(value)
