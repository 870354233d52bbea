"""`_FreshAnswers` and `_HeldAnswer`: a cached read of an unchanged version of a vehicle's
readings is judged fresh with one comparison, only while that judgement still holds for
the read and the objects it was made on, and its readings are unpacked only if looked at."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import Availability, FieldReading, TelemetryField
from gateway.core.packing import pack
from gateway.core.permissions import FIELD_PERMISSIONS
from gateway.core.telemetry import _FreshAnswers, _HeldAnswer, _Read
from tests.instants import START

ODOMETER, LOCATION, FUEL = TelemetryField.ODOMETER, TelemetryField.LOCATION, TelemetryField.FUEL
TTL = timedelta(days=1)
GRANTED = frozenset({FIELD_PERMISSIONS[ODOMETER], FIELD_PERMISSIONS[LOCATION]})
WANTED = frozenset({ODOMETER, LOCATION})


def reading(field: TelemetryField, *, age: timedelta, capable: bool = True) -> FieldReading:
    return FieldReading(
        field=field,
        availability=Availability.AVAILABLE if capable else Availability.NOT_CAPABLE,
        fetched_at=START - age,
    )


def read(max_age: timedelta, *, at: timedelta = timedelta(0)) -> _Read:
    arrival = START + at
    return _Read(wanted=WANTED, oldest_ok=arrival - max_age, arrival=arrival)


def judged(held: dict[TelemetryField, FieldReading]) -> tuple[_FreshAnswers, bytes]:
    answers = _FreshAnswers(TTL, size=10)
    version = pack(held)
    answers.keep("car-1", WANTED, GRANTED, held, version)
    return answers, version


def test_the_version_is_fresh_while_its_oldest_field_is_fresh_enough() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(minutes=1)),
        LOCATION: reading(LOCATION, age=timedelta(minutes=5)),
    }
    answers, version = judged(held)
    assert answers.fresh("car-1", read(timedelta(minutes=5)), GRANTED, version)
    assert not answers.fresh("car-1", read(timedelta(minutes=4)), GRANTED, version)
    later = read(timedelta(minutes=5), at=timedelta(seconds=1))
    assert not answers.fresh("car-1", later, GRANTED, version)


def test_other_versions_grants_or_vehicles_are_never_judged_by_it() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(0)),
        LOCATION: reading(LOCATION, age=timedelta(0)),
    }
    answers, version = judged(held)
    hour = read(timedelta(hours=1))
    assert not answers.fresh("car-1", hour, GRANTED, bytes(bytearray(version)))
    assert not answers.fresh("car-1", hour, frozenset(set(GRANTED)), version)
    assert not answers.fresh("car-2", hour, GRANTED, version)


def test_a_not_capable_verdict_holds_until_its_time_to_ask_again() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(0)),
        LOCATION: reading(LOCATION, age=timedelta(hours=23), capable=False),
    }
    answers, version = judged(held)
    before = read(timedelta(hours=1), at=timedelta(minutes=59))
    assert answers.fresh("car-1", before, GRANTED, version)
    after = read(timedelta(hours=2), at=timedelta(minutes=61))
    assert not answers.fresh("car-1", after, GRANTED, version)


def test_a_version_that_could_not_be_fresh_is_not_kept() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(0)),
        LOCATION: FieldReading(
            field=LOCATION, availability=Availability.UNAVAILABLE, fetched_at=START
        ),
    }
    answers, version = judged(held)
    assert not answers.fresh("car-1", read(timedelta(days=30)), GRANTED, version)


def test_at_most_size_judgements_are_kept() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(0)),
        LOCATION: reading(LOCATION, age=timedelta(0)),
    }
    answers = _FreshAnswers(TTL, size=2)
    version = pack(held)
    for car in ("car-1", "car-2", "car-3"):
        answers.keep(car, WANTED, GRANTED, held, version)
    hour = read(timedelta(hours=1))
    assert not answers.fresh("car-1", hour, GRANTED, version)
    assert answers.fresh("car-3", hour, GRANTED, version)


def test_held_readings_are_the_answer_and_unpacked_only_when_looked_at() -> None:
    """Keys come in order without unpacking; values are the held readings, a withheld
    permission's field PERMISSION_MISSING, a field never read UNAVAILABLE."""
    held = {ODOMETER: reading(ODOMETER, age=timedelta(0))}
    answer = _HeldAnswer(pack(held), GRANTED, frozenset({ODOMETER, LOCATION, FUEL}))
    assert list(answer) == sorted({ODOMETER, LOCATION, FUEL})
    assert len(answer) == 3
    assert answer._readings is None
    assert answer[ODOMETER] == held[ODOMETER]
    assert answer[FUEL].availability is Availability.PERMISSION_MISSING
    assert answer[LOCATION].availability is Availability.UNAVAILABLE
    assert answer[LOCATION].reason == "no reading yet"
