"""The vehicle event repository's contract, on every backend (SQLite, PostgreSQL, the fake):
events stored and read back by id with every detail, retention deleting a prefix and
moving the horizon, ids never handed out twice, latches set once; on SQL, the events of a
unit of work counted only once it commits."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.model import ConnectionStatus, FinalReadingState
from gateway.core.vehicle_events import (
    BudgetWarningDetail,
    Closure,
    ClosureKind,
    ErrorState,
    FinalReadingDetail,
    LockChange,
    LowLevel,
    OpenAtEnd,
    ReadingOrigin,
    StatusChange,
    VehicleErrorReport,
    VehicleEvent,
    VehicleEventKind,
)
from storage.crypto import TokenCipher
from storage.uow import unit_of_work_factory
from tests.integration.storage.builders import BERLIN_SUMMER, T0, at
from tests.integration.storage.conftest import Backend

K = VehicleEventKind

DETAILS = {
    K.LOCK_STATE_CHANGED: LockChange(
        locked=False, origin=ReadingOrigin.COMMAND, recorded_at=at(1), request_id="u-1"
    ),
    K.DOORS_OPEN_AT_RENTAL_END: OpenAtEnd(
        open=(
            Closure(kind=ClosureKind.DOOR, name="frontLeft"),
            Closure(kind=ClosureKind.TRUNK, name="rear"),
        ),
        locked=True,
        recorded_at=None,
    ),
    K.VEHICLE_ERROR: VehicleErrorReport(
        type="CONNECTED_SERVICES_ACCOUNT",
        code="AUTHENTICATION_FAILED",
        description="Smartcar was unable to authenticate.",
        state=ErrorState.ACTIVE,
        resolution_type="REAUTHENTICATE",
        resolution_url="https://connect.smartcar.com/oauth/reauthenticate?vehicle_id=sc-1",
    ),
    K.LOW_FUEL: LowLevel(
        percent=12.5, threshold_percent=15, origin=ReadingOrigin.WEBHOOK, recorded_at=at(2)
    ),
    K.LOW_CHARGE: LowLevel(percent=3, threshold_percent=20, origin=ReadingOrigin.RENTAL_READING),
    K.CONNECTION_STATUS_CHANGED: StatusChange(
        from_status=ConnectionStatus.ACTIVE, to_status=ConnectionStatus.EXPIRED, reason="revoked"
    ),
    K.BUDGET_WARNING: BudgetWarningDetail(
        month="2026-03", requests_this_month=400, monthly_allowance=500, warning_percent=80
    ),
    K.FINAL_READING_RECORDED: FinalReadingDetail(
        state=FinalReadingState.RECORDED,
        ended_at=at(-3600),
        distance_km=42.0,
        fuel_percent_change=-7.5,
    ),
    K.FINAL_READING_GIVEN_UP: FinalReadingDetail(
        state=FinalReadingState.GIVEN_UP,
        ended_at=at(-86400),
        reason="no value recorded after the end came within 24 h of it",
    ),
}


def event(
    kind: VehicleEventKind, *, written: datetime = T0, rental: str | None = None
) -> VehicleEvent:
    """An event of `kind` about v1, written at `written`, with its sample detail."""
    return VehicleEvent(
        vehicle_id="v1",
        kind=kind,
        at=written,
        description=f"{kind.value} happened",
        detail=DETAILS[kind],
        rental_id=rental,
    )


async def add(backend: Backend, *events: VehicleEvent) -> list[VehicleEvent]:
    """Commit events in one unit of work; return them as stored."""
    async with backend.factory() as uow:
        added = [await uow.events.add(e) for e in events]
        await uow.commit()
    return added


async def test_every_kind_comes_back_as_it_was_written(backend: Backend) -> None:
    """Each kind with its detail is stored and read back whole after an id, oldest first,
    its times in UTC, ids increasing; latest_id is the newest."""
    written = [event(kind, written=T0.astimezone(BERLIN_SUMMER), rental="r-1") for kind in K]
    added = await add(backend, *written)
    ids = [e.id or 0 for e in added]
    assert ids == sorted(set(ids))
    async with backend.factory() as uow:
        found = await uow.events.after(0, limit=100)
        assert await uow.events.latest_id() == ids[-1]
        assert await uow.events.after(ids[2], limit=2) == found[3:5]
    assert found == added
    assert [e.detail for e in found] == [DETAILS[kind] for kind in K]
    assert all(e.at == T0 and e.at.tzinfo == UTC for e in found)
    assert {e.rental_id for e in found} == {"r-1"}


async def test_retention_deletes_a_prefix_and_ids_are_never_handed_out_again(
    backend: Backend,
) -> None:
    """prune() deletes the oldest events up to the first one written at or after the cutoff
    (at most `limit`), and pruned_through says how far; once every event is gone, the next
    one still gets a higher id."""
    old = [event(K.BUDGET_WARNING, written=at(n)) for n in range(4)]
    first = await add(backend, *old, event(K.BUDGET_WARNING, written=at(100)))
    async with backend.factory() as uow:
        assert await uow.events.pruned_through() == 0
        assert await uow.events.prune(before=at(50), limit=3) == 3
        assert await uow.events.prune(before=at(50), limit=3) == 1
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.events.pruned_through() == first[3].id
        assert [e.id for e in await uow.events.after(0, limit=10)] == [first[4].id]
        assert await uow.events.prune(before=at(200), limit=10) == 1
        assert await uow.events.prune(before=at(200), limit=10) == 0
        await uow.commit()
    [later] = await add(backend, event(K.BUDGET_WARNING, written=at(300)))
    assert (later.id or 0) > (first[4].id or 0)
    async with backend.factory() as uow:
        assert await uow.events.pruned_through() == first[4].id
        assert await uow.events.latest_id() == later.id


async def test_a_latch_is_set_once_until_cleared(backend: Backend) -> None:
    """latch() is True only for the call that set it, per vehicle and kind; unlatch()
    re-arms it (clearing one not set is fine)."""
    async with backend.factory() as uow:
        assert await uow.events.latch("v1", K.LOW_FUEL, at=T0)
        assert not await uow.events.latch("v1", K.LOW_FUEL, at=at(5))
        assert await uow.events.latch("v1", K.LOW_CHARGE, at=T0)
        assert await uow.events.latch("v2", K.LOW_FUEL, at=T0)
        await uow.commit()
    async with backend.factory() as uow:
        await uow.events.unlatch("v1", K.LOW_FUEL)
        await uow.events.unlatch("v3", K.LOW_FUEL)
        assert await uow.events.latch("v1", K.LOW_FUEL, at=at(9))
        assert not await uow.events.latch("v2", K.LOW_FUEL, at=at(9))
        await uow.commit()


async def test_committed_events_are_counted_and_rolled_back_ones_are_not(
    engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """The factory's observer hears the kind of each event once its unit of work
    committed: never one rolled back (the outbox's count follows the outbox)."""
    heard: list[VehicleEventKind] = []
    factory = unit_of_work_factory(engine, cipher).observed(heard.append)
    async with factory() as uow:
        await uow.events.add(event(K.LOW_FUEL))
    assert heard == []
    async with factory() as uow:
        await uow.events.add(event(K.LOW_FUEL))
        await uow.events.add(event(K.BUDGET_WARNING))
        assert heard == []
        await uow.commit()
    assert heard == [K.LOW_FUEL, K.BUDGET_WARNING]
    async with factory() as uow:
        assert [e.kind for e in await uow.events.after(0, limit=10)] == heard
