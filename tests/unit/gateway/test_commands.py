"""Lock and Unlock on fakes: every record resolves, and unknown outcomes settle from the
car's lock state (gateway.core.commands, gateway.core.reconcile)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from clients import smartcar as sc
from gateway.core import errors
from gateway.core.assembly import Policies, build_gateway
from gateway.core.audit import CallAudit, serving
from gateway.core.health import ConnectionHealth
from gateway.core.model import (
    Availability,
    CommandRecord,
    CommandState,
    FieldReading,
    LockAction,
    LockStatus,
    TelemetryField,
)
from gateway.core.reconcile import ReconcilePolicy, verdict
from gateway.core.secret import Secret
from gateway.edge.clock import ManualClock
from gateway.edge.smartcar.failures import translate
from tests.fakes import FakeUnitOfWorkFactory
from tests.unit.gateway.fake_smartcar import FakeCar, FakeSmartcar
from tests.unit.gateway.test_use_cases import GENEROUS, World

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
LOCK, UNLOCK = LockAction.LOCK, LockAction.UNLOCK


@pytest.fixture
async def world() -> World:
    """A gateway over fakes with one connected, unlocked car (car-1 on sc-1)."""
    clock = ManualClock(START)
    smartcar = FakeSmartcar(clock=clock)
    smartcar.add_car("sc-1", FakeCar(vin="1HGCM82633A004352", locked=False))
    uow = FakeUnitOfWorkFactory()
    gateway = build_gateway(
        uow=uow, smartcar=smartcar, clock=clock, policies=Policies(rate_limits=GENEROUS)
    )
    world = World(gateway=gateway, smartcar=smartcar, uow=uow, clock=clock)
    await world.connect("car-1", "sc-1")
    return world


def state_of(world: World, request_id: str) -> CommandState:
    """The stored state of a command."""
    return world.uow.store.commands[request_id].state


async def unknown_lock(world: World, request_id: str = "r-1") -> None:
    """Send a Lock whose answer is lost after sending."""
    world.smartcar.fail("command", errors.CommandOutcomeUnknown("timed out after sending"))
    with pytest.raises(errors.CommandOutcomeUnknown):
        await world.gateway.command("car-1", action=LOCK, request_id=request_id)
    assert state_of(world, request_id) is CommandState.OUTCOME_UNKNOWN


async def left_pending(world: World, action: LockAction) -> None:
    """Store command r-1 as PENDING at START, as a worker that died mid-command leaves it."""
    record = CommandRecord(
        request_id="r-1",
        vehicle_id="car-1",
        action=action,
        state=CommandState.PENDING,
        created_at=START,
    )
    async with world.uow() as uow:
        await uow.commands.add(record)
        await uow.commit()


class UnreadableToken(Exception):
    """What a token store that cannot decrypt a token raises (a stand-in)."""


# --- every record resolves -------------------------------------------------------------------


async def test_a_lock_cancelled_after_it_was_sent_is_kept_as_an_unknown_outcome(
    world: World,
) -> None:
    """The caller cancels while the Lock is at Smartcar: OUTCOME_UNKNOWN, not PENDING, and a
    retry hears "may have succeeded" at once, not "still running"."""
    world.smartcar.gate = asyncio.Event()
    arrived = world.smartcar.arrival("command")
    call = asyncio.create_task(world.gateway.command("car-1", action=LOCK, request_id="r-1"))
    await arrived.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert state_of(world, "r-1") is CommandState.OUTCOME_UNKNOWN
    world.smartcar.gate = None
    with pytest.raises(errors.CommandOutcomeUnknown) as replayed:
        await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert replayed.value.metadata["may_have_succeeded"] == "true"
    assert world.smartcar.calls["command"] == 1


async def test_a_cancel_arriving_during_the_final_write_does_not_stop_it(world: World) -> None:
    """A second cancellation while the outcome waits for the database still lets it land."""
    world.smartcar.gate = asyncio.Event()
    arrived = world.smartcar.arrival("command")
    call = asyncio.create_task(world.gateway.command("car-1", action=LOCK, request_id="r-1"))
    await arrived.wait()
    await world.uow.acquire()  # the database is busy: the final write will have to wait
    call.cancel()
    await asyncio.sleep(0)  # one step: the call takes the cancellation and starts the write
    call.cancel()
    world.uow.release()
    with pytest.raises(asyncio.CancelledError):
        await call
    await world.uow.acquire()  # queued behind the write, if it is still going on
    world.uow.release()
    assert state_of(world, "r-1") is CommandState.OUTCOME_UNKNOWN


async def test_a_failure_before_sending_frees_the_request_id(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A token that cannot be read fails the Lock before anything is sent: no record stays
    PENDING, and the retry once the token is readable runs the command."""

    async def unreadable(grant_id: str) -> Secret:
        raise UnreadableToken(grant_id)

    monkeypatch.setattr(world.gateway.rotator, "access_token", unreadable)
    with pytest.raises(UnreadableToken):
        await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert "r-1" not in world.uow.store.commands
    monkeypatch.undo()
    result = await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert (result.state, result.replayed) == (CommandState.SUCCEEDED, False)
    assert world.smartcar.calls["command"] == 1


