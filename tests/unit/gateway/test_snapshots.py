"""VehicleSnapshots: the bounded copies of vehicles that cached reads judge permissions by."""

from __future__ import annotations

import dataclasses

from gateway.core.model import ConnectionStatus, Vehicle
from gateway.core.snapshots import VehicleSnapshots
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START

GRANTED = frozenset({"read_odometer", "read_location"})


async def stored(uow: FakeUnitOfWorkFactory, *ids: str) -> None:
    """Store ACTIVE vehicles with these ids, each granting GRANTED."""
    async with uow() as work:
        for vehicle_id in ids:
            await work.vehicles.add(
                Vehicle(id=vehicle_id, status=ConnectionStatus.ACTIVE, permissions=GRANTED)
            )
        await work.commit()


async def load(snapshots: VehicleSnapshots, uow: FakeUnitOfWorkFactory, vehicle_id: str) -> None:
    """Read one vehicle into the snapshots, as a read that misses them does."""
    async with uow.reader() as work:
        await snapshots.load(work, vehicle_id)


async def test_at_most_size_vehicles_are_known_the_least_recently_used_forgotten() -> None:
    """With room for 2, loading a third forgets the one used longest ago; asking for a
    vehicle's permissions counts as a use."""
    uow = FakeUnitOfWorkFactory()
    await stored(uow, "car-1", "car-2", "car-3")
    snapshots = VehicleSnapshots(uow=uow, clock=ManualClock(START), size=2)
    await load(snapshots, uow, "car-1")
    await load(snapshots, uow, "car-2")
    assert snapshots.permissions("car-1") == GRANTED  # car-2 is now the least recently used
    await load(snapshots, uow, "car-3")
    assert len(snapshots) == 2
    assert snapshots.permissions("car-2") is None
    assert snapshots.permissions("car-1") == GRANTED
    assert snapshots.permissions("car-3") == GRANTED


async def test_a_forgotten_vehicle_is_read_again_as_the_database_has_it() -> None:
    """A change query updates the vehicle still known and does not bring back the one
    forgotten to stay within the size, whose next load reads its row as it is now."""
    uow = FakeUnitOfWorkFactory()
    await stored(uow, "car-1", "car-2")
    clock = ManualClock(START)
    snapshots = VehicleSnapshots(uow=uow, clock=clock, size=1)
    await snapshots.sync()  # the first look: from now on, changes are seen
    await load(snapshots, uow, "car-1")
    await load(snapshots, uow, "car-2")
    async with uow() as work:
        for vehicle_id in ("car-1", "car-2"):
            car = await work.vehicles.get(vehicle_id)
            assert car is not None
            await work.vehicles.update(dataclasses.replace(car, permissions=frozenset()))
        await work.commit()
    clock.advance(2)
    await snapshots.sync()
    assert snapshots.permissions("car-1") is None
    assert snapshots.permissions("car-2") == frozenset()
    await load(snapshots, uow, "car-1")
    assert snapshots.permissions("car-1") == frozenset()
    assert len(snapshots) == 1
