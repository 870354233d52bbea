"""The rental readings contract, proven for SQLite, PostgreSQL and the fake alike: readings
per rental, phase and field; the chase of final readings; listing and paging rentals."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.core.model import (
    Availability,
    FieldReading,
    FinalReading,
    FinalReadingState,
    ReadingSource,
    RentalPhase,
    RentalQuery,
    SourcedReading,
    TelemetryField,
)
from tests.integration.storage.builders import BERLIN_SUMMER, T0, at, reading, rental, vehicle
from tests.integration.storage.conftest import Backend, seed

F = TelemetryField


def sourced(
    field: F, source: ReadingSource = ReadingSource.LIVE, **changes: object
) -> SourcedReading:
    """A rental's reading of `field` with its sample value, taken 10 s after T0 (in a
    non-UTC offset: it must come back as the same instant)."""
    return SourcedReading(
        reading=reading(field, **changes),
        source=source,
        taken_at=at(10).astimezone(BERLIN_SUMMER),
    )


def in_utc(value: SourcedReading) -> SourcedReading:
    """The reading as storage hands it back: every time in UTC."""
    read = value.reading
    utc = dataclasses.replace(
        read,
        recorded_at=read.recorded_at.astimezone(T0.tzinfo) if read.recorded_at else None,
        fetched_at=read.fetched_at.astimezone(T0.tzinfo) if read.fetched_at else None,
    )
    return dataclasses.replace(value, reading=utc, taken_at=value.taken_at.astimezone(T0.tzinfo))


PENDING = FinalReading(
    state=FinalReadingState.PENDING,
    attempts=0,
    last_attempt_at=at(60),
    next_attempt_at=at(120),
)


async def test_readings_round_trip_with_their_source_per_phase(backend: Backend) -> None:
    """Start and end readings of every value type read back equal (times in UTC), with
    their source and when they were taken; a rental without any has empty readings."""
    await seed(backend, vehicle("v1"))
    start = [sourced(f) for f in F]
    end = [
        sourced(F.ODOMETER, ReadingSource.WEBHOOK),
        SourcedReading(
            reading=FieldReading(
                field=F.FUEL, availability=Availability.UNAVAILABLE, reason="VEHICLE_STATE:ASLEEP"
            ),
            source=ReadingSource.CACHE,
            taken_at=at(20),
        ),
    ]
    async with backend.factory() as uow:
        await uow.rentals.add(rental("r1", ended_at=at(5)))
        await uow.rentals.add(rental("r2", started_at=at(6)))
        await uow.rentals.store_readings("r1", RentalPhase.START, start)
        await uow.rentals.store_readings("r1", RentalPhase.END, end)
        await uow.rentals.store_readings("r1", RentalPhase.END, [])
        await uow.commit()
    async with backend.factory() as uow:
        record = await uow.rentals.record("r1")
        bare = await uow.rentals.record("r2")
        assert await uow.rentals.record("r404") is None
    assert record is not None
    assert record.rental == rental("r1", ended_at=at(5))
    assert dict(record.start) == {s.field: in_utc(s) for s in start}
    assert dict(record.end) == {s.field: in_utc(s) for s in end}
    assert record.final is None
    assert bare is not None
    assert (dict(bare.start), dict(bare.end), bare.final) == ({}, {}, None)


async def test_storing_a_field_again_replaces_it(backend: Backend) -> None:
    """A field's reading at a phase is replaced as a whole; other fields and the other
    phase stay."""
    await seed(backend, vehicle("v1"))
    first = sourced(F.ODOMETER)
    second = sourced(F.ODOMETER, ReadingSource.WEBHOOK, recorded_at=at(300), value=None)
    async with backend.factory() as uow:
        await uow.rentals.add(rental("r1", ended_at=at(5)))
        await uow.rentals.store_readings("r1", RentalPhase.START, [first])
        await uow.rentals.store_readings("r1", RentalPhase.END, [first, sourced(F.FUEL)])
        await uow.rentals.store_readings("r1", RentalPhase.END, [second])
        await uow.commit()
    async with backend.factory() as uow:
        record = await uow.rentals.record("r1")
    assert record is not None
    assert record.start == {F.ODOMETER: in_utc(first)}
    assert record.end == {F.ODOMETER: in_utc(second), F.FUEL: in_utc(sourced(F.FUEL))}


async def test_the_final_reading_is_saved_and_replaced(backend: Backend) -> None:
    """save_final inserts the chase, then replaces every column (None clears)."""
    await seed(backend, vehicle("v1"))
    recorded = FinalReading(
        state=FinalReadingState.RECORDED, attempts=3, settled_at=at(900), reason=None
    )
    async with backend.factory() as uow:
        await uow.rentals.add(rental("r1", ended_at=at(5)))
        await uow.rentals.save_final("r1", PENDING)
        await uow.commit()
    async with backend.factory() as uow:
        found = await uow.rentals.record("r1")
        await uow.rentals.save_final("r1", recorded)
        await uow.commit()
    async with backend.factory() as uow:
        replaced = await uow.rentals.record("r1")
    assert found is not None
    assert found.final == PENDING
    assert replaced is not None
    assert replaced.final == recorded


async def test_due_and_pending_final_readings(backend: Backend) -> None:
    """due_finals: pending chases whose next attempt has come, soonest due first, at most
    `limit`; pending_finals: a vehicle's pending chases, oldest rental first."""
    await seed(backend, vehicle("v1"), vehicle("v2", smartcar_vehicle_id="sc-v2"))
    async with backend.factory() as uow:
        for n, (vehicle_id, next_s, state) in enumerate(
            [
                ("v1", 300, FinalReadingState.PENDING),
                ("v1", 100, FinalReadingState.PENDING),
                ("v2", 200, FinalReadingState.PENDING),
                ("v2", 50, FinalReadingState.RECORDED),
                ("v1", 9_000, FinalReadingState.PENDING),
            ]
        ):
            await uow.rentals.add(
                rental(f"r{n}", vehicle_id, started_at=at(n), ended_at=at(n + 0.5))
            )
            final = dataclasses.replace(PENDING, state=state, next_attempt_at=at(next_s))
            await uow.rentals.save_final(f"r{n}", final)
        await uow.commit()
    async with backend.factory() as uow:
        due = await uow.rentals.due_finals(now=at(300), limit=10)
        first_two = await uow.rentals.due_finals(now=at(300), limit=2)
        pending = await uow.rentals.pending_finals("v1")
        assert await uow.rentals.pending_finals("v3") == []
    assert [r.rental.rental_id for r in due] == ["r1", "r2", "r0"]
    assert [r.rental.rental_id for r in first_two] == ["r1", "r2"]
    assert [r.rental.rental_id for r in pending] == ["r0", "r1", "r4"]
    assert due[0].final == dataclasses.replace(PENDING, next_attempt_at=at(100))


