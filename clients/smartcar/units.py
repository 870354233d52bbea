"""Unit systems and the conversions that bring Smartcar's imperial answers to metric."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["UnitSystem", "kilometres", "kilopascals", "litres", "percent"]

_KM_PER_MILE = 1.609344
_LITRES_PER_US_GALLON = 3.785411784
_KPA_PER_PSI = 6.894757293168361
_PLACES = 6  # plenty for any sensor; hides binary float noise such as 30.000000000000004


class UnitSystem(StrEnum):
    """The ``sc-unit-system`` values Smartcar knows."""

    METRIC = "metric"
    IMPERIAL = "imperial"

    @classmethod
    def parse(cls, value: str | None) -> UnitSystem | None:
        """Return the unit system named by a header value (any case), or None."""
        if value is None:
            return None
        try:
            return cls(value.strip().lower())
        except ValueError:
            return None


def percent(fraction: float) -> float:
    """Turn a v2 fraction (0-1) into a percentage (0-100)."""
    return round(fraction * 100, _PLACES)


def kilometres(distance: float, source: UnitSystem) -> float:
    """Return a distance in kilometres, converting from miles if ``source`` is imperial."""
    return _convert(distance, _KM_PER_MILE, source)


def litres(volume: float, source: UnitSystem) -> float:
    """Return a volume in litres, converting from US gallons if ``source`` is imperial."""
    return _convert(volume, _LITRES_PER_US_GALLON, source)


def kilopascals(pressure: float, source: UnitSystem) -> float:
    """Return a pressure in kPa, converting from psi if ``source`` is imperial."""
    return _convert(pressure, _KPA_PER_PSI, source)


def _convert(value: float, factor: float, source: UnitSystem) -> float:
    if source is UnitSystem.METRIC:
        return value
    return round(value * factor, _PLACES)
