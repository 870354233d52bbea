"""Moving v2 connections to Smartcar API V3 on fakes (gateway.core.migration)."""

from __future__ import annotations

from gateway.core.assembly import Policies, build_gateway
from gateway.core.errors import UpstreamUnavailable
from gateway.core.migration import REVIVED, FleetMigration, Outcome
from gateway.core.model import ConnectionStatus, SmartcarApi, TelemetryField
from gateway.core.status import set_grant_status
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START
from tests.unit.gateway.fake_smartcar import FakeCar, FakeSmartcar
from tests.unit.gateway.test_connect_v3 import FakeApplicationTokens, RecordingSubscriptions
from tests.unit.gateway.test_use_cases import GENEROUS, World


async def v2_fleet() -> tuple[World, FakeApplicationTokens, FleetMigration]:
    """Three cars connected on v2 (two owners); at Smartcar, owner-1's two cars and none of
    owner-2's are listed as V3 connections."""
    clock = ManualClock(START)
    smartcar = FakeSmartcar(clock=clock)
    for n in (1, 2, 3):
        smartcar.add_car(f"sc-{n}", FakeCar(vin=f"1HGCM82633A00435{n}"))
    tokens = FakeApplicationTokens(smartcar)
    uow = FakeUnitOfWorkFactory()
    gateway = build_gateway(
        uow=uow,
        smartcar=smartcar,
        clock=clock,
        policies=Policies(rate_limits=GENEROUS),
        application_tokens=tokens,
    )
    world = World(gateway=gateway, smartcar=smartcar, uow=uow, clock=clock)
    await world.connect("car-1", "sc-1", user="owner-1")
    await world.connect("car-2", "sc-2", user="owner-1")
    await world.connect("car-3", "sc-3", user="owner-2")
    smartcar.v3_users["owner-1"] = ["sc-1", "sc-2"]
    migration = FleetMigration(uow=uow, smartcar=smartcar, application=tokens, clock=clock)
    return world, tokens, migration


async def test_cars_with_a_v3_connection_move_and_their_pairs_are_erased() -> None:
    """owner-1's cars move to V3 (status kept, grant detached, the pair erased); owner-2's
    car, with no V3 connection, stays on v2 untouched; both owners' listings cost one call
    each."""
    world, _, migration = await v2_fleet()
    report = await migration.run(batch_size=2)
    assert [(o.vehicle_id, o.outcome) for o in report.outcomes] == [
        ("car-1", Outcome.MIGRATED),
        ("car-2", Outcome.MIGRATED),
        ("car-3", Outcome.SKIPPED),
    ]
    assert "owner-2 has no V3 connection" in (report.outcomes[2].reason or "")
    vehicles = world.uow.store.vehicles
    for moved in ("car-1", "car-2"):
        assert (vehicles[moved].api, vehicles[moved].grant_id) == (SmartcarApi.V3, None)
        assert vehicles[moved].status is ConnectionStatus.ACTIVE
        assert vehicles[moved].smartcar_user_id == "owner-1"
    assert vehicles["car-3"].api is SmartcarApi.V2
    assert [g.smartcar_user_id for g in world.uow.store.grants.values()] == ["owner-2"]
    assert world.smartcar.calls["vehicle_ids"] == 3 + 2  # three v2 Connects, two listings
    assert world.smartcar.calls["disconnect"] == 0


async def test_a_moved_car_is_served_through_v3_at_once() -> None:
    """After the move the next read of a car carries the application token."""
    world, _, migration = await v2_fleet()
    await migration.run()
    world.smartcar.revoke_all_tokens()  # v2 owner tokens no longer work: only V3 can answer
    odometer = frozenset({TelemetryField.ODOMETER})
    telemetry = await world.gateway.get_telemetry("car-1", fields=odometer, max_age=None)
    assert telemetry.readings[TelemetryField.ODOMETER].value is not None


async def test_a_dry_run_checks_everything_and_writes_nothing() -> None:
    """A dry run reports what would move and leaves every connection as it was."""
    world, _, migration = await v2_fleet()
    before = dict(world.uow.store.vehicles)
    report = await migration.run(dry_run=True)
    assert report.counts()["would_migrate"] == 2
    assert report.counts()["skipped"] == 1
    assert world.uow.store.vehicles == before


