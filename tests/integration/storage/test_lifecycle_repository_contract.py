"""Lifecycle repository contract, on every backend: transitions, budget, leases, webhooks."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC
from typing import Any

import pytest

from gateway.core.model import AuditEntry, AuditQuery, BudgetCharge, ConnectionStatus
from tests.integration.storage.builders import (
    BERLIN_SUMMER,
    T0,
    at,
    bare_vehicle,
    event,
    transition,
)
from tests.integration.storage.conftest import Backend, seed

JUNE, JULY = "2026-06", "2026-07"

# --- status transitions ---------------------------------------------------------------------


async def test_an_added_transition_comes_back_with_an_id_and_utc_time(backend: Backend) -> None:
    """add() returns the transition as stored: a fresh id (any given one ignored), UTC time."""
    await seed(backend, bare_vehicle("v1"))
    async with backend.factory() as uow:
        added = await uow.transitions.add(
            transition(id=999, at=at(5).astimezone(BERLIN_SUMMER), reason=None)
        )
        await uow.commit()
    assert added.id is not None
    assert added.id != 999
    assert added == transition(id=added.id, at=at(5), reason=None)
    assert added.at.tzinfo == UTC
    async with backend.factory() as uow:
        assert await uow.transitions.for_vehicle("v1", limit=5) == [added]


async def test_transitions_read_newest_first_per_vehicle_and_oldest_first_after_an_id(
    backend: Backend,
) -> None:
    """for_vehicle() walks one car's history backwards; after() resumes a watcher forwards."""
    await seed(backend, bare_vehicle("v1"), bare_vehicle("v2"))
    connected = ConnectionStatus.NOT_CONNECTED, ConnectionStatus.ACTIVE
    async with backend.factory() as uow:
        first = await uow.transitions.add(
            transition("v1", from_status=connected[0], to_status=connected[1])
        )
        other = await uow.transitions.add(transition("v2", at=at(1)))
        last = await uow.transitions.add(transition("v1", at=at(2)))
        await uow.commit()
    assert first.id is not None
    assert first.id < (other.id or 0) < (last.id or 0)
    async with backend.factory() as uow:
        assert await uow.transitions.for_vehicle("v1", limit=9) == [last, first]
        assert await uow.transitions.for_vehicle("v1", limit=1) == [last]
        assert await uow.transitions.for_vehicle("v3", limit=9) == []
        assert await uow.transitions.after(0, limit=9) == [first, other, last]
        assert await uow.transitions.after(first.id, limit=1) == [other]
        assert await uow.transitions.after(first.id, limit=0) == []
        assert await uow.transitions.latest_id() == last.id


async def test_transition_ids_keep_increasing_across_units(backend: Backend) -> None:
    """A later unit's transition gets a higher id; a rolled-back one leaves no trace."""
    await seed(backend, bare_vehicle("v1"))
    async with backend.factory() as uow:
        assert await uow.transitions.latest_id() == 0
        first = await uow.transitions.add(transition())
        await uow.commit()
    async with backend.factory() as uow:
        await uow.transitions.add(transition(at=at(1)))
    async with backend.factory() as uow:
        assert await uow.transitions.latest_id() == first.id
        second = await uow.transitions.add(transition(at=at(2)))
        await uow.commit()
    assert (second.id or 0) > (first.id or 0)
    async with backend.factory() as uow:
        assert await uow.transitions.after(0, limit=9) == [first, second]


async def test_a_transition_of_an_unknown_vehicle_is_refused(backend: Backend) -> None:
    """Transitions must belong to a known vehicle."""
    async with backend.factory() as uow:
        with pytest.raises(backend.foreign_key_error):
            await uow.transitions.add(transition("ghost"))


# --- request budget -------------------------------------------------------------------------


async def test_the_budget_adds_up_per_vehicle_and_month(backend: Backend) -> None:
    """add() returns the running total of its (vehicle, month); used() reads it, 0 if none."""
    await seed(backend, bare_vehicle("v1"), bare_vehicle("v2"))
    async with backend.factory() as uow:
        assert await uow.budget.used("v1", JUNE) == 0
        assert await uow.budget.add("v1", JUNE, 3) == 3
        assert await uow.budget.add("v1", JUNE, 4) == 7
        assert await uow.budget.add("v1", JULY, 1) == 1
        assert await uow.budget.add("v2", JUNE, 2) == 2
        await uow.commit()
    async with backend.factory() as uow:
        used = [await uow.budget.used(v, m) for v, m in (("v1", JUNE), ("v1", JULY), ("v2", JUNE))]
        assert used == [7, 1, 2]
        assert await uow.budget.used("v2", JULY) == 0
        assert await uow.budget.used_by(["v1", "v2", "v3"], JUNE) == {"v1": 7, "v2": 2, "v3": 0}
        assert await uow.budget.used_by(["v2"], JULY) == {"v2": 0}
        assert await uow.budget.used_by([], JUNE) == {}


