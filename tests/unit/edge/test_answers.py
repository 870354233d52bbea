"""TelemetryAnswers: a GetTelemetry answer is encoded once per version of the cached
readings it was made from."""

from __future__ import annotations

import dataclasses

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.model import Telemetry
from gateway.edge.grpc.answers import TelemetryAnswers
from gateway.edge.grpc.convert import telemetry_message
from tests.unit.edge.samples import telemetry


def held(version: object, **changes: object) -> Telemetry:
    """A sample answer served whole from the cache's `version` of the readings."""
    return dataclasses.replace(telemetry(from_cache=True), held_as=version, **changes)  # type: ignore[arg-type]


def test_the_same_version_gets_the_kept_encoding_equal_to_a_fresh_one() -> None:
    """A second answer from the very same version is the kept bytes, which decode to what
    converting the readings afresh gives."""
    answers = TelemetryAnswers()
    version = b"packed readings"
    first = answers.encoded(held(version))
    again = answers.encoded(held(version))
    assert again is first
    assert pb.Telemetry.FromString(again) == telemetry_message(held(version))
    assert answers.built == 1


def test_another_version_is_encoded_afresh_even_when_equal() -> None:
    """A new version (a reading changed; identity, not equality, decides) encodes anew."""
    answers = TelemetryAnswers()
    answers.encoded(held(b"version"))
    answers.encoded(held(bytes(bytearray(b"version"))))
    assert answers.built == 2


def test_answers_with_something_fetched_or_marked_are_never_kept() -> None:
    """An answer with no version (fetched from Smartcar, or marked) is encoded each time."""
    answers = TelemetryAnswers()
    fetched = telemetry(from_cache=False)
    assert pb.Telemetry.FromString(answers.encoded(fetched)) == telemetry_message(fetched)
    answers.encoded(fetched)
    assert answers.built == 2


def test_vehicle_and_field_set_are_part_of_the_key() -> None:
    """The same version read for another vehicle or as a subset is another answer."""
    answers = TelemetryAnswers()
    version = b"v"
    read = held(version)
    answers.encoded(read)
    other = pb.Telemetry.FromString(answers.encoded(held(version, vehicle_id="car-9")))
    assert other.vehicle_id == "car-9"
    one = next(iter(read.readings))
    subset = answers.encoded(held(version, readings={one: read.readings[one]}))
    assert len(pb.Telemetry.FromString(subset).readings) == 1
    assert answers.built == 3


def test_at_most_size_answers_are_kept() -> None:
    """Past `size`, the oldest kept answer is dropped and encoded again when asked."""
    answers = TelemetryAnswers(size=2)
    version = b"v"
    reads = [held(version, vehicle_id=f"car-{n}") for n in range(3)]
    for read in reads:
        answers.encoded(read)
    answers.encoded(reads[2])
    assert answers.built == 3
    answers.encoded(reads[0])
    assert answers.built == 4