async def test_rentals_list_in_start_order_and_page_after_a_position(backend: Backend) -> None:
    """records(): ordered by (started_at, rental_id), resuming strictly after a position,
    at most `limit`; ties in start time are ordered by id."""
    await seed(backend, vehicle("v1"), vehicle("v2", smartcar_vehicle_id="sc-v2"))
    async with backend.factory() as uow:
        await uow.rentals.add(rental("b", "v1", started_at=at(10), ended_at=at(11)))
        await uow.rentals.add(rental("a", "v2", started_at=at(10), ended_at=at(12)))
        await uow.rentals.add(rental("c", "v1", started_at=at(5), ended_at=at(6)))
        await uow.rentals.add(rental("d", "v2", started_at=at(20)))
        await uow.rentals.store_readings("a", RentalPhase.START, [sourced(F.ODOMETER)])
        await uow.commit()
    async with backend.factory() as uow:
        everything = await uow.rentals.records(RentalQuery(limit=10))
        page = await uow.rentals.records(RentalQuery(after=(at(10), "a"), limit=1))
        rest = await uow.rentals.records(RentalQuery(after=(at(10), "b"), limit=10))
    assert [r.rental.rental_id for r in everything] == ["c", "a", "b", "d"]
    assert everything[1].start == {F.ODOMETER: in_utc(sourced(F.ODOMETER))}
    assert [r.rental.rental_id for r in page] == ["b"]
    assert [r.rental.rental_id for r in rest] == ["d"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (RentalQuery(vehicle_id="v1"), ["c", "b"]),
        (RentalQuery(ended_after=at(11)), ["a", "b"]),
        (RentalQuery(ended_before=at(11)), ["c"]),
        (RentalQuery(ended_after=at(6), ended_before=at(12)), ["c", "b"]),
        (RentalQuery(vehicle_id="v2", ended_after=at(0)), ["a"]),
        (RentalQuery(vehicle_id="nobody"), []),
    ],
)
async def test_rentals_filter_by_vehicle_and_end_time(
    backend: Backend, query: RentalQuery, expected: list[str]
) -> None:
    """By vehicle; by end time, `ended_after` inclusive and `ended_before` exclusive, an
    active rental matching no bound."""
    await seed(backend, vehicle("v1"), vehicle("v2", smartcar_vehicle_id="sc-v2"))
    async with backend.factory() as uow:
        await uow.rentals.add(rental("b", "v1", started_at=at(10), ended_at=at(11)))
        await uow.rentals.add(rental("a", "v2", started_at=at(10), ended_at=at(12)))
        await uow.rentals.add(rental("c", "v1", started_at=at(5), ended_at=at(6)))
        await uow.rentals.add(rental("d", "v2", started_at=at(20)))
        await uow.commit()
    async with backend.factory() as uow:
        found = await uow.rentals.records(dataclasses.replace(query, limit=10))
    assert [r.rental.rental_id for r in found] == expected