async def test_racing_budget_increments_lose_nothing(backend: Backend) -> None:
    """Ten concurrent units each adding requests to one month: every request is counted."""
    await seed(backend, bare_vehicle("v1"))

    async def bill(requests: int) -> int:
        async with backend.factory() as uow:
            total = await uow.budget.add("v1", JUNE, requests)
            await uow.commit()
            return total

    totals = await asyncio.gather(*(bill(n) for n in range(1, 11)))
    async with backend.factory() as uow:
        assert await uow.budget.used("v1", JUNE) == 55
    assert max(totals) == 55
    assert len(set(totals)) == 10


async def test_a_charge_counts_only_up_to_its_limit(backend: Backend) -> None:
    """charge() adds while the month stays within its limit, and otherwise counts nothing
    and reports the month as it stands; no limit is add()."""
    await seed(backend, bare_vehicle("v1"))
    async with backend.factory() as uow:
        assert await uow.budget.charge("v1", JUNE, 7, limit=5) == BudgetCharge(
            accepted=False, billed=0, warned=False
        )
        assert await uow.budget.charge("v1", JUNE, 4, limit=5) == BudgetCharge(
            accepted=True, billed=4, warned=False
        )
        assert await uow.budget.charge("v1", JUNE, 1, limit=5) == BudgetCharge(
            accepted=True, billed=5, warned=False
        )
        assert await uow.budget.charge("v1", JUNE, 1, limit=5) == BudgetCharge(
            accepted=False, billed=5, warned=False
        )
        assert (await uow.budget.charge("v1", JUNE, 3, limit=None)).billed == 8
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.budget.used("v1", JUNE) == 8


async def test_racing_charges_never_pass_the_limit_together(backend: Backend) -> None:
    """Twenty concurrent units each charging 1 against a limit of 12: exactly 12 are
    accepted, whatever the interleaving."""
    await seed(backend, bare_vehicle("v1"))

    async def charge() -> bool:
        async with backend.factory() as uow:
            charged = await uow.budget.charge("v1", JUNE, 1, limit=12)
            await uow.commit()
            return charged.accepted

    accepted = await asyncio.gather(*(charge() for _ in range(20)))
    assert sum(accepted) == 12
    async with backend.factory() as uow:
        assert await uow.budget.used("v1", JUNE) == 12


async def test_a_month_is_marked_warned_once(backend: Backend) -> None:
    """mark_warned() is True for the one call that marks the month, then False; charges
    report the mark; another month is not marked."""
    await seed(backend, bare_vehicle("v1"))
    async with backend.factory() as uow:
        await uow.budget.add("v1", JUNE, 400)
        await uow.budget.add("v1", JULY, 1)
        assert await uow.budget.mark_warned("v1", JUNE, at=at(1)) is True
        assert await uow.budget.mark_warned("v1", JUNE, at=at(2)) is False
        await uow.commit()
    async with backend.factory() as uow:
        assert (await uow.budget.charge("v1", JUNE, 1, limit=None)).warned is True
        assert (await uow.budget.charge("v1", JULY, 1, limit=None)).warned is False
        assert (await uow.budget.charge("v1", JUNE, 200, limit=450)).warned is True


async def test_the_budget_of_an_unknown_vehicle_is_refused(backend: Backend) -> None:
    """Billed requests must belong to a known vehicle."""
    async with backend.factory() as uow:
        with pytest.raises(backend.foreign_key_error):
            await uow.budget.add("ghost", JUNE, 1)


# --- scheduler leases -----------------------------------------------------------------------


async def test_a_lease_is_held_until_it_expires_and_renewed_by_its_holder(
    backend: Backend,
) -> None:
    """A free lease is taken; others fail until `now` reaches its expiry; the holder renews."""
    async with backend.factory() as uow:
        leases = uow.leases
        assert await leases.acquire("renewals", "a", until=at(30), now=T0)
        assert not await leases.acquire("renewals", "b", until=at(60), now=at(29))
        assert await leases.acquire("renewals", "a", until=at(60), now=at(29))
        assert not await leases.acquire("renewals", "b", until=at(90), now=at(59))
        assert await leases.acquire("other-job", "b", until=at(60), now=at(29))
        assert await leases.acquire(
            "renewals", "b", until=at(90), now=at(60).astimezone(BERLIN_SUMMER)
        )
        await uow.commit()
    async with backend.factory() as uow:
        assert not await uow.leases.acquire("renewals", "a", until=at(120), now=at(89))


