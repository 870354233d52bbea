"""The request budget on fakes: the reserve kept for commands and rental readings, counting
before sending, per-car allowances, the panel's figures and the 80 % warning."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.core import errors
from gateway.core.assembly import Policies, build_gateway
from gateway.core.budget import (
    BudgetPolicy,
    BudgetTier,
    month_of,
    next_month_start,
    projected_month_total,
)
from gateway.core.metrics import RecordingMetrics
from gateway.core.model import (
    Availability,
    CommandState,
    ConnectionStatus,
    LockAction,
    Telemetry,
    TelemetryField,
    Vehicle,
)
from gateway.core.purpose import ReadPurpose
from gateway.core.scheduler import daily_share
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START
from tests.unit.gateway.fake_smartcar import FakeCar, FakeSmartcar
from tests.unit.gateway.test_use_cases import GENEROUS, World

BUDGET = BudgetPolicy(monthly_allowance=30, fixed_reserve=10, paced=False)
"""The reserve's rules alone: the open part released at once (pacing has its own tests)."""
"""30 a month, the last 10 kept: interactive reads stop at 20."""
CONNECTED = ConnectionStatus.ACTIVE
ODOMETER = frozenset({TelemetryField.ODOMETER})
LOCATION = frozenset({TelemetryField.LOCATION})
CONNECT_COST = 3


def world_with(metrics: RecordingMetrics | None = None, budget: BudgetPolicy = BUDGET) -> World:
    """A gateway over fakes on the small budget above (or `budget`), with one ICE car."""
    clock = ManualClock(START)
    smartcar = FakeSmartcar(clock=clock)
    smartcar.add_car("sc-1", FakeCar(vin="1HGCM82633A004352", locked=False))
    uow = FakeUnitOfWorkFactory()
    policies = Policies(rate_limits=GENEROUS, budget=budget)
    if metrics is None:
        gateway = build_gateway(uow=uow, smartcar=smartcar, clock=clock, policies=policies)
    else:
        gateway = build_gateway(
            uow=uow, smartcar=smartcar, clock=clock, policies=policies, metrics=metrics
        )
    return World(gateway=gateway, smartcar=smartcar, uow=uow, clock=clock)


@pytest.fixture
async def world() -> World:
    """The small-budget gateway with car-1 connected (3 billed requests)."""
    world = world_with()
    await world.connect("car-1", "sc-1")
    return world


def used(world: World) -> int:
    """car-1's billed requests this month, as stored."""
    return world.uow.store.budget.get(("car-1", month_of(world.clock.now())), 0)


async def spend(world: World, requests: int) -> None:
    """Count billed requests for car-1 directly, as if spent earlier this month."""
    async with world.uow() as uow:
        await uow.budget.add("car-1", month_of(world.clock.now()), requests)
        await uow.commit()


async def fresh_read(world: World, fields: frozenset[TelemetryField] = ODOMETER) -> Telemetry:
    """A second later, read `fields` with max_age 0: always ask Smartcar, if allowed."""
    world.clock.advance(1)
    return await world.gateway.get_telemetry("car-1", fields=fields, max_age=timedelta(0))


async def car(world: World) -> Vehicle:
    """car-1 as stored."""
    async with world.uow.reader() as uow:
        found = await uow.vehicles.get("car-1")
    assert found is not None
    return found


# --- the policy -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "allowance", "reserve"),
    [
        (BudgetPolicy(), 500, 50),  # 10 %
        (BudgetPolicy(), 1000, 100),
        (BudgetPolicy(), 101, 20),  # 10 % rounds up to 11, the floor is 20
        (BudgetPolicy(), 30, 15),  # never more than half the allowance
        (BudgetPolicy(), 1, 0),
        (BudgetPolicy(reserve_percent=25), 500, 125),
        (BudgetPolicy(reserve_percent=0), 500, 20),  # a percentage keeps the floor
        (BudgetPolicy(fixed_reserve=40), 500, 40),
        (BudgetPolicy(fixed_reserve=40), 60, 30),
        (BudgetPolicy(fixed_reserve=0), 500, 0),
    ],
)
def test_the_reserve_follows_each_cars_allowance(
    policy: BudgetPolicy, allowance: int, reserve: int
) -> None:
    """10 % rounded up, at least 20, or a fixed number; never more than half."""
    assert policy.reserve_for(allowance) == reserve