async def test_a_lock_cancelled_before_it_was_sent_frees_the_request_id(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while the token was still being fetched: nothing reached the car, so the
    record goes and a retry with the same id runs the command."""
    fetching, never = asyncio.Event(), asyncio.Event()

    async def slow_token(grant_id: str) -> Secret:
        fetching.set()
        await never.wait()
        raise AssertionError("unreachable")

    monkeypatch.setattr(world.gateway.rotator, "access_token", slow_token)
    call = asyncio.create_task(world.gateway.command("car-1", action=LOCK, request_id="r-1"))
    await fetching.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert "r-1" not in world.uow.store.commands
    monkeypatch.undo()
    result = await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert (result.state, result.replayed) == (CommandState.SUCCEEDED, False)
    assert world.smartcar.calls["command"] == 1


async def test_an_unexpected_error_after_sending_is_an_unknown_outcome(world: World) -> None:
    """Any exception once the command left (here a bug in the adapter) answers "may have
    succeeded" and keeps OUTCOME_UNKNOWN, never a bare internal error."""
    world.smartcar.fail("command", RuntimeError("the answer could not be decoded"))
    with pytest.raises(errors.CommandOutcomeUnknown) as unknown:
        await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert unknown.value.metadata["may_have_succeeded"] == "true"
    assert isinstance(unknown.value.__cause__, RuntimeError)
    assert state_of(world, "r-1") is CommandState.OUTCOME_UNKNOWN


async def test_a_command_that_cannot_be_counted_is_not_sent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The budget is written before the command leaves: when that write fails, nothing is
    sent and the request id is free for a retry."""

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("budget table unavailable")

    monkeypatch.setattr(world.gateway.ledger, "charge", broken)
    sent = world.smartcar.calls["command"]
    with pytest.raises(RuntimeError):
        await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert world.smartcar.calls["command"] == sent
    assert "r-1" not in world.uow.store.commands


async def test_a_confirmed_command_succeeds_even_if_its_bookkeeping_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Smartcar confirmed the Lock; the health write after it failing does not unmake it."""

    async def broken(*_: object, **__: object) -> None:
        raise RuntimeError("vehicles table unavailable")

    monkeypatch.setattr(ConnectionHealth, "answered", broken)
    result = await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert result.state is CommandState.SUCCEEDED
    assert state_of(world, "r-1") is CommandState.SUCCEEDED


async def test_an_oem_rate_limit_is_not_unknown_and_cools_the_car_down(world: World) -> None:
    """UPSTREAM:RATE_LIMIT on Unlock: RateLimited without may_have_succeeded, the request id
    freed, and the car cooled down (the next Unlock is refused without asking Smartcar)."""
    oem = sc.UpstreamError(status=502, type="UPSTREAM", code="RATE_LIMIT")
    world.smartcar.fail("command", translate(oem, command=True))
    with pytest.raises(errors.RateLimited) as limited:
        await world.gateway.command("car-1", action=UNLOCK, request_id="u-1")
    assert "may_have_succeeded" not in limited.value.metadata
    assert "u-1" not in world.uow.store.commands
    with pytest.raises(errors.RateLimited) as cooling:
        await world.gateway.command("car-1", action=UNLOCK, request_id="u-2")
    assert cooling.value.metadata["limit"] == "vehicle_cooldown"
    assert world.smartcar.calls["command"] == 1


# --- unknown outcomes settle from the lock state -----------------------------------------


async def test_an_unknown_lock_the_car_did_settles_succeeded(world: World) -> None:
    """The car reports locked after the Lock was sent: SUCCEEDED, replayed as such, and the
    panel's last command follows; the car is asked only once the first check is due."""
    await unknown_lock(world)
    world.smartcar.cars["sc-1"].locked = True  # it did happen
    reads = world.smartcar.calls["read"]
    assert (await world.gateway.reconciler.run_once()).asked == 0
    assert world.smartcar.calls["read"] == reads
    world.clock.advance(90)
    report = await world.gateway.reconciler.run_once()
    assert (report.asked, report.succeeded) == (1, 1)
    replayed = await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert (replayed.state, replayed.replayed) == (CommandState.SUCCEEDED, True)
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.last_command is not None
    assert (panel.vehicle.last_command.request_id, panel.vehicle.last_command.action) == (
        "r-1",
        LOCK,
    )
    assert world.smartcar.calls["command"] == 1


async def test_an_unknown_lock_the_car_never_did_fails_once_it_cannot_be_on_its_way(
    world: World,
) -> None:
    """Unlocked right after sending proves nothing (the Lock may be travelling); unlocked
    five minutes on does: FAILED, replayed as CommandNotApplied without may_have_succeeded."""
    await unknown_lock(world)
    reads = world.smartcar.calls["read"]
    world.clock.advance(90)
    assert (await world.gateway.reconciler.run_once()).failed == 0
    assert state_of(world, "r-1") is CommandState.OUTCOME_UNKNOWN
    world.clock.advance(5 * 60)
    assert (await world.gateway.reconciler.run_once()).failed == 1
    with pytest.raises(errors.CommandNotApplied) as replayed:
        await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert "may_have_succeeded" not in replayed.value.metadata
    assert world.smartcar.calls["read"] - reads == 2
    assert world.smartcar.calls["command"] == 1


async def test_a_replay_settles_from_a_reading_already_held_without_asking_the_car(
    world: World,
) -> None:
    """A caller's read after the Lock shows it locked: the retry answers SUCCEEDED from that
    reading, with no reconciliation pass and no further upstream call."""
    await unknown_lock(world)
    world.smartcar.cars["sc-1"].locked = True
    world.clock.advance(90)
    await world.gateway.get_telemetry(
        "car-1", fields=frozenset({TelemetryField.LOCK_STATUS}), max_age=timedelta(0)
    )
    reads = world.smartcar.calls["read"]
    replayed = await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert (replayed.state, replayed.replayed) == (CommandState.SUCCEEDED, True)
    assert world.smartcar.calls["read"] == reads


async def test_readings_after_a_later_command_prove_nothing_and_asking_stops(
    world: World,
) -> None:
    """After a later Unlock was sent, no reading can tell the lost Lock's outcome: it stays
    unknown, the car is asked at most once per check, and not at all past the horizon."""
    await unknown_lock(world)
    world.clock.advance(10)
    await world.gateway.command("car-1", action=UNLOCK, request_id="r-2")
    reads = world.smartcar.calls["read"]
    for _ in range(40):  # a pass a minute, for 40 minutes, then past the horizon
        world.clock.advance(60)
        await world.gateway.reconciler.run_once()
    world.clock.advance(3600)
    await world.gateway.reconciler.run_once()
    assert state_of(world, "r-1") is CommandState.OUTCOME_UNKNOWN
    assert world.smartcar.calls["read"] - reads == len(ReconcilePolicy().checks)


async def test_a_command_left_pending_by_a_stopped_worker_becomes_unknown_then_settles(
    world: World,
) -> None:
    """A PENDING record whose worker died is taken up after five minutes and settled."""
    await left_pending(world, UNLOCK)
    world.clock.advance(6 * 60 + 1)
    report = await world.gateway.reconciler.run_once()
    assert report.succeeded == 1  # the car reads unlocked, recorded after the command
    replayed = await world.gateway.command("car-1", action=UNLOCK, request_id="r-1")
    assert replayed.state is CommandState.SUCCEEDED


async def test_a_long_forgotten_pending_command_becomes_unknown_without_asking_the_car(
    world: World,
) -> None:
    """A PENDING record older than the horizon is marked unknown; no reading could prove
    its outcome any more, so the car is not asked."""
    await left_pending(world, LOCK)
    reads = world.smartcar.calls["read"]
    world.clock.advance(2 * 3600)
    await world.gateway.reconciler.run_once()
    assert state_of(world, "r-1") is CommandState.OUTCOME_UNKNOWN
    assert world.smartcar.calls["read"] == reads


async def test_a_car_whose_allowance_is_spent_is_not_asked(world: World) -> None:
    """Reconciliation never takes a car past its monthly allowance."""
    await unknown_lock(world)
    async with world.uow() as uow:
        await uow.budget.add("car-1", START.strftime("%Y-%m"), 500)
        await uow.commit()
    reads = world.smartcar.calls["read"]
    world.clock.advance(90)
    assert (await world.gateway.reconciler.run_once()).asked == 0
    assert world.smartcar.calls["read"] == reads


async def test_a_refused_reconciliation_read_costs_nothing_and_is_tried_again(
    world: World,
) -> None:
    """A car in Smartcar cooldown is not asked (the pass ends quietly, still unknown); the
    first pass after the cooldown asks it."""
    await unknown_lock(world)
    world.smartcar.cars["sc-1"].locked = True
    world.clock.advance(90)
    now_s = world.clock.now().timestamp()
    await world.gateway.limiter.cool_down("car-1", until_s=now_s + 120, now_s=now_s)
    reads = world.smartcar.calls["read"]
    assert (await world.gateway.reconciler.run_once()).asked == 0
    assert world.smartcar.calls["read"] == reads
    assert state_of(world, "r-1") is CommandState.OUTCOME_UNKNOWN
    world.clock.advance(120)
    assert (await world.gateway.reconciler.run_once()).succeeded == 1
    assert world.smartcar.calls["read"] == reads + 1


# --- what a reading proves ------------------------------------------------------------------


def lock_reading(*, locked: bool, after_s: float) -> FieldReading:
    """A lock-status reading recorded `after_s` seconds after START."""
    at = START + timedelta(seconds=after_s)
    return FieldReading(
        field=TelemetryField.LOCK_STATUS,
        availability=Availability.AVAILABLE,
        value=LockStatus(is_locked=locked),
        recorded_at=at,
        fetched_at=at,
    )


SENT_LOCK = CommandRecord(
    request_id="r-1",
    vehicle_id="car-1",
    action=LOCK,
    state=CommandState.OUTCOME_UNKNOWN,
    created_at=START,
)


@pytest.mark.parametrize(
    ("locked", "after_s", "next_sent_s", "expected"),
    [
        (True, 1, None, CommandState.SUCCEEDED),
        (True, 0, None, None),  # recorded when it was sent: before it could act
        (True, -60, None, None),
        (False, 60, None, None),  # the Lock may still be on its way
        (False, 300, None, CommandState.FAILED),
        (True, 30, 20, None),  # after a later command was sent
        (False, 400, 20, None),
        (True, 3600, None, None),  # past the horizon: a hand on the key may have done it
    ],
)
def test_what_a_lock_reading_proves(
    locked: bool, after_s: float, next_sent_s: float | None, expected: CommandState | None
) -> None:
    """Only a reading between the sending and the next command (and the horizon) counts:
    the requested state at once, the opposite state once the command cannot be on its way."""
    next_sent = None if next_sent_s is None else START + timedelta(seconds=next_sent_s)
    reading = lock_reading(locked=locked, after_s=after_s)
    found = verdict(SENT_LOCK, reading, next_sent_at=next_sent, policy=ReconcilePolicy())
    assert found is expected


def served_call(request_id: str) -> CallAudit:
    """The audit entry of a Lock call the edge is serving."""
    return CallAudit(
        caller="rental-service",
        method="Lock",
        vehicle_id="car-1",
        request_id=request_id,
        elapsed_ms=lambda: 12.5,
    )


async def test_a_succeeded_command_writes_its_call_audit_entry_with_its_outcome(
    world: World,
) -> None:
    """The entry of the call is stored, as succeeded, by the command's outcome transaction,
    and marked written so the edge stores no second one."""
    call = served_call("call-1")
    with serving(call):
        await world.gateway.command("car-1", action=LOCK, request_id="r-1")
    assert call.written
    entries = list(world.uow.store.audit.values())
    assert [(e.method, e.request_id, e.outcome, e.duration_ms) for e in entries] == [
        ("Lock", "call-1", "OK", 12.5)
    ]
    assert state_of(world, "r-1") is CommandState.SUCCEEDED


async def test_a_failed_command_leaves_its_audit_entry_to_the_edge(world: World) -> None:
    """A command that did not succeed writes no entry: the edge records how the call ended."""
    world.smartcar.fail("command", errors.CommandOutcomeUnknown("timed out after sending"))
    call = served_call("call-2")
    with serving(call), pytest.raises(errors.CommandOutcomeUnknown):
        await world.gateway.command("car-1", action=LOCK, request_id="r-2")
    assert not call.written
    assert world.uow.store.audit == {}
