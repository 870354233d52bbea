"""StartCharge, StopCharge and SetChargeLimit on fakes: the same idempotency, outcome
classes and settling as Lock and Unlock (gateway.core.commands, .command_effects,
.reconcile), and the CHARGE field they change."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core import errors
from gateway.core.command_effects import after, effect_field, shows
from gateway.core.model import (
    Availability,
    Charge,
    ChargeAction,
    ChargingState,
    Command,
    CommandAction,
    CommandResult,
    CommandState,
    LockAction,
    LockStatus,
    TelemetryField,
)
from gateway.core.permissions import REQUESTED_PERMISSIONS
from tests.unit.gateway.test_use_cases import World, build

START, STOP, LIMIT = (
    ChargeAction.START_CHARGE,
    ChargeAction.STOP_CHARGE,
    ChargeAction.SET_CHARGE_LIMIT,
)
CHARGE = frozenset({TelemetryField.CHARGE})


@pytest.fixture
async def world() -> World:
    """A gateway over fakes with a connected EV (ev-1 on sc-ev, plugged in, not charging,
    80 % limit) and a connected ICE car (ice-1 on sc-1)."""
    world = build()
    await world.connect("ev-1", "sc-ev")
    await world.connect("ice-1", "sc-1", user="owner-2")
    return world


async def send(
    world: World,
    action: CommandAction,
    request_id: str,
    *,
    vehicle_id: str = "ev-1",
    limit: int | None = None,
) -> CommandResult:
    """Run one command through the gateway."""
    return await world.gateway.command(
        vehicle_id, action=action, request_id=request_id, charge_limit_percent=limit
    )


async def charge_of(world: World, *, max_age: timedelta | None = None) -> Charge:
    """The EV's charge as GetTelemetry answers it."""
    answer = await world.gateway.get_telemetry("ev-1", fields=CHARGE, max_age=max_age)
    value = answer.readings[TelemetryField.CHARGE].value
    assert isinstance(value, Charge)
    return value


def stored(world: World, request_id: str) -> CommandState:
    """The stored state of a command."""
    return world.uow.store.commands[request_id].state


async def test_an_ev_reports_its_charge_and_an_ice_car_cannot(world: World) -> None:
    """CHARGE reads an EV's plug, state and limit; an ICE car's is NOT_CAPABLE."""
    assert await charge_of(world) == Charge(
        is_plugged_in=True, state=ChargingState.NOT_CHARGING, limit_percent=80.0
    )
    ice = await world.gateway.get_telemetry("ice-1", fields=CHARGE, max_age=None)
    assert ice.readings[TelemetryField.CHARGE].availability is Availability.NOT_CAPABLE


async def test_start_stop_and_limit_change_the_car_and_what_is_answered(world: World) -> None:
    """Each command succeeds, changes the car, becomes the last command, and a read from
    the cache right after answers what the car was told."""
    await charge_of(world)  # cached: not charging, 80 %
    started = await send(world, START, "c-1")
    assert (started.action, started.state, started.replayed) == (
        START,
        CommandState.SUCCEEDED,
        False,
    )
    car = world.smartcar.cars["sc-ev"]
    assert car.charging
    assert (await charge_of(world)).state is ChargingState.CHARGING
    await send(world, LIMIT, "c-2", limit=90)
    assert car.charge_limit_percent == 90
    assert await charge_of(world) == Charge(
        is_plugged_in=True, state=ChargingState.CHARGING, limit_percent=90
    )
    await send(world, STOP, "c-3")
    assert not car.charging
    assert (await charge_of(world)).state is ChargingState.NOT_CHARGING
    panel = await world.gateway.get_vehicle("ev-1")
    assert panel.vehicle.last_command is not None
    assert (panel.vehicle.last_command.action, panel.vehicle.last_command.request_id) == (
        STOP,
        "c-3",
    )
    assert world.smartcar.calls["command"] == 3


async def test_a_retried_request_id_is_not_sent_twice(world: World) -> None:
    """The same request id answers the first outcome, replayed, without a second command."""
    first = await send(world, LIMIT, "c-1", limit=70)
    again = await send(world, LIMIT, "c-1", limit=70)
    assert again == CommandResult(
        request_id="c-1",
        vehicle_id="ev-1",
        action=LIMIT,
        state=CommandState.SUCCEEDED,
        completed_at=first.completed_at,
        replayed=True,
    )
    assert world.smartcar.calls["command"] == 1


