"""The rules of rental readings, pure: finality, which value wins, what is still missing,
when to ask again, and the differences a rental reports."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core.model import (
    Availability,
    FieldReading,
    Odometer,
    ReadingSource,
    Rental,
    RentalRecord,
    SourcedReading,
    TelemetryField,
)
from gateway.core.rental_readings import (
    RentalReadingPolicy,
    is_final,
    merge_end,
    merge_start,
    missing_fields,
    next_attempt_at,
)
from tests.instants import START

F = TelemetryField
END = START + timedelta(hours=2)


def odometer(
    km: float,
    *,
    recorded_after_end_s: float | None,
    source: ReadingSource = ReadingSource.LIVE,
    fetched_after_end_s: float = 600,
) -> SourcedReading:
    """An odometer reading recorded `recorded_after_end_s` after END (negative: before;
    None: no data age), fetched `fetched_after_end_s` after it."""
    recorded = (
        None if recorded_after_end_s is None else END + timedelta(seconds=recorded_after_end_s)
    )
    fetched = END + timedelta(seconds=fetched_after_end_s)
    reading = FieldReading(
        field=F.ODOMETER,
        availability=Availability.AVAILABLE,
        value=Odometer(distance_km=km),
        recorded_at=recorded,
        fetched_at=fetched,
    )
    return SourcedReading(reading=reading, source=source, taken_at=fetched)


def without_value(field: F, availability: Availability, reason: str) -> SourcedReading:
    """A reading of `field` with no value."""
    reading = FieldReading(field=field, availability=availability, reason=reason)
    return SourcedReading(reading=reading, source=ReadingSource.CACHE, taken_at=END)


def test_a_value_is_final_once_recorded_at_or_after_the_end() -> None:
    """Recorded at the end or later: final; before: not, however late it was fetched; with
    no data age the fetch time stands for it; no value: never final."""
    assert is_final(odometer(10, recorded_after_end_s=0), END)
    assert is_final(odometer(10, recorded_after_end_s=60), END)
    assert not is_final(odometer(10, recorded_after_end_s=-1, fetched_after_end_s=3600), END)
    assert is_final(odometer(10, recorded_after_end_s=None, fetched_after_end_s=5), END)
    assert not is_final(without_value(F.ODOMETER, Availability.UNAVAILABLE, "ASLEEP"), END)
    assert not is_final(None, END)


def test_the_first_start_reading_stays() -> None:
    """A start reading is stored once per field: a later one (the renter's first metres)
    never replaces it, a field not held yet is added."""
    held = {F.ODOMETER: odometer(10, recorded_after_end_s=-7200)}
    taken = {
        F.ODOMETER: odometer(11, recorded_after_end_s=-7100),
        F.FUEL: without_value(F.FUEL, Availability.NOT_CAPABLE, "COMPATIBILITY"),
    }
    assert merge_start(held, taken) == {F.FUEL: taken[F.FUEL]}


def test_before_the_end_is_final_a_newer_value_replaces_an_older_one() -> None:
    """Not yet final: the value recorded later wins; an older one, or none, does not."""
    held = {F.ODOMETER: odometer(10, recorded_after_end_s=-600)}
    newer = {F.ODOMETER: odometer(12, recorded_after_end_s=-60)}
    older = {F.ODOMETER: odometer(9, recorded_after_end_s=-900)}
    asleep = {F.ODOMETER: without_value(F.ODOMETER, Availability.UNAVAILABLE, "ASLEEP")}
    assert merge_end(held, newer, END) == newer
    assert merge_end(held, older, END) == {}
    assert merge_end(held, asleep, END) == {}


def test_a_final_value_is_replaced_only_by_an_earlier_final_one() -> None:
    """The first report after the end is the car as returned: a later final value (which
    may include the next trip) does not replace it; an earlier final one does; a value from
    before the end never does."""
    held = {F.ODOMETER: odometer(20, recorded_after_end_s=300)}
    later = {F.ODOMETER: odometer(35, recorded_after_end_s=3600)}
    earlier = {F.ODOMETER: odometer(20, recorded_after_end_s=60, source=ReadingSource.WEBHOOK)}
    before = {F.ODOMETER: odometer(19, recorded_after_end_s=-60)}
    assert merge_end(held, later, END) == {}
    assert merge_end(held, earlier, END) == earlier
    assert merge_end(held, before, END) == {}


def test_a_reading_without_value_may_replace_one_without_value() -> None:
    """Where nothing is held but a reason, a new reason (the car cannot report it after
    all) replaces it; the same reading again changes nothing."""
    asleep = without_value(F.FUEL, Availability.UNAVAILABLE, "VEHICLE_STATE:ASLEEP")
    capable = without_value(F.FUEL, Availability.NOT_CAPABLE, "COMPATIBILITY")
    assert merge_end({F.FUEL: asleep}, {F.FUEL: capable}, END) == {F.FUEL: capable}
    assert merge_end({F.FUEL: asleep}, {F.FUEL: asleep}, END) == {}


def test_what_is_missing_leaves_out_what_the_car_cannot_report() -> None:
    """Missing: every rental field without a final value, except those the car cannot
    report or the owner did not grant."""
    end = {
        F.ODOMETER: odometer(20, recorded_after_end_s=30),
        F.FUEL: without_value(F.FUEL, Availability.UNAVAILABLE, "VEHICLE_STATE:ASLEEP"),
        F.BATTERY: without_value(F.BATTERY, Availability.NOT_CAPABLE, "COMPATIBILITY"),
    }
    assert missing_fields(end, END) == {F.FUEL, F.LOCATION}
    location = without_value(F.LOCATION, Availability.PERMISSION_MISSING, "not granted")
    assert missing_fields({**end, F.LOCATION: location}, END) == {F.FUEL}


def test_retries_double_up_to_the_cap_and_wait_for_a_rate_limit() -> None:
    """1, 2, 4 … minutes after each try, never more than the cap, never before the
    retry time a rate limit named."""
    policy = RentalReadingPolicy()
    delays = [
        next_attempt_at(attempts=n, now=END, policy=policy, not_before=None) - END
        for n in (0, 1, 2, 7, 8, 1000)
    ]
    assert delays == [
        timedelta(minutes=1),
        timedelta(minutes=2),
        timedelta(minutes=4),
        timedelta(hours=2),
        timedelta(hours=2),
        timedelta(hours=2),
    ]
    late = END + timedelta(hours=5)
    assert next_attempt_at(attempts=1, now=END, policy=policy, not_before=late) == late


@pytest.mark.parametrize(
    "changes",
    [
        {"first_retry": timedelta(0)},
        {"first_retry": timedelta(hours=3)},
        {"batch": 0},
        {"concurrency": 0},
    ],
)
def test_a_policy_that_cannot_work_is_refused(changes: dict[str, object]) -> None:
    """A non-positive first retry, one above the cap, an empty batch or no concurrency."""
    with pytest.raises(ValueError, match=r"retries|at least 1"):
        RentalReadingPolicy(**changes)  # type: ignore[arg-type]


def test_a_distance_below_zero_is_unknown() -> None:
    """An end odometer below the start one means one of them is wrong: no distance."""
    rental = Rental(rental_id="r-1", vehicle_id="car-1", started_at=START, ended_at=END)
    start = {F.ODOMETER: odometer(100, recorded_after_end_s=-7200)}
    record = RentalRecord(
        rental=rental, start=start, end={F.ODOMETER: odometer(99, recorded_after_end_s=5)}
    )
    assert record.distance_km is None
    assert RentalRecord(rental=rental, start=start).distance_km is None
