"""TelemetryAnswers: a GetTelemetry answer is built once per set of reading objects."""

from __future__ import annotations

import dataclasses

from gateway.core.model import Availability, FieldReading, TelemetryField
from gateway.edge.grpc.answers import LastConverted, TelemetryAnswers, encoded_reading
from gateway.edge.grpc.convert import telemetry_message
from tests.unit.edge.samples import telemetry


def test_the_same_readings_get_the_kept_answer_and_it_equals_a_fresh_build() -> None:
    """The second answer for the very same reading objects is the kept message, equal to
    what converting them afresh gives."""
    answers = TelemetryAnswers()
    read = telemetry(from_cache=True)
    first = answers.message(read)
    again = answers.message(dataclasses.replace(read, readings=dict(read.readings)))
    assert again is first
    assert again == telemetry_message(read)
    assert answers.built == 1


def test_a_replaced_reading_builds_a_new_answer() -> None:
    """One reading replaced by a new object (even an equal one) builds afresh, and the
    answer carries the new value."""
    answers = TelemetryAnswers()
    read = telemetry(from_cache=True)
    answers.message(read)
    field = next(iter(read.readings))
    newer = FieldReading(field=field, availability=Availability.UNAVAILABLE, reason="asleep")
    changed = dataclasses.replace(read, readings={**read.readings, field: newer})
    message = answers.message(changed)
    assert message == telemetry_message(changed)
    assert answers.built == 2
    assert answers.message(dataclasses.replace(read, readings=dict(read.readings))) == (
        telemetry_message(read)
    )


def test_from_cache_vehicle_and_field_set_are_part_of_the_key() -> None:
    """The same readings answered after a fetch (from_cache False), for another vehicle, or
    as a subset are other answers."""
    answers = TelemetryAnswers()
    read = telemetry(from_cache=True)
    answers.message(read)
    fetched = answers.message(dataclasses.replace(read, from_cache=False))
    assert not fetched.from_cache
    other = answers.message(dataclasses.replace(read, vehicle_id="car-9"))
    assert other.vehicle_id == "car-9"
    one = next(iter(read.readings))
    subset = answers.message(dataclasses.replace(read, readings={one: read.readings[one]}))
    assert len(subset.readings) == 1
    assert answers.built == 4


def test_at_most_size_answers_are_kept() -> None:
    """Past `size`, the oldest kept answer is dropped and built again when asked."""
    answers = TelemetryAnswers(size=2)
    reads = [
        dataclasses.replace(telemetry(from_cache=True), vehicle_id=f"car-{n}") for n in range(3)
    ]
    for read in reads:
        answers.message(read)
    answers.message(reads[2])
    assert answers.built == 3
    answers.message(reads[0])
    assert answers.built == 4


def test_an_answer_of_encoded_readings_is_their_bytes_joined() -> None:
    """An answer carrying its readings as the cache encoded them (`encoded_reading`) is
    the message converting the readings gives, for every field set, and builds nothing."""
    answers = TelemetryAnswers()
    read = telemetry(from_cache=True)
    ordered = [read.readings[f] for f in TelemetryField if f in read.readings]
    for count in (1, 2, len(ordered)):
        subset = dataclasses.replace(read, readings={r.field: r for r in ordered[:count]})
        encoded = tuple(encoded_reading(r) for r in ordered[:count])
        answer = answers.message(dataclasses.replace(subset, encoded=encoded))
        assert answer == telemetry_message(subset)
        assert answer.vehicle_id == read.vehicle_id
        assert answer.from_cache
    assert answers.built == 0


def test_a_change_is_converted_once_for_every_stream_it_goes_to() -> None:
    """`LastConverted` hands out the message made for the very object it was last given
    (a change published to every stream), and converts anything else, even an equal one."""
    made: list[str] = []

    def convert(item: list[str]) -> str:
        made.append(item[0])
        return f"message of {item[0]}"

    last = LastConverted(convert)
    change = ["change-1"]
    assert {last.message(change) for _ in range(1000)} == {"message of change-1"}
    assert last.message(["change-1"]) == "message of change-1"
    assert last.message(["change-2"]) == "message of change-2"
    assert made == ["change-1", "change-1", "change-2"]
