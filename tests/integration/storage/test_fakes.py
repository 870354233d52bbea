"""What only the fakes need proving: the shared store, counters, and nested units refused."""

from __future__ import annotations

import pytest

from tests.fakes import FakeStore, FakeUnitOfWorkFactory
from tests.integration.storage.builders import bare_vehicle


async def test_the_store_shows_committed_writes_only() -> None:
    """The factory's store holds what was committed, and counts units and commits."""
    factory = FakeUnitOfWorkFactory()
    async with factory() as uow:
        await uow.vehicles.add(bare_vehicle("v1"))
        assert factory.store.vehicles == {}
        await uow.commit()
    async with factory() as uow:
        await uow.vehicles.add(bare_vehicle("v2"))
    assert factory.store.vehicles == {"v1": bare_vehicle("v1")}
    assert (factory.opened, factory.commits) == (2, 1)


async def test_a_prepared_store_is_used() -> None:
    """A factory built on a store serves that store's content."""
    factory = FakeUnitOfWorkFactory(FakeStore(vehicles={"v1": bare_vehicle("v1")}))
    async with factory() as uow:
        assert await uow.vehicles.get("v1") == bare_vehicle("v1")


async def test_a_unit_inside_another_is_refused() -> None:
    """Opening a unit of work inside another in one task raises instead of deadlocking."""
    factory = FakeUnitOfWorkFactory()
    async with factory():
        with pytest.raises(RuntimeError, match="inside another"):
            async with factory():
                pass
    async with factory() as uow:
        assert await uow.vehicles.get("v1") is None
