"""Unit-of-work semantics shared by both backends: commit, rollback, isolation, races."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from gateway.core.model import Grant
from tests.integration.storage.builders import T0, at, bare_vehicle, grant, rental, vehicle
from tests.integration.storage.conftest import Backend


async def test_leaving_without_commit_rolls_back(backend: Backend) -> None:
    """Writes of a unit that never commits are gone afterwards."""
    async with backend.factory() as uow:
        await uow.vehicles.add(vehicle("v1"))
    async with backend.factory() as uow:
        assert await uow.vehicles.get("v1") is None


async def test_an_error_in_the_unit_rolls_back(backend: Backend) -> None:
    """An exception leaving the unit discards its writes and propagates."""

    async def add_then_fail() -> None:
        async with backend.factory() as uow:
            await uow.vehicles.add(vehicle("v1"))
            raise KeyError("boom")

    with pytest.raises(KeyError):
        await add_then_fail()
    async with backend.factory() as uow:
        assert await uow.vehicles.get("v1") is None


async def test_work_after_a_commit_needs_its_own_commit(backend: Backend) -> None:
    """A unit can go on after commit(); only what it committed stays."""
    async with backend.factory() as uow:
        await uow.vehicles.add(bare_vehicle("v1"))
        await uow.commit()
        await uow.vehicles.add(bare_vehicle("v2"))
    async with backend.factory() as uow:
        assert await uow.vehicles.get("v1") == bare_vehicle("v1")
        assert await uow.vehicles.get("v2") is None


async def test_a_unit_sees_its_own_uncommitted_writes(backend: Backend) -> None:
    """Reads inside a unit see the unit's writes before it commits."""
    async with backend.factory() as uow:
        await uow.vehicles.add(bare_vehicle("v1"))
        assert await uow.vehicles.get("v1") == bare_vehicle("v1")


async def test_a_unit_of_work_is_used_once(backend: Backend) -> None:
    """Entering a unit twice, or committing outside one, is an error."""
    uow = backend.factory()
    with pytest.raises(RuntimeError):
        await uow.commit()
    async with uow:
        pass
    with pytest.raises(RuntimeError):
        async with uow:
            pass


async def test_racing_claims_on_one_version_have_one_winner(backend: Backend) -> None:
    """Two units claiming the same grant version concurrently: exactly one gets it."""
    async with backend.factory() as uow:
        await uow.grants.add(grant("g1", version=1))
        await uow.commit()

    async def claim() -> Grant | None:
        async with backend.factory() as uow:
            claimed = await uow.grants.claim_refresh("g1", expected_version=1, until=at(30), now=T0)
            await uow.commit()
            return claimed

    results = await asyncio.gather(claim(), claim())
    winners = [result for result in results if result is not None]
    assert winners == [grant("g1", version=2, refresh_claimed_until=at(30))]


async def test_concurrent_read_modify_write_units_lose_no_update(backend: Backend) -> None:
    """Ten units that each read a vehicle and write it back changed all run in turn."""
    async with backend.factory() as uow:
        await uow.vehicles.add(bare_vehicle("v1", status_reason=""))
        await uow.commit()

    async def append(mark: str) -> None:
        async with backend.factory() as uow:
            current = await uow.vehicles.get("v1", for_update=True)
            assert current is not None
            await asyncio.sleep(0)  # let the others run between the read and the write
            reason = (current.status_reason or "") + mark
            await uow.vehicles.update(dataclasses.replace(current, status_reason=reason))
            await uow.commit()

    await asyncio.gather(*(append(str(n)) for n in range(10)))
    async with backend.factory() as uow:
        final = await uow.vehicles.get("v1")
    assert final is not None
    assert sorted(final.status_reason or "") == list("0123456789")


async def test_check_then_write_units_are_serialised(backend: Backend) -> None:
    """Two units that lock the car, then start a rental only if none is active: one rental.

    The lock is the vehicle's row (FOR UPDATE on PostgreSQL); SQLite's BEGIN IMMEDIATE
    already serialises the whole unit. Either way the second unit sees the first rental.
    """
    async with backend.factory() as uow:
        await uow.vehicles.add(vehicle("v1"))
        await uow.commit()

    async def start(rental_id: str) -> bool:
        async with backend.factory() as uow:
            assert await uow.vehicles.get("v1", for_update=True) is not None
            if await uow.rentals.active("v1") is not None:
                return False
            await asyncio.sleep(0)  # let the other unit run between the check and the write
            await uow.rentals.add(rental(rental_id))
            await uow.commit()
            return True

    assert sorted(await asyncio.gather(start("r1"), start("r2"))) == [False, True]