@pytest.mark.parametrize(("action", "limit"), [(LIMIT, 90), (START, None), (LockAction.LOCK, None)])
async def test_a_request_id_is_bound_to_its_command_and_limit(
    world: World, action: CommandAction, limit: int | None
) -> None:
    """A request id used for SET_CHARGE_LIMIT 80 % is refused for another limit or command,
    naming `request_id` and what it was used for."""
    await send(world, LIMIT, "c-1", limit=80)
    with pytest.raises(errors.InvalidArgument) as refused:
        await send(world, action, "c-1", limit=limit)
    [violation] = refused.value.violations
    assert violation.field == "request_id"
    assert "SET_CHARGE_LIMIT 80 %" in violation.description
    assert world.smartcar.calls["command"] == 1


@pytest.mark.parametrize("limit", [None, 49, 101])
async def test_a_limit_smartcar_would_refuse_is_invalid_argument(
    world: World, limit: int | None
) -> None:
    """SET_CHARGE_LIMIT needs a limit of 50-100 %: anything else is INVALID_ARGUMENT naming
    `limit_percent`, before anything is stored or sent."""
    with pytest.raises(errors.InvalidArgument) as refused:
        await send(world, LIMIT, "c-1", limit=limit)
    assert [v.field for v in refused.value.violations] == ["limit_percent"]
    assert "c-1" not in world.uow.store.commands
    assert world.smartcar.calls["command"] == 0


async def test_an_ice_car_cannot_charge_and_the_refusal_is_replayed(world: World) -> None:
    """Smartcar's COMPATIBILITY refusal is FAILED_PRECONDITION (VehicleNotCapable), kept:
    a retry gets it again, marked replayed, with Smartcar's type and code, without a
    second command."""
    with pytest.raises(errors.VehicleNotCapable):
        await send(world, START, "c-1", vehicle_id="ice-1")
    assert stored(world, "c-1") is CommandState.FAILED
    with pytest.raises(errors.VehicleNotCapable) as replayed:
        await send(world, START, "c-1", vehicle_id="ice-1")
    assert replayed.value.metadata["replayed"] == "true"
    assert replayed.value.upstream is not None
    assert (replayed.value.upstream.type, replayed.value.upstream.code) == (
        "COMPATIBILITY",
        "VEHICLE_NOT_CAPABLE",
    )
    assert world.smartcar.calls["command"] == 1


async def test_the_cars_refusal_is_kept_as_failed(world: World) -> None:
    """Starting a car that already charges is 409 CHARGING_IN_PROGRESS at the car: a
    VehicleStateBlocks naming the state, kept FAILED."""
    await send(world, START, "c-1")
    with pytest.raises(errors.VehicleStateBlocks) as refused:
        await send(world, START, "c-2")
    assert refused.value.metadata["vehicle_state"] == "CHARGING_IN_PROGRESS"
    assert stored(world, "c-2") is CommandState.FAILED


async def test_without_control_charge_nothing_is_sent() -> None:
    """An owner who did not grant `control_charge` makes the charge commands
    PermissionMissing before anything is sent (the request id stays free); Lock, which
    needs `control_security`, still works."""
    world = build()
    world.smartcar.cars["sc-ev"].permissions = REQUESTED_PERMISSIONS - {"control_charge"}
    await world.connect("ev-1", "sc-ev")
    with pytest.raises(errors.PermissionMissing) as refused:
        await send(world, STOP, "c-1")
    assert refused.value.metadata["permission"] == "control_charge"
    assert "c-1" not in world.uow.store.commands
    assert world.smartcar.calls["command"] == 0
    locked = await send(world, LockAction.LOCK, "c-2")
    assert locked.state is CommandState.SUCCEEDED


async def test_an_unknown_start_settles_from_the_charge_the_car_reports(world: World) -> None:
    """A StartCharge whose answer was lost is OUTCOME_UNKNOWN (may have succeeded); the
    reconciler reads CHARGE a minute later, sees CHARGING recorded after it was sent, and
    a retry then gets SUCCEEDED."""
    world.smartcar.lose("command", errors.CommandOutcomeUnknown("timed out after sending"))
    with pytest.raises(errors.CommandOutcomeUnknown):
        await send(world, START, "c-1")
    assert stored(world, "c-1") is CommandState.OUTCOME_UNKNOWN
    world.clock.advance(90)
    report = await world.gateway.reconciler.run_once()
    assert (report.asked, report.succeeded) == (1, 1)
    replayed = await send(world, START, "c-1")
    assert (replayed.state, replayed.replayed) == (CommandState.SUCCEEDED, True)
    assert world.smartcar.calls["command"] == 1