async def test_the_following_rental_is_the_cars_next_one(backend: Backend) -> None:
    """following(): the same car's first rental started at or after the end; none for an
    active rental, or when the car was not rented again."""
    await seed(backend, vehicle("v1"), vehicle("v2", smartcar_vehicle_id="sc-v2"))
    first = rental("r1", "v1", started_at=at(0), ended_at=at(10))
    async with backend.factory() as uow:
        await uow.rentals.add(first)
        await uow.rentals.add(rental("other", "v2", started_at=at(11), ended_at=at(12)))
        await uow.rentals.add(rental("r3", "v1", started_at=at(30), ended_at=at(40)))
        await uow.rentals.add(rental("r2", "v1", started_at=at(10), ended_at=at(20)))
        await uow.rentals.add(rental("r4", "v1", started_at=at(50)))
        await uow.rentals.store_readings("r2", RentalPhase.START, [sourced(F.FUEL)])
        await uow.commit()
    async with backend.factory() as uow:
        following = await uow.rentals.following(first)
        last = await uow.rentals.get("r4")
        assert last is not None
        assert await uow.rentals.following(last) is None
        r3 = await uow.rentals.get("r3")
        assert r3 is not None
        after_r3 = await uow.rentals.following(r3)
    assert following is not None
    assert following.rental.rental_id == "r2"
    assert following.start == {F.FUEL: in_utc(sourced(F.FUEL))}
    assert after_r3 is not None
    assert after_r3.rental.rental_id == "r4"


async def test_readings_and_chases_need_their_rental(backend: Backend) -> None:
    """Readings or a chase of a rental that does not exist are refused like any dangling
    row."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        with pytest.raises(backend.foreign_key_error):
            await uow.rentals.store_readings("ghost", RentalPhase.START, [sourced(F.FUEL)])
    async with backend.factory() as uow:
        with pytest.raises(backend.foreign_key_error):
            await uow.rentals.save_final("ghost", PENDING)


async def test_an_unwritten_unit_leaves_no_readings(backend: Backend) -> None:
    """Readings stored without commit are gone with the unit of work."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.rentals.add(rental("r1", started_at=T0))
        await uow.commit()
    async with backend.factory() as uow:
        await uow.rentals.store_readings("r1", RentalPhase.START, [sourced(F.FUEL)])
        await uow.rentals.save_final("r1", PENDING)
    async with backend.factory() as uow:
        record = await uow.rentals.record("r1")
    assert record is not None
    assert (dict(record.start), record.final) == ({}, None)
    assert record.rental.started_at == T0
