"""Cached reads of vehicles the cache holds only packed: judged by the packed fetch times
alone, answered without unpacking, and the same answer a vehicle held as objects gets."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.assembly import Policies, build_gateway
from gateway.core.model import Availability, FieldReading, TelemetryField
from gateway.core.packing import pack
from gateway.core.permissions import FIELD_PERMISSIONS
from gateway.core.telemetry import TelemetryPolicy, _Read
from gateway.edge.grpc.answers import encoded_reading
from gateway.edge.grpc.convert import telemetry_message
from tests.instants import START
from tests.unit.gateway.test_use_cases import GENEROUS, World, build

ODOMETER, LOCATION, FUEL = TelemetryField.ODOMETER, TelemetryField.LOCATION, TelemetryField.FUEL
CARS = [("car-1", "sc-1"), ("car-2", "sc-2"), ("ev-1", "sc-ev")]


def states(field: TelemetryField) -> list[FieldReading | None]:
    """Every kind of held reading `_stale` tells apart, for one field."""

    def held(availability: Availability, age: timedelta | None) -> FieldReading:
        return FieldReading(
            field=field,
            availability=availability,
            fetched_at=None if age is None else START - age,
        )

    return [
        None,
        held(Availability.AVAILABLE, None),
        held(Availability.AVAILABLE, timedelta(0)),
        held(Availability.AVAILABLE, timedelta(minutes=10)),
        held(Availability.NOT_CAPABLE, timedelta(hours=1)),
        held(Availability.NOT_CAPABLE, timedelta(hours=25)),
        held(Availability.UNAVAILABLE, timedelta(0)),
        held(Availability.PERMISSION_MISSING, timedelta(0)),
    ]


def test_the_packed_fetch_times_judge_freshness_as_the_readings_do() -> None:
    """For every combination of held readings, grants, fields asked and max_age, the
    packed form says "nothing stale" exactly when the readings themselves do."""
    telemetry = build().gateway.telemetry
    fields = (ODOMETER, LOCATION, FUEL)
    every_grant = frozenset(FIELD_PERMISSIONS[f] for f in fields)
    grants = [every_grant, every_grant - {FIELD_PERMISSIONS[LOCATION]}]
    asked = [frozenset(fields), frozenset({ODOMETER})]
    judged = 0
    for combination in itertools.product(*(states(f) for f in fields)):
        held = {r.field: r for r in combination if r is not None}
        packed = pack(held)
        for granted, wanted, max_age in itertools.product(
            grants, asked, (timedelta(minutes=1), timedelta(minutes=30))
        ):
            read = _Read(wanted=wanted, oldest_ok=START - max_age, arrival=START)
            expected = not telemetry._stale(granted, read, held)
            fresh = telemetry._fresh_packed(granted, read, packed) is not None
            assert fresh is expected, (held, granted)
            judged += expected
    assert judged > 100  # both answers are well represented


async def hot_and_cold(world: World) -> None:
    """Connect the three cars and read each once: with one vehicle held as objects, the
    first two are then held only packed."""
    for car, smartcar_id in CARS:
        await world.connect(car, smartcar_id)
        await world.gateway.get_telemetry(car, fields=frozenset(), max_age=None)


def one_hot() -> World:
    """A gateway over fakes holding one vehicle's readings as objects, each reading also
    encoded as the gRPC edge encodes it."""
    world = build()
    world.gateway = build_gateway(
        uow=world.uow,
        smartcar=world.smartcar,
        clock=world.clock,
        policies=Policies(rate_limits=GENEROUS, telemetry=TelemetryPolicy(cache_hot_vehicles=1)),
        encode_reading=encoded_reading,
    )
    return world


async def test_a_vehicle_held_packed_gets_the_answer_a_vehicle_held_as_objects_gets() -> None:
    """Each car's cached answer, with only one car held as objects, equals the answer of a
    gateway holding all three as objects, for every car and field set, and asks nobody; the
    readings it carries encoded are those readings, encoded."""
    cold, hot = one_hot(), build()
    await hot_and_cold(cold)
    await hot_and_cold(hot)
    asked = cold.smartcar.calls["read"]
    for (car, _), fields in itertools.product(CARS, [frozenset(), frozenset({FUEL, ODOMETER})]):
        answer = await cold.gateway.get_telemetry(car, fields=fields, max_age=timedelta(hours=1))
        expected = await hot.gateway.get_telemetry(car, fields=fields, max_age=timedelta(hours=1))
        assert (answer.encoded is not None) == (car != "ev-1")
        if answer.encoded is not None:
            joined = pb.Telemetry.FromString(b"".join(answer.encoded))
            assert list(joined.readings) == list(telemetry_message(expected).readings)
        assert answer == expected
        assert list(answer.readings) == list(expected.readings)
    assert cold.smartcar.calls["read"] == asked
    assert dataclasses.replace(answer, encoded=None) == answer  # not part of the answer


async def test_a_stale_field_of_a_vehicle_held_packed_is_asked_for() -> None:
    """Past max_age a car held only packed is read from Smartcar as a car held as objects
    is; a NOT_CAPABLE verdict held packed is trusted until its time to ask again."""
    world = one_hot()
    await hot_and_cold(world)
    asked = world.smartcar.calls["read"]
    world.clock.advance(600)
    fresh = await world.gateway.get_telemetry(
        "car-1", fields=frozenset({ODOMETER}), max_age=timedelta(minutes=5)
    )
    assert (fresh.from_cache, fresh.encoded) == (False, None)
    assert world.smartcar.calls["read"] == asked + 1
    await world.gateway.get_telemetry("car-2", fields=frozenset(), max_age=None)  # asks too
    assert world.smartcar.calls["read"] == asked + 2
    verdict = await world.gateway.get_telemetry(
        "ev-1", fields=frozenset({FUEL}), max_age=timedelta(days=2)
    )
    assert verdict.encoded is not None
    assert verdict.readings[FUEL].availability is Availability.NOT_CAPABLE
    world.clock.advance(timedelta(days=1).total_seconds())
    asked_again = await world.gateway.get_telemetry(
        "ev-1", fields=frozenset({FUEL}), max_age=timedelta(days=2)
    )
    assert (asked_again.from_cache, asked_again.encoded) == (False, None)
    assert world.smartcar.calls["read"] == asked + 3