def test_each_tier_has_its_cap() -> None:
    """OPEN stops at the reserve, RESERVE at the allowance, UNCAPPED nowhere; the car's own
    allowance replaces the fleet's, and it warns at 80 % rounded up."""
    fleet = BUDGET.limits(Vehicle(id="car-1", status=CONNECTED))
    assert (fleet.allowance, fleet.reserve, fleet.overridden, fleet.warning_at) == (
        30,
        10,
        False,
        24,
    )
    assert [fleet.cap(t) for t in BudgetTier] == [20, 30, None]
    own = BUDGET.limits(Vehicle(id="car-1", status=CONNECTED, request_allowance=501))
    assert (own.allowance, own.reserve, own.overridden, own.warning_at) == (501, 10, True, 401)


@pytest.mark.parametrize(
    ("at", "month", "resets_at"),
    [
        (
            datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            "2026-12",
            datetime(2027, 1, 1, tzinfo=UTC),
        ),
        (datetime(2028, 2, 29, 12, tzinfo=UTC), "2028-02", datetime(2028, 3, 1, tzinfo=UTC)),
        # 23:30 on June 30th two hours west of UTC is already July in UTC.
        (
            datetime(2026, 6, 30, 23, 30, tzinfo=timezone(timedelta(hours=-2))),
            "2026-07",
            datetime(2026, 8, 1, tzinfo=UTC),
        ),
    ],
)
def test_months_are_calendar_months_in_utc(at: datetime, month: str, resets_at: datetime) -> None:
    """The billing month and its end, at the last instant of a year, a leap day, and an
    instant given in another time zone."""
    assert (month_of(at), next_month_start(at)) == (month, resets_at)


@pytest.mark.parametrize(
    ("used", "at", "projected"),
    [
        (100, datetime(2026, 3, 10, 12, 0, tzinfo=UTC), 310),  # 100 over 10 days of 31
        (100, datetime(2026, 3, 10, 0, 0, tzinfo=UTC), 310),  # today counts whole at 00:00
        (15, datetime(2026, 2, 1, 0, 5, tzinfo=UTC), 420),  # day 1 of a 28-day February
        (1, datetime(2026, 4, 30, 23, 59, tzinfo=UTC), 1),  # the last day: what is used
        (7, datetime(2026, 3, 3, 0, 0, tzinfo=UTC), 73),  # 7 * 31 / 3 = 72.3, rounded up
        (0, datetime(2026, 3, 10, 12, 0, tzinfo=UTC), 0),
        # 23:30 on the 9th in UTC-2 is the 10th in UTC: billing months are UTC's
        (100, datetime(2026, 3, 9, 23, 30, tzinfo=timezone(timedelta(hours=-2))), 310),
    ],
)
def test_a_months_projection_is_its_pace_per_day_begun_times_its_days(
    used: int, at: datetime, projected: int
) -> None:
    """The projected month total is the usage over the UTC days begun, times the month's days."""
    assert projected_month_total(used, at) == projected


async def test_a_spend_reports_the_month_its_pace_projects() -> None:
    """On 10 March a charge bringing the month to 10 reports 31 projected (10 / 10 * 31)."""
    metrics = RecordingMetrics()
    world = world_with(metrics)
    await world.connect("car-1", "sc-1")
    await spend(world, 9 - CONNECT_COST)
    vehicle = await car(world)
    await world.gateway.ledger.charge(vehicle, 1, tier=BudgetTier.UNCAPPED, at=START)
    assert metrics.spends[-1] == (1, 10, 30)
    assert metrics.projections[-1] == 31


