"""TelemetryAnswers: a GetTelemetry answer is built once per set of reading objects."""

from __future__ import annotations

import dataclasses

from gateway.core.model import Availability, CachedSource, FieldReading, Telemetry
from gateway.core.packing import pack
from gateway.edge.grpc.answers import TelemetryAnswers
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


def packed_answer(read: Telemetry, packed: bytes, granted: frozenset[str]) -> Telemetry:
    """`read` as an answer from the cache's packed readings `packed` (its makings)."""
    return dataclasses.replace(read, source=CachedSource(packed, granted, frozenset(read.readings)))


def test_an_answer_from_packed_readings_is_kept_serialized_by_its_makings() -> None:
    """An answer made from the cache's packed readings is converted once: a read with the
    very same packed readings, grants and fields parses the kept bytes (equal to a fresh
    conversion); other packed readings (even equal bytes), other grants, another vehicle
    or field set convert again."""
    read = telemetry(from_cache=True)
    packed = pack(read.readings)
    granted = frozenset({"read_odometer"})
    answers = TelemetryAnswers()
    assert answers.message(packed_answer(read, packed, granted)) == telemetry_message(read)
    assert answers.message(packed_answer(read, packed, granted)) == telemetry_message(read)
    assert answers.built == 1
    one = next(iter(read.readings))
    subset = dataclasses.replace(read, readings={one: read.readings[one]})
    for other in (
        packed_answer(read, bytes(bytearray(packed)), granted),
        packed_answer(read, packed, frozenset(set(granted))),
        dataclasses.replace(packed_answer(read, packed, granted), vehicle_id="car-9"),
        packed_answer(subset, packed, granted),
    ):
        answers = TelemetryAnswers()
        answers.message(packed_answer(read, packed, granted))
        assert answers.message(other) == telemetry_message(other)
        assert answers.built == 2


def test_at_most_packed_size_serialized_answers_are_kept() -> None:
    """Past `packed_size`, the oldest kept serialized answer is dropped and converted again
    when asked."""
    answers = TelemetryAnswers(packed_size=2)
    read = telemetry(from_cache=True)
    packed = pack(read.readings)
    reads = [
        packed_answer(dataclasses.replace(read, vehicle_id=f"car-{n}"), packed, frozenset())
        for n in range(3)
    ]
    for each in reads:
        answers.message(each)
    answers.message(reads[2])
    assert answers.built == 3
    answers.message(reads[0])
    assert answers.built == 4