async def test_release_frees_only_the_holders_lease(backend: Backend) -> None:
    """release() by someone else changes nothing; by the holder it frees the lease at once."""
    async with backend.factory() as uow:
        assert await uow.leases.acquire("poller", "a", until=at(30), now=T0)
        await uow.leases.release("poller", "b")
        await uow.leases.release("never-taken", "a")
        assert not await uow.leases.acquire("poller", "b", until=at(30), now=at(1))
        await uow.leases.release("poller", "a")
        assert await uow.leases.acquire("poller", "b", until=at(30), now=at(1))


async def test_racing_acquirers_of_a_free_lease_have_one_winner(backend: Backend) -> None:
    """Two units taking the same free lease concurrently: exactly one gets it, and keeps it."""

    async def take(holder: str) -> bool:
        async with backend.factory() as uow:
            taken = await uow.leases.acquire("poller", holder, until=at(30), now=T0)
            await uow.commit()
            return taken

    results = await asyncio.gather(take("a"), take("b"))
    assert sorted(results) == [False, True]
    winner, loser = ("a", "b") if results[0] else ("b", "a")
    async with backend.factory() as uow:
        assert await uow.leases.acquire("poller", winner, until=at(40), now=at(1))
        assert not await uow.leases.acquire("poller", loser, until=at(40), now=at(1))


# --- webhook events -------------------------------------------------------------------------


async def test_a_new_webhook_event_is_stored_and_pending(backend: Backend) -> None:
    """add() is True for a new id; the event reads back equal, payload intact, time in UTC."""
    received = at(7).astimezone(BERLIN_SUMMER)
    anonymous = event("evt-2", smartcar_vehicle_id=None, received_at=at(8), payload={})
    async with backend.factory() as uow:
        assert await uow.webhook_events.add(event(received_at=received))
        assert await uow.webhook_events.add(anonymous)
        await uow.commit()
    async with backend.factory() as uow:
        pending = await uow.webhook_events.pending(limit=9)
    assert pending == [event(received_at=at(7)), anonymous]
    assert pending[0].received_at.tzinfo == UTC


async def test_a_redelivered_event_is_refused_quietly(backend: Backend) -> None:
    """A known event id gives False, writes nothing, and the unit of work goes on."""
    async with backend.factory() as uow:
        assert await uow.webhook_events.add(event("evt-1"))
        await uow.commit()
    async with backend.factory() as uow:
        assert not await uow.webhook_events.add(
            event("evt-1", event_type="VEHICLE_ERROR", payload={"changed": True})
        )
        assert await uow.webhook_events.add(event("evt-2", received_at=at(1)))
        await uow.commit()
    async with backend.factory() as uow:
        pending = await uow.webhook_events.pending(limit=9)
    assert pending == [event("evt-1"), event("evt-2", received_at=at(1))]


async def test_pending_lists_unapplied_events_oldest_first(backend: Backend) -> None:
    """pending() skips applied events (with or without an error), orders by receipt then id."""
    async with backend.factory() as uow:
        for event_id, received in (("e-c", 2), ("e-b", 1), ("e-a", 1), ("e-d", 3), ("e-e", 4)):
            assert await uow.webhook_events.add(event(event_id, received_at=at(received)))
        await uow.webhook_events.mark_applied("e-c", at=at(5), error=None)
        await uow.webhook_events.mark_applied("e-d", at=at(5), error="unknown vehicle")
        await uow.commit()
    async with backend.factory() as uow:
        pending = [e.event_id for e in await uow.webhook_events.pending(limit=9)]
        first = [e.event_id for e in await uow.webhook_events.pending(limit=2)]
        assert await uow.webhook_events.pending(limit=0) == []
    assert pending == ["e-a", "e-b", "e-e"]
    assert first == ["e-a", "e-b"]


async def test_marking_an_unknown_event_is_a_lookup_error(backend: Backend) -> None:
    """mark_applied() and mark_failed() on an id never stored raise LookupError."""
    async with backend.factory() as uow:
        with pytest.raises(LookupError):
            await uow.webhook_events.mark_applied("evt-404", at=T0, error=None)
        with pytest.raises(LookupError):
            await uow.webhook_events.mark_failed("evt-404", at=T0, reason="x")


