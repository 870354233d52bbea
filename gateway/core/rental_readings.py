"""The rules of readings bound to rentals: which fields, which value wins, when the end
reading is final, and when to ask again. Pure: every rule takes its times as arguments.

A rental takes a reading of `RENTAL_FIELDS` at its start and at its end (`END_FIELDS`: the
lock status too, for the doors left open). Each field keeps
its value, when the car recorded it, when the gateway fetched it, where it came from
(`ReadingSource`) and when the rental took it.

- **Start.** The first reading taken stays (`merge_start`): a later one might include
  the renter's first kilometres.
- **End, and final.** A field's end value is *final* once the car recorded it at or after
  the rental's end (`is_final`). Until then a newer value replaces an older one; once
  final, only an earlier value that is final too replaces it (`merge_end`): the first
  report after the end is the car as it was returned, a later one may include the next
  trip. A field the car cannot report (NOT_CAPABLE) or the owner did not grant
  (PERMISSION_MISSING) is not waited for (`missing_fields`).
- **When the value was true.** `recorded_at` (Smartcar's `sc-data-age` on v2, the
  signal's `oemUpdatedAt` on API V3), else `fetched_at` for an answer without a data
  age (`value_time`). API V3 answers Smartcar's stored view: a value read live after the
  end may still have been recorded before it, so "read after the end" is never taken for
  "recorded after the end".
- **Retries.** The background job asks again after `first_retry`, doubling each time up to
  `retry_cap` (`next_attempt_at`), and gives up `give_up_after` the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.model import (
    Availability,
    FieldReading,
    SourcedReading,
    TelemetryField,
)

RENTAL_FIELDS: tuple[TelemetryField, ...] = (
    TelemetryField.ODOMETER,
    TelemetryField.FUEL,
    TelemetryField.BATTERY,
    TelemetryField.LOCATION,
)
"""What a rental reads at its start and end: distance, fuel and charge for billing, and
where the car was left."""

END_FIELDS: tuple[TelemetryField, ...] = (*RENTAL_FIELDS, TelemetryField.LOCK_STATUS)
"""What EndRental reads: the rental's fields and the lock status with the doors (and,
where the car reports them, windows, trunks and sunroof), so the rental service hears of
a car returned open (DOORS_OPEN_AT_RENTAL_END). The lock status is kept with the end
reading but never waited for: the final reading is about `RENTAL_FIELDS`."""

_NOT_WAITED_FOR = frozenset({Availability.NOT_CAPABLE, Availability.PERMISSION_MISSING})


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalReadingPolicy:
    """How fresh a rental's readings must be, how long a caller waits for them, and how the
    final reading is chased."""

    max_age: timedelta = timedelta(seconds=60)
    """A reading the gateway fetched at most this long before StartRental or EndRental is
    used as it is; an older one is asked of Smartcar again. A minute: a read made just
    before (the rental service's own GetTelemetry, another caller's) is reused, while
    anything older is not trusted for the moments billing charges by."""
    wait: timedelta = timedelta(seconds=5)
    """How long StartRental and EndRental wait for the car before answering with what is
    held (the reading goes on and is stored when it arrives). An awake car answers within
    a few seconds; a longer wait would only be spent on a car that is not answering, and
    5 s leaves room in the 10 s the gateway's client gives rental calls."""
    first_retry: timedelta = timedelta(minutes=1)
    """The final reading is asked for again this long after the last attempt, …"""
    retry_cap: timedelta = timedelta(hours=2)
    """… doubling with every attempt up to this: cars report every few minutes to every
    hour, and an unreachable car is billed for every try (about 17 tries in a day)."""
    give_up_after: timedelta = timedelta(hours=24)
    """How long after the rental's end the gateway keeps trying."""
    batch: int = 100
    """Rentals the background job looks at in one pass."""
    concurrency: int = 4
    """Rentals it reads at once."""

    def __post_init__(self) -> None:
        if self.first_retry <= timedelta(0) or self.retry_cap < self.first_retry:
            raise ValueError("retries need 0 < first_retry <= retry_cap")
        if self.batch < 1 or self.concurrency < 1:
            raise ValueError("batch and concurrency must be at least 1")


def value_time(reading: FieldReading) -> datetime | None:
    """When the value was true: when the car recorded it, else when it was fetched."""
    return reading.recorded_at or reading.fetched_at


def has_value(sourced: SourcedReading | None) -> bool:
    """Tell whether a rental's reading of a field carries a value."""
    return sourced is not None and sourced.reading.value is not None


def is_final(sourced: SourcedReading | None, ended_at: datetime) -> bool:
    """Tell whether an end value was recorded at or after the rental's end."""
    if sourced is None or sourced.reading.value is None:
        return False
    recorded = value_time(sourced.reading)
    return recorded is not None and recorded >= ended_at


def missing_fields(
    end: Mapping[TelemetryField, SourcedReading], ended_at: datetime
) -> frozenset[TelemetryField]:
    """The fields whose final value is still to come (not final, and reportable)."""
    return frozenset(
        f
        for f in RENTAL_FIELDS
        if not is_final(end.get(f), ended_at)
        and not (f in end and end[f].reading.availability in _NOT_WAITED_FOR)
    )


def merge_start(
    held: Mapping[TelemetryField, SourcedReading], taken: Mapping[TelemetryField, SourcedReading]
) -> dict[TelemetryField, SourcedReading]:
    """The start readings to store: only fields that have none yet (the first one stays)."""
    return {f: sourced for f, sourced in taken.items() if f not in held}


def merge_end(
    held: Mapping[TelemetryField, SourcedReading],
    taken: Mapping[TelemetryField, SourcedReading],
    ended_at: datetime,
) -> dict[TelemetryField, SourcedReading]:
    """The end readings to store: the fields where `taken` is better than what is held."""
    return {
        f: sourced for f, sourced in taken.items() if _better_end(sourced, held.get(f), ended_at)
    }


def _better_end(new: SourcedReading, held: SourcedReading | None, ended_at: datetime) -> bool:
    """Tell whether `new` should replace `held` as the end reading of its field."""
    if held is None:
        return True
    if not has_value(new):
        # No value: it may still say more (NOT_CAPABLE, why it is UNAVAILABLE), never
        # at the cost of a value.
        return not has_value(held) and new.reading != held.reading
    if not has_value(held):
        return True
    new_time, held_time = value_time(new.reading), value_time(held.reading)
    if is_final(held, ended_at):
        # The first report after the end is the car as returned; keep the earliest.
        return is_final(new, ended_at) and _before(new_time, held_time)
    return _before(held_time, new_time)


def _before(a: datetime | None, b: datetime | None) -> bool:
    """Tell whether `a` is strictly earlier than `b` (an unknown time is the earliest)."""
    if b is None:
        return False
    return a is None or a < b


def next_attempt_at(
    *, attempts: int, now: datetime, policy: RentalReadingPolicy, not_before: datetime | None
) -> datetime:
    """When to ask for a final reading again after `attempts` tries (the first retry after
    `first_retry`, doubling up to `retry_cap`), and never before `not_before` (a rate
    limit's retry time)."""
    delay = policy.first_retry * (2 ** min(max(attempts, 0), 20))
    at = now + min(delay, policy.retry_cap)
    return not_before if not_before is not None and not_before > at else at
