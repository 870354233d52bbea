"""`_FreshAnswers`: a cached read of unchanged readings reuses its answer, only while the
answer would still be fresh for the read and built from the objects held now."""

from __future__ import annotations

from datetime import timedelta

from gateway.core.model import Availability, FieldReading, Telemetry, TelemetryField
from gateway.core.permissions import FIELD_PERMISSIONS
from gateway.core.telemetry import _FreshAnswers, _Read
from tests.instants import START

ODOMETER, LOCATION = TelemetryField.ODOMETER, TelemetryField.LOCATION
TTL = timedelta(days=1)
GRANTED = frozenset({FIELD_PERMISSIONS[ODOMETER], FIELD_PERMISSIONS[LOCATION]})


def reading(field: TelemetryField, *, age: timedelta, capable: bool = True) -> FieldReading:
    return FieldReading(
        field=field,
        availability=Availability.AVAILABLE if capable else Availability.NOT_CAPABLE,
        fetched_at=START - age,
    )


def read(max_age: timedelta, *, at: timedelta = timedelta(0)) -> _Read:
    arrival = START + at
    return _Read(
        wanted=frozenset({ODOMETER, LOCATION}), oldest_ok=arrival - max_age, arrival=arrival
    )


def kept_for(held: dict[TelemetryField, FieldReading]) -> tuple[_FreshAnswers, Telemetry]:
    answers = _FreshAnswers(TTL)
    answer = Telemetry(vehicle_id="car-1", readings=held, from_cache=True)
    answers.keep(frozenset({ODOMETER, LOCATION}), GRANTED, held, answer)
    return answers, answer


def test_the_answer_is_reused_while_its_oldest_field_is_fresh_enough() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(minutes=1)),
        LOCATION: reading(LOCATION, age=timedelta(minutes=5)),
    }
    answers, answer = kept_for(held)
    assert answers.fresh("car-1", read(timedelta(minutes=5)), GRANTED, held) is answer
    assert answers.fresh("car-1", read(timedelta(minutes=4)), GRANTED, held) is None
    assert (
        answers.fresh("car-1", read(timedelta(minutes=5), at=timedelta(seconds=1)), GRANTED, held)
        is None
    )


def test_other_readings_or_grants_are_never_answered_from_it() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(0)),
        LOCATION: reading(LOCATION, age=timedelta(0)),
    }
    answers, _ = kept_for(held)
    assert answers.fresh("car-1", read(timedelta(hours=1)), GRANTED, dict(held)) is None
    assert answers.fresh("car-1", read(timedelta(hours=1)), frozenset(set(GRANTED)), held) is None
    assert answers.fresh("car-2", read(timedelta(hours=1)), GRANTED, held) is None


def test_a_not_capable_verdict_holds_until_its_time_to_ask_again() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(0)),
        LOCATION: reading(LOCATION, age=timedelta(hours=23), capable=False),
    }
    answers, answer = kept_for(held)
    assert (
        answers.fresh("car-1", read(timedelta(hours=1), at=timedelta(minutes=59)), GRANTED, held)
        is answer
    )
    assert (
        answers.fresh("car-1", read(timedelta(hours=2), at=timedelta(minutes=61)), GRANTED, held)
        is None
    )


def test_an_answer_that_could_not_be_fresh_is_not_kept() -> None:
    held = {
        ODOMETER: reading(ODOMETER, age=timedelta(0)),
        LOCATION: FieldReading(
            field=LOCATION, availability=Availability.UNAVAILABLE, fetched_at=START
        ),
    }
    answers, _ = kept_for(held)
    assert answers.fresh("car-1", read(timedelta(days=30)), GRANTED, held) is None