async def test_a_stopped_run_resumes_after_its_last_vehicle_and_a_rerun_changes_nothing() -> None:
    """`limit` stops a run; the next starts after its last vehicle; running again only
    finds cars already on V3."""
    _, _, migration = await v2_fleet()
    first = await migration.run(limit=1)
    assert [o.vehicle_id for o in first.outcomes] == ["car-1"]
    rest = await migration.run(after_id=first.last_vehicle_id)
    assert [o.vehicle_id for o in rest.outcomes] == ["car-2", "car-3"]
    again = await migration.run()
    assert again.counts()["already_v3"] == 2
    assert again.counts()["migrated"] == 0


async def test_cars_without_a_connection_stay_where_they_are() -> None:
    """A DISCONNECTED car has no connection to move: skipped, with the reason."""
    world, _, migration = await v2_fleet()
    await world.gateway.disconnect("car-2")
    report = await migration.run()
    by_id = {o.vehicle_id: o for o in report.outcomes}
    assert by_id["car-2"].outcome is Outcome.SKIPPED
    assert "DISCONNECTED" in (by_id["car-2"].reason or "")
    assert world.uow.store.vehicles["car-2"].api is SmartcarApi.V2


async def expire(world: World, vehicle_id: str) -> None:
    """Put the car's connection in EXPIRED with its pair dropped, as the rotator does."""
    async with world.uow() as uow:
        vehicle = world.uow.store.vehicles[vehicle_id]
        assert vehicle.grant_id is not None
        await set_grant_status(
            uow,
            vehicle.grant_id,
            ConnectionStatus.EXPIRED,
            reason="refresh token expired",
            now=world.clock.now(),
        )
        await uow.commit()


async def test_an_expired_car_smartcar_still_lists_moves_and_is_active_again() -> None:
    """A v2 car whose token pair expired, but whose connection Smartcar still lists for its
    owner, moves to V3 and is ACTIVE again, the change recorded with its reason; an expired
    car Smartcar no longer lists stays EXPIRED."""
    world, _, migration = await v2_fleet()
    await expire(world, "car-2")
    await expire(world, "car-3")
    report = await migration.run()
    by_id = {o.vehicle_id: o for o in report.outcomes}
    assert by_id["car-2"].outcome is Outcome.MIGRATED
    assert by_id["car-2"].reason == REVIVED
    revived = world.uow.store.vehicles["car-2"]
    assert (revived.status, revived.api, revived.status_reason) == (
        ConnectionStatus.ACTIVE,
        SmartcarApi.V3,
        REVIVED,
    )
    transitions = [
        (t.from_status, t.to_status)
        for t in world.uow.store.transitions.values()
        if t.vehicle_id == "car-2"
    ]
    assert transitions[-1] == (ConnectionStatus.EXPIRED, ConnectionStatus.ACTIVE)
    assert by_id["car-3"].outcome is Outcome.SKIPPED
    assert world.uow.store.vehicles["car-3"].status is ConnectionStatus.EXPIRED
    odometer = frozenset({TelemetryField.ODOMETER})
    telemetry = await world.gateway.get_telemetry("car-2", fields=odometer, max_age=None)
    assert telemetry.readings[TelemetryField.ODOMETER].value is not None


async def test_a_refused_application_token_is_replaced_once() -> None:
    """Smartcar refusing the application token mid-run costs one new token, no failure."""
    world, tokens, migration = await v2_fleet()
    world.smartcar.application_tokens.clear()
    report = await migration.run()
    assert report.counts()["migrated"] == 2
    assert tokens.grants == 2


async def test_moved_cars_are_subscribed_to_the_webhook_and_a_refusal_is_noted() -> None:
    """With a webhook configured each moved car is subscribed; a refused subscription
    leaves the car moved, with the refusal in its outcome."""
    world, tokens, _ = await v2_fleet()
    made = RecordingSubscriptions()
    migration = FleetMigration(
        uow=world.uow,
        smartcar=world.smartcar,
        application=tokens,
        clock=world.clock,
        subscriptions=made,
    )
    report = await migration.run(limit=1)
    assert made.made == [("owner-1", "sc-1")]
    made.failure = UpstreamUnavailable("management API down")
    rest = await migration.run(after_id=report.last_vehicle_id, limit=1)
    [outcome] = rest.outcomes
    assert outcome.outcome is Outcome.MIGRATED
    assert "not subscribed to the webhook" in (outcome.reason or "")
    assert world.uow.store.vehicles["car-2"].api is SmartcarApi.V3