def test_polls_never_take_more_than_the_budget_leaves_them() -> None:
    """The scheduler's share stops at its own reserve share or the budget's reserve,
    whichever keeps more."""
    now = datetime(2026, 11, 30, 12, tzinfo=UTC)
    assert daily_share(used=0, spent_today=0, allowance=500, reserve=0.3, now=now, kept=50) == 350
    assert daily_share(used=0, spent_today=0, allowance=500, reserve=0.0, now=now, kept=50) == 450
    assert daily_share(used=440, spent_today=0, allowance=500, reserve=0.0, now=now, kept=50) == 10


# --- interactive reads stop at the reserve --------------------------------------------------


async def test_an_interactive_caller_polling_fresh_reads_cannot_spend_the_reserve(
    world: World,
) -> None:
    """Reads with max_age 0 ask Smartcar until the month reaches allowance less reserve;
    after that they get the last value with its age, marked REQUEST_BUDGET_RESERVED, and
    Lock still goes through on the reserve."""
    answers = [await fresh_read(world) for _ in range(25)]
    assert world.smartcar.calls["read"] == 20 - CONNECT_COST
    assert used(world) == 20
    last_fetched = answers[16].readings[TelemetryField.ODOMETER]
    assert last_fetched.availability is Availability.AVAILABLE
    refused = answers[-1].readings[TelemetryField.ODOMETER]
    assert answers[-1].from_cache
    assert refused.availability is Availability.UNAVAILABLE
    assert refused.reason == "REQUEST_BUDGET_RESERVED"
    assert refused.value == last_fetched.value
    assert refused.fetched_at == last_fetched.fetched_at  # its age shows
    result = await world.gateway.command("car-1", action=LockAction.LOCK, request_id="l-1")
    assert result.state is CommandState.SUCCEEDED
    assert used(world) == 21


async def test_past_the_reserve_a_field_never_read_is_resource_exhausted_until_next_month(
    world: World,
) -> None:
    """With nothing held to answer from, the refusal itself: RequestBudgetReserved (a
    RESOURCE_EXHAUSTED) naming the budget's figures, retry when the month turns."""
    await spend(world, 20 - CONNECT_COST)
    reads = world.smartcar.calls["read"]
    with pytest.raises(errors.RequestBudgetReserved) as refused:
        await fresh_read(world, LOCATION)
    assert world.smartcar.calls["read"] == reads
    now = world.clock.now()
    assert refused.value.retry_after_s == (next_month_start(now) - now).total_seconds()
    assert refused.value.metadata == {
        "limit": "request_budget",
        "vehicle_id": "car-1",
        "month": month_of(now),
        "requests_this_month": "20",
        "monthly_request_allowance": "30",
        "request_reserve": "10",
        "resets_at": next_month_start(now).isoformat(),
    }


async def test_a_batch_that_would_cut_into_the_reserve_is_refused_whole(world: World) -> None:
    """Two requests left above the reserve: a three-field read asks nothing; a one-field
    read still goes."""
    await spend(world, 18 - CONNECT_COST)
    three = frozenset({TelemetryField.ODOMETER, TelemetryField.LOCATION, TelemetryField.FUEL})
    with pytest.raises(errors.RequestBudgetReserved):
        await fresh_read(world, three)
    assert used(world) == 18
    answer = await fresh_read(world)
    assert answer.readings[TelemetryField.ODOMETER].availability is Availability.AVAILABLE
    assert used(world) == 19


async def test_a_new_month_opens_the_budget_again(world: World) -> None:
    """Refused at the end of a month, the same read asks Smartcar on the first of the next."""
    await spend(world, 20 - CONNECT_COST)
    with pytest.raises(errors.RequestBudgetReserved) as refused:
        await fresh_read(world, LOCATION)
    world.clock.advance(refused.value.retry_after_s or 0)
    answer = await fresh_read(world, LOCATION)
    assert not answer.from_cache
    assert used(world) == 1