async def test_a_failed_event_leaves_pending_and_keeps_its_reason(backend: Backend) -> None:
    """mark_failed() takes an event out of pending(); get() reads it back with its time and
    reason; an event stored failed on arrival reads back the same way."""
    arrived_failed = event("e-b", failed_at=at(1), error="not applied: bad text")
    async with backend.factory() as uow:
        assert await uow.webhook_events.add(event("e-a"))
        assert await uow.webhook_events.add(arrived_failed)
        assert await uow.webhook_events.add(event("e-c", received_at=at(2)))
        await uow.webhook_events.mark_failed("e-a", at=at(5), reason="not applied: boom")
        await uow.commit()
    async with backend.factory() as uow:
        pending = [e.event_id for e in await uow.webhook_events.pending(limit=9)]
        failed = await uow.webhook_events.get("e-a")
        stored = await uow.webhook_events.get("e-b")
        assert await uow.webhook_events.get("e-404") is None
    assert pending == ["e-c"]
    assert failed == event("e-a", failed_at=at(5), error="not applied: boom")
    assert failed.failed_at is not None
    assert failed.failed_at.tzinfo == UTC
    assert stored == arrived_failed


# --- one unit of work over all four ---------------------------------------------------------


async def test_lifecycle_writes_without_commit_leave_no_trace(backend: Backend) -> None:
    """A unit that writes to all four stores and does not commit changes none of them."""
    await seed(backend, bare_vehicle("v1"))
    async with backend.factory() as uow:
        await uow.transitions.add(transition())
        await uow.budget.add("v1", JUNE, 5)
        assert await uow.leases.acquire("poller", "a", until=at(30), now=T0)
        assert await uow.webhook_events.add(event())
    async with backend.factory() as uow:
        assert await uow.transitions.latest_id() == 0
        assert await uow.budget.used("v1", JUNE) == 0
        assert await uow.leases.acquire("poller", "b", until=at(30), now=T0)
        assert await uow.webhook_events.pending(limit=9) == []


# --- audit trail ----------------------------------------------------------------------------


def entry(n: int, **changes: Any) -> AuditEntry:
    """An audit entry `n` seconds after T0; Unlock of v1 by rental, OK, unless changed."""
    base = AuditEntry(
        at=at(n),
        caller="rental",
        method="Unlock",
        vehicle_id="v1",
        request_id=f"req-{n}",
        outcome="OK",
        duration_ms=12.5,
    )
    return dataclasses.replace(base, **changes)


async def test_audit_entries_come_back_newest_first_and_filtered(backend: Backend) -> None:
    """add() assigns increasing ids and keeps times in UTC; find() filters by vehicle,
    caller, method and time, pages with before_id, and lists newest first."""
    written = [
        entry(1, at=at(1).astimezone(BERLIN_SUMMER), id=77),
        entry(
            2, caller="billing", method="Lock", outcome="PERMISSION_DENIED", reason="ACCESS_DENIED"
        ),
        entry(3, vehicle_id="ghost-car"),  # no foreign key: unknown vehicles are audited too
        entry(4, method="Connect"),
    ]
    async with backend.factory() as uow:
        added = [await uow.audit.add(e) for e in written]
        await uow.commit()
    ids = [a.id for a in added]
    assert ids == sorted(ids)
    assert 77 not in ids
    assert added[0].at == at(1)
    assert added[0].at.tzinfo == UTC
    async with backend.factory() as uow:
        newest_first = await uow.audit.find(AuditQuery())
        by_vehicle = await uow.audit.find(AuditQuery(vehicle_id="v1"))
        by_caller = await uow.audit.find(AuditQuery(caller="billing"))
        by_method = await uow.audit.find(AuditQuery(method="Unlock", vehicle_id="v1"))
        recent = await uow.audit.find(AuditQuery(since=at(3)))
        page = await uow.audit.find(AuditQuery(before_id=ids[2], limit=1))
    assert newest_first == list(reversed(added))
    assert [e.request_id for e in by_vehicle] == ["req-4", "req-2", "req-1"]
    assert by_caller == [added[1]]
    assert by_caller[0].reason == "ACCESS_DENIED"
    assert [e.request_id for e in by_method] == ["req-1"]
    assert [e.request_id for e in recent] == ["req-4", "req-3"]
    assert page == [added[1]]


async def test_prune_deletes_expired_entries_among_the_oldest_only(backend: Backend) -> None:
    """prune() deletes, among the `limit` oldest entries, those recorded before the cutoff,
    and says how many: a batch at a time, never an entry inside the retention."""
    async with backend.factory() as uow:
        added = [await uow.audit.add(entry(n)) for n in range(1, 6)]
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.audit.prune(before=at(4), limit=2) == 2
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.audit.prune(before=at(4), limit=2) == 1  # entry 4 is not expired
        assert await uow.audit.prune(before=at(4), limit=2) == 0
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.audit.find(AuditQuery()) == list(reversed(added[3:]))
