"""Which reported readings are plausible enough to record, whatever API reported them.

- A reading's time must lie in `EARLIEST` .. arrival + `MAX_AHEAD` (2000-01-01 to one hour
  after the report arrived): seconds, microseconds or nanoseconds sent as milliseconds fall
  outside. A reading dated in the future would otherwise hide every later one, as the
  gateway never replaces a reading with one recorded earlier.
- Values must lie in physical bounds: latitude ±90, longitude ±180, odometer 0..10 million
  km, percentages 0..100 (charge limits included), ranges 0..10,000 km, fuel 0..2,000
  litres, a charge's minutes to complete 0..one week.

These are the gateway's rules, so every decoder applies the same ones. A decoder checks
the values it receives against them before converting (`Bounds.per` gives the bounds in
the received unit, so a huge integer is compared exactly) and words the rejection in
terms of what it received (`reports.Rejection`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
"""No car recorded a reading before this; an earlier time is a unit error (seconds as ms)."""
MAX_AHEAD = timedelta(hours=1)
"""How far after the event's arrival a reading may claim to be recorded (OEM clock skew)."""


@dataclass(frozen=True, slots=True)
class Bounds:
    """The closed range `low..high` a value must lie in (NaN lies in none)."""

    low: float
    high: float

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high

    def per(self, factor: float) -> Bounds:
        """Return these bounds in a unit of which one is `factor` of ours (miles: 1.609344)."""
        return Bounds(self.low / factor, self.high / factor)


LATITUDE = Bounds(-90, 90)
LONGITUDE = Bounds(-180, 180)
PERCENT = Bounds(0, 100)
ODOMETER_KM = Bounds(0, 10_000_000.0)
RANGE_KM = Bounds(0, 10_000.0)
FUEL_L = Bounds(0, 2_000.0)
CHARGE_MINUTES = Bounds(0, 7 * 24 * 60.0)
"""Minutes until a charge completes: a slow charger on a large battery takes days, not weeks."""


def plausible_time(moment: datetime, *, arrived_at: datetime) -> bool:
    """Tell whether a reading may have been recorded at `moment`, reported at `arrived_at`."""
    return EARLIEST <= moment <= arrived_at + MAX_AHEAD