async def test_scheduled_polls_are_held_to_the_reserve_too(world: World) -> None:
    """A poll that would cut into the reserve asks nothing, whatever the scheduler thought."""
    await spend(world, 20 - CONNECT_COST)
    reads = world.smartcar.calls["read"]
    with pytest.raises(errors.RequestBudgetReserved):
        await world.gateway.telemetry.get(
            "car-1", fields=LOCATION, max_age=timedelta(0), purpose=ReadPurpose.SCHEDULED
        )
    assert world.smartcar.calls["read"] == reads


# --- what may spend the reserve -------------------------------------------------------------


async def test_rental_readings_spend_the_reserve_but_not_past_the_allowance(
    world: World,
) -> None:
    """A RENTAL read asks Smartcar where an interactive one may not; at the allowance it is
    answered from what is held, marked REQUEST_ALLOWANCE_EXHAUSTED."""
    await fresh_read(world)
    await spend(world, 25 - used(world))
    world.clock.advance(1)
    answer = await world.gateway.telemetry.get(
        "car-1", fields=ODOMETER, max_age=timedelta(0), purpose=ReadPurpose.RENTAL
    )
    assert not answer.from_cache
    assert used(world) == 26
    await spend(world, 4)
    reads = world.smartcar.calls["read"]
    world.clock.advance(1)
    answer = await world.gateway.telemetry.get(
        "car-1", fields=ODOMETER, max_age=timedelta(0), purpose=ReadPurpose.RENTAL
    )
    reading = answer.readings[TelemetryField.ODOMETER]
    assert (reading.availability, reading.reason) == (
        Availability.UNAVAILABLE,
        "REQUEST_ALLOWANCE_EXHAUSTED",
    )
    assert reading.value is not None
    assert world.smartcar.calls["read"] == reads
    assert used(world) == 30


async def test_commands_are_never_refused_by_the_gateways_own_count(world: World) -> None:
    """At and past the allowance the gateway still sends Lock: its count is an upper bound,
    and Smartcar decides (a 430 would say the car is over its plan)."""
    await spend(world, 30 - CONNECT_COST)
    for n in range(2):
        result = await world.gateway.command("car-1", action=LockAction.LOCK, request_id=f"l-{n}")
        assert result.state is CommandState.SUCCEEDED
    assert world.smartcar.calls["command"] == 2
    assert used(world) == 32


async def test_every_request_is_counted_before_it_is_sent(world: World) -> None:
    """While a command and a read are on their way to Smartcar, they are counted already."""
    world.smartcar.gate = asyncio.Event()
    arrived = world.smartcar.arrival("command")
    lock = asyncio.create_task(
        world.gateway.command("car-1", action=LockAction.LOCK, request_id="l-1")
    )
    await arrived.wait()
    assert used(world) == CONNECT_COST + 1
    arrived = world.smartcar.arrival("read")
    read = asyncio.create_task(fresh_read(world, ODOMETER | LOCATION))
    await arrived.wait()
    assert used(world) == CONNECT_COST + 3
    world.smartcar.gate.set()
    await asyncio.gather(lock, read)
    assert used(world) == CONNECT_COST + 3


async def test_an_attempt_that_fails_still_counts(world: World) -> None:
    """A read Smartcar fails is counted: it may have been billed."""
    world.smartcar.fail("read", errors.UpstreamUnavailable("502"))
    with pytest.raises(errors.UpstreamUnavailable):
        await fresh_read(world)
    assert used(world) == CONNECT_COST + 1


# --- per-car allowances and the panel -------------------------------------------------------


async def test_the_panel_shows_spent_allowance_reserve_and_when_the_month_turns(
    world: World,
) -> None:
    """GetVehicle and ListVehicles show the month's count, the car's allowance, its reserve,
    whose allowance it is, and the first of next month."""
    await fresh_read(world)
    panel = await world.gateway.get_vehicle("car-1")
    figures = (
        panel.requests_this_month,
        panel.monthly_request_allowance,
        panel.request_reserve,
        panel.request_allowance_overridden,
        panel.request_budget_resets_at,
    )
    assert figures == (4, 30, 10, False, next_month_start(world.clock.now()))
    page = await world.gateway.list_vehicles(status=None, page_size=0, page_token="")
    assert page.panels == (panel,)