async def test_an_unknown_limit_the_car_never_took_settles_as_not_applied(world: World) -> None:
    """A SetChargeLimit that never reached the car: once it cannot be on its way any more,
    the car still reporting its old limit proves it did not happen (CommandNotApplied)."""
    world.smartcar.fail("command", errors.CommandOutcomeUnknown("no answer"))
    with pytest.raises(errors.CommandOutcomeUnknown):
        await send(world, LIMIT, "c-1", limit=95)
    world.clock.advance(6 * 60 + 30)
    report = await world.gateway.reconciler.run_once()
    assert report.failed == 1
    with pytest.raises(errors.CommandNotApplied) as settled:
        await send(world, LIMIT, "c-1", limit=95)
    assert "a charge limit of 80 %" in settled.value.message


# --- what a command does, and what a reading proves (gateway.core.command_effects) ----------

CHARGING = Charge(is_plugged_in=True, state=ChargingState.CHARGING, limit_percent=80)
NOT_CHARGING = Charge(is_plugged_in=True, state=ChargingState.NOT_CHARGING, limit_percent=80)
FULL = Charge(is_plugged_in=True, state=ChargingState.FULLY_CHARGED, limit_percent=80)
NO_LIMIT = Charge(is_plugged_in=True, state=None, limit_percent=None)


@pytest.mark.parametrize(
    ("command", "value", "expected"),
    [
        (Command(action=START), CHARGING, True),
        (Command(action=START), NOT_CHARGING, False),
        (Command(action=START), FULL, None),
        (Command(action=STOP), NOT_CHARGING, True),
        (Command(action=STOP), CHARGING, False),
        (Command(action=STOP), FULL, None),
        (Command(action=STOP), NO_LIMIT, None),
        (Command(action=LIMIT, charge_limit_percent=80), CHARGING, True),
        (Command(action=LIMIT, charge_limit_percent=90), CHARGING, False),
        (Command(action=LIMIT, charge_limit_percent=90), NO_LIMIT, None),
        (Command(action=START), LockStatus(is_locked=True), None),
        (Command(action=LockAction.LOCK), CHARGING, None),
    ],
)
def test_what_a_reading_shows_of_a_command(
    command: Command, value: Charge | LockStatus, expected: bool | None
) -> None:
    """CHARGING or NOT_CHARGING proves a start or stop either way, a limit proves a
    set-limit; FULLY_CHARGED, a missing part, or another field proves nothing."""
    assert shows(command, value) is expected


def test_a_confirmed_command_leaves_the_charge_it_asked_for() -> None:
    """After a start the car is plugged in and charging; after a stop not charging (no
    time to complete); after a set-limit it has that limit; the rest is kept."""
    timed = Charge(
        is_plugged_in=None,
        state=ChargingState.CHARGING,
        limit_percent=80,
        minutes_to_complete=40,
    )
    assert after(Command(action=START), None) == Charge(
        is_plugged_in=True, state=ChargingState.CHARGING, limit_percent=None
    )
    assert after(Command(action=STOP), timed) == Charge(
        is_plugged_in=None, state=ChargingState.NOT_CHARGING, limit_percent=80
    )
    assert after(Command(action=LIMIT, charge_limit_percent=60), timed) == Charge(
        is_plugged_in=None,
        state=ChargingState.CHARGING,
        limit_percent=60,
        minutes_to_complete=40,
    )
    assert effect_field(Command(action=STOP)) is TelemetryField.CHARGE
    assert effect_field(Command(action=LockAction.UNLOCK)) is TelemetryField.LOCK_STATUS


def test_a_limit_goes_with_set_charge_limit_only() -> None:
    """A Command refuses a limit on another action, and a set-limit without one."""
    with pytest.raises(ValueError, match="SET_CHARGE_LIMIT"):
        Command(action=START, charge_limit_percent=80)
    with pytest.raises(ValueError, match="SET_CHARGE_LIMIT"):
        Command(action=LIMIT)
