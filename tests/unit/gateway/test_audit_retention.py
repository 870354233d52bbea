"""Audit retention: entries older than the retention are deleted oldest first, in batches
of bounded size, on an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.audit import AuditRetention, AuditRetentionPolicy, AuditTrail
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = 86_400


async def record_days(trail: AuditTrail, clock: ManualClock, days: list[int]) -> None:
    """Record one Unlock entry at T0 + each number of days (ascending)."""
    for day in days:
        clock.advance((T0 + timedelta(days=day) - clock.now()).total_seconds())
        await trail.record(
            caller="rental",
            method="Unlock",
            vehicle_id="car-1",
            request_id=f"day-{day}",
            outcome="OK",
            duration_ms=1.0,
        )


async def test_entries_past_the_retention_are_deleted_in_bounded_batches() -> None:
    """With 30 days kept, the 7 entries older than that go in batches of 3 (three short
    transactions), and the entries inside the 30 days stay."""
    uow = FakeUnitOfWorkFactory()
    clock = ManualClock(T0)
    trail = AuditTrail(uow=uow, clock=clock)
    await record_days(trail, clock, [0, 1, 2, 3, 4, 5, 6, 31, 40])
    clock.advance(10 * DAY)  # now: day 50, so anything before day 20 has expired
    retention = AuditRetention(
        uow=uow,
        clock=clock,
        policy=AuditRetentionPolicy(retention=timedelta(days=30), batch_size=3),
    )
    commits_before = uow.commits
    assert await retention.run_once() == 7
    assert uow.commits - commits_before == 3
    assert sorted(e.request_id for e in uow.store.audit.values()) == ["day-31", "day-40"]
    assert await retention.run_once() == 0


async def test_one_pass_deletes_at_most_its_batches_and_the_next_goes_on() -> None:
    """A pass stops after `max_batches` batches, so a large backlog never holds the
    database for long; the next pass deletes the rest."""
    uow = FakeUnitOfWorkFactory()
    clock = ManualClock(T0)
    trail = AuditTrail(uow=uow, clock=clock)
    await record_days(trail, clock, list(range(10)))
    clock.advance(400 * DAY)
    policy = AuditRetentionPolicy(retention=timedelta(days=30), batch_size=2, max_batches=2)
    retention = AuditRetention(uow=uow, clock=clock, policy=policy)
    assert await retention.run_once() == 4
    assert len(uow.store.audit) == 6
    assert await retention.run_once() == 4
    assert await retention.run_once() == 2
    assert uow.store.audit == {}


async def test_no_retention_keeps_everything() -> None:
    """Retention None (VG_AUDIT_RETENTION_DAYS=0) deletes nothing, however old."""
    uow = FakeUnitOfWorkFactory()
    clock = ManualClock(T0)
    await record_days(AuditTrail(uow=uow, clock=clock), clock, [0])
    clock.advance(10_000 * DAY)
    retention = AuditRetention(uow=uow, clock=clock, policy=AuditRetentionPolicy(retention=None))
    assert await retention.run_once() == 0
    assert len(uow.store.audit) == 1