async def test_a_cars_own_allowance_replaces_the_fleets_until_unset(world: World) -> None:
    """SetRequestAllowance gives the car room the fleet's allowance did not; unsetting it
    (None) goes back to the fleet's; the month's count is kept throughout."""
    await spend(world, 20 - CONNECT_COST)
    with pytest.raises(errors.RequestBudgetReserved):
        await fresh_read(world)
    panel = await world.gateway.set_request_allowance("car-1", monthly_allowance=100)
    assert (panel.monthly_request_allowance, panel.request_reserve) == (100, 10)
    assert panel.request_allowance_overridden
    assert (await car(world)).request_allowance == 100
    answer = await fresh_read(world)
    assert not answer.from_cache
    panel = await world.gateway.set_request_allowance("car-1", monthly_allowance=None)
    assert (panel.monthly_request_allowance, panel.request_allowance_overridden) == (30, False)
    assert panel.requests_this_month == 21
    answer = await fresh_read(world)
    assert answer.readings[TelemetryField.ODOMETER].reason == "REQUEST_BUDGET_RESERVED"


async def test_lowering_a_cars_allowance_below_its_count_stops_reads_at_once(
    world: World,
) -> None:
    """A car given 8 a month (4 kept) after using 4: its reads are answered from what is
    held."""
    await fresh_read(world)
    await world.gateway.set_request_allowance("car-1", monthly_allowance=8)
    answer = await fresh_read(world)
    assert answer.readings[TelemetryField.ODOMETER].reason == "REQUEST_BUDGET_RESERVED"
    assert used(world) == 4


async def test_a_cars_own_allowance_survives_other_writes_to_the_car(world: World) -> None:
    """A command, a read and a disconnect rewrite the vehicle; its own allowance stays."""
    await world.gateway.set_request_allowance("car-1", monthly_allowance=750)
    await fresh_read(world)
    await world.gateway.command("car-1", action=LockAction.LOCK, request_id="l-1")
    await world.gateway.disconnect("car-1")
    assert (await car(world)).request_allowance == 750


async def test_the_allowance_of_an_unknown_car_cannot_be_set(world: World) -> None:
    """SetRequestAllowance of a vehicle the gateway does not know is VehicleNotFound."""
    with pytest.raises(errors.VehicleNotFound):
        await world.gateway.set_request_allowance("ghost", monthly_allowance=10)


async def test_the_scheduler_polls_within_a_cars_own_allowance(world: World) -> None:
    """A car whose month is past the fleet's poll share is polled once its own allowance
    leaves room."""
    await spend(world, 20 - CONNECT_COST)
    world.clock.advance(86400)
    assert (await world.gateway.scheduler.tick()).skipped_budget == 1
    await world.gateway.set_request_allowance("car-1", monthly_allowance=3000)
    report = await world.gateway.scheduler.tick()
    assert (report.skipped_budget, report.polls) == (0, 1)


# --- the 80 % warning -----------------------------------------------------------------------


async def test_a_car_passing_80_percent_is_reported_once_a_month(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The charge that brings the month to 24 of 30 returns the warning, counts it and logs
    one line; later charges do not; the next month warns again."""
    metrics = RecordingMetrics()
    world = world_with(metrics)
    await world.connect("car-1", "sc-1")
    await spend(world, 23 - CONNECT_COST)
    ledger = world.gateway.ledger
    vehicle = await car(world)
    with caplog.at_level(logging.WARNING, logger="gateway.core.budget"):
        warning = await ledger.charge(vehicle, 1, tier=BudgetTier.UNCAPPED, at=world.clock.now())
        again = await ledger.charge(vehicle, 1, tier=BudgetTier.UNCAPPED, at=world.clock.now())
    assert warning is not None
    assert (warning.vehicle_id, warning.requests_this_month, warning.monthly_allowance) == (
        "car-1",
        24,
        30,
    )
    assert again is None
    assert metrics.budget_warnings == 1
    lines = [r for r in caplog.records if getattr(r, "event", None) == "budget_warning"]
    assert len(lines) == 1
    assert lines[0].__dict__["vehicle"] == "car-1"
    world.clock.advance((next_month_start(world.clock.now()) - world.clock.now()).total_seconds())
    await spend(world, 23)
    assert await ledger.charge(vehicle, 1, tier=BudgetTier.UNCAPPED, at=world.clock.now())
    assert metrics.budget_warnings == 2


async def test_a_command_crossing_80_percent_raises_the_metric() -> None:
    """The warning comes from whatever spends: here a Lock through the upstream path; reads
    the budget refuses are counted by purpose."""
    metrics = RecordingMetrics()
    world = world_with(metrics)
    await world.connect("car-1", "sc-1")
    await spend(world, 23 - CONNECT_COST)
    await world.gateway.command("car-1", action=LockAction.LOCK, request_id="l-1")
    assert metrics.budget_warnings == 1
    with pytest.raises(errors.RequestBudgetReserved):  # 24 > 20, and nothing held
        await fresh_read(world)
    assert metrics.budget_refusals == ["interactive"]


def test_paced_the_open_part_is_released_day_by_day() -> None:
    """Paced, OPEN may bring the month to ceil(open part x day / days in month): of 450,
    15 on 1 May, 218 on 15 May, 450 on 31 May; 16 on 1 February 2028 (29 days)."""
    policy = BudgetPolicy()
    limits = policy.limits(Vehicle(id="car-1", status=ConnectionStatus.ACTIVE))
    may = [policy.open_cap(limits, datetime(2026, 5, day, 23, tzinfo=UTC)) for day in (1, 15, 31)]
    assert may == [15, 218, 450]
    assert policy.open_cap(limits, datetime(2028, 2, 1, tzinfo=UTC)) == 16
    assert policy.open_cap(limits, datetime(2028, 2, 29, 23, 59, tzinfo=UTC)) == 450
    unpaced = BudgetPolicy(paced=False)
    assert unpaced.open_cap(limits, datetime(2026, 5, 1, tzinfo=UTC)) == 450


async def test_a_read_past_todays_share_is_refused_until_tomorrow_and_commands_go_on() -> None:
    """Paced, a caller reading fresh all day gets today's share, then the last values
    (REQUEST_BUDGET_RESERVED, retry at 00:00 UTC tomorrow); the reserve tier and commands
    are not held to the pace; the next day releases the next share."""
    paced = BudgetPolicy(monthly_allowance=30, fixed_reserve=10)
    world = world_with(budget=paced)
    await world.connect("car-1", "sc-1")
    for _ in range(40):
        await fresh_read(world)
    today = paced.open_cap(paced.limits(await car(world)), world.clock.now())
    assert CONNECT_COST < today < 20
    assert used(world) == today
    with pytest.raises(errors.RequestBudgetReserved) as refused:
        await world.gateway.get_telemetry(
            "car-1", fields=frozenset({TelemetryField.LOCATION}), max_age=timedelta(0)
        )
    now = world.clock.now()
    tomorrow = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
    assert refused.value.retry_after_s == (tomorrow - now).total_seconds()
    assert "today's share" in refused.value.message
    result = await world.gateway.command("car-1", action=LockAction.LOCK, request_id="l-1")
    assert result.state is CommandState.SUCCEEDED
    # 20 open requests over 31 days: the share grows by one every day or two, and the
    # Lock counted one; by the 13th (9) there is room again.
    world.clock.advance((refused.value.retry_after_s or 0) + 2 * 86_400)
    assert paced.open_cap(paced.limits(await car(world)), world.clock.now()) > used(world)
    answer = await fresh_read(world)
    assert answer.readings[TelemetryField.ODOMETER].availability is Availability.AVAILABLE
