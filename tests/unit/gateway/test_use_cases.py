"""The gateway's use cases on fakes: in-memory storage, a scripted Smartcar, a manual clock."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from gateway.core import errors
from gateway.core.assembly import Policies, build_gateway
from gateway.core.cache import TelemetryCache
from gateway.core.facade import Gateway
from gateway.core.model import (
    Availability,
    CommandState,
    ConnectionStatus,
    LockAction,
    TelemetryField,
    UpstreamFailure,
)
from gateway.core.paging import PageTokens
from gateway.core.ratelimit import BucketSpec, RateLimits
from gateway.edge.clock import ManualClock
from tests.fakes import FakeSharedTelemetry, FakeUnitOfWorkFactory
from tests.instants import START
from tests.unit.gateway.fake_smartcar import FakeCar, FakeSmartcar
from tests.unit.gateway.test_paging import FORGED_PAGE_TOKENS

GENEROUS = RateLimits(
    vehicle_reads=BucketSpec(capacity=100, refill_per_s=1.0),
    vehicle_commands=BucketSpec(capacity=100, refill_per_s=1.0),
    application=BucketSpec(capacity=1000, refill_per_s=10.0),
)


@dataclass
class World:
    """A gateway over fakes, with handles on each fake."""

    gateway: Gateway
    smartcar: FakeSmartcar
    uow: FakeUnitOfWorkFactory
    clock: ManualClock

    async def connect(self, vehicle_id: str, smartcar_id: str, *, user: str = "owner-1") -> None:
        """Connect a fleet vehicle to a fake car through GetConnectUrl and Connect."""
        url = await self.gateway.get_connect_url(vehicle_id)
        code = self.smartcar.issue_code(user, [smartcar_id])
        await self.gateway.connect(vehicle_id, code=code, state=url.state)


def build(policies: Policies | None = None) -> World:
    """Return a gateway over fresh fakes with two ICE cars and one EV."""
    clock = ManualClock(START)
    smartcar = FakeSmartcar(clock=clock)
    smartcar.add_car("sc-1", FakeCar(vin="1HGCM82633A004352"))
    smartcar.add_car("sc-2", FakeCar(vin="1HGCM82633A004353"))
    smartcar.add_car("sc-ev", FakeCar(vin="5YJ3E1EA7KF000001", electric=True))
    uow = FakeUnitOfWorkFactory()
    gateway = build_gateway(
        uow=uow, smartcar=smartcar, clock=clock, policies=policies or Policies(rate_limits=GENEROUS)
    )
    return World(gateway=gateway, smartcar=smartcar, uow=uow, clock=clock)


def gateway_over(world: World, **options: Any) -> Gateway:
    """Another gateway on the same fakes as `world` (another replica, or one with extra
    ports such as metrics or shared telemetry)."""
    return build_gateway(
        uow=world.uow,
        smartcar=world.smartcar,
        clock=world.clock,
        policies=Policies(rate_limits=GENEROUS),
        **options,
    )


@pytest.fixture
def world() -> World:
    """A fresh gateway over fakes."""
    return build()


async def test_connect_links_the_car_and_reports_the_panel(world: World) -> None:
    """Connect stores one grant, reads identity and permissions, and turns the vehicle ACTIVE."""
    await world.connect("car-1", "sc-1")
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.ACTIVE
    assert panel.vehicle.vin == "1HGCM82633A004352"
    assert panel.vehicle.smartcar_vehicle_id == "sc-1"
    assert panel.missing_permissions == frozenset()
    assert len(world.uow.store.grants) == 1


async def test_a_connect_state_is_single_use_and_bound_to_its_vehicle(world: World) -> None:
    """A state works once, only for the vehicle it was issued for."""
    url = await world.gateway.get_connect_url("car-1")
    code = world.smartcar.issue_code("owner-1", ["sc-1"])
    with pytest.raises(errors.InvalidArgument) as other:
        await world.gateway.connect("car-2", code=code, state=url.state)
    assert other.value.violations[0].field == "state"
    with pytest.raises(errors.InvalidArgument) as reused:
        await world.gateway.connect("car-1", code=code, state=url.state)
    assert reused.value.violations[0].field == "state"


async def test_a_rejected_code_names_the_code_field(world: World) -> None:
    """A code Smartcar refuses is INVALID_ARGUMENT on `code`."""
    url = await world.gateway.get_connect_url("car-1")
    with pytest.raises(errors.InvalidArgument) as bad:
        await world.gateway.connect("car-1", code="never-issued", state=url.state)
    assert bad.value.violations[0].field == "code"


async def test_telemetry_is_served_from_cache_within_max_age(world: World) -> None:
    """The first read asks Smartcar once; a second within max_age asks nobody."""
    await world.connect("car-1", "sc-1")
    fields = frozenset({TelemetryField.ODOMETER, TelemetryField.LOCK_STATUS})
    first = await world.gateway.get_telemetry("car-1", fields=fields, max_age=timedelta(minutes=1))
    assert not first.from_cache
    world.clock.advance(30)
    second = await world.gateway.get_telemetry("car-1", fields=fields, max_age=timedelta(minutes=1))
    assert second.from_cache
    assert world.smartcar.calls["read"] == 1
    assert second.readings[TelemetryField.ODOMETER].availability is Availability.AVAILABLE


async def test_a_refresh_asks_only_for_the_stale_fields(world: World) -> None:
    """With odometer cached, asking for odometer and lock status batches only lock status."""
    await world.connect("car-1", "sc-1")
    odometer = frozenset({TelemetryField.ODOMETER})
    await world.gateway.get_telemetry("car-1", fields=odometer, max_age=None)
    asked: list[frozenset[TelemetryField]] = []
    original = world.smartcar.read

    async def spy(token, smartcar_id, fields):  # type: ignore[no-untyped-def]
        asked.append(fields)
        return await original(token, smartcar_id, fields)

    world.smartcar.read = spy  # type: ignore[method-assign]
    both = odometer | {TelemetryField.LOCK_STATUS}
    await world.gateway.get_telemetry("car-1", fields=both, max_age=None)
    assert asked == [frozenset({TelemetryField.LOCK_STATUS})]


async def test_an_ev_marks_fuel_not_capable_and_still_returns_the_rest(world: World) -> None:
    """Fuel on an EV is NOT_CAPABLE; battery and odometer still come back."""
    await world.connect("ev-1", "sc-ev")
    wanted = frozenset({TelemetryField.FUEL, TelemetryField.BATTERY, TelemetryField.ODOMETER})
    telemetry = await world.gateway.get_telemetry("ev-1", fields=wanted, max_age=None)
    assert telemetry.readings[TelemetryField.FUEL].availability is Availability.NOT_CAPABLE
    assert telemetry.readings[TelemetryField.BATTERY].availability is Availability.AVAILABLE
    assert telemetry.readings[TelemetryField.ODOMETER].value is not None


async def test_concurrent_reads_on_an_expired_token_refresh_once_and_batch_once(
    world: World,
) -> None:
    """200 concurrent reads at expiry: one refresh, one batch, everyone answered."""
    await world.connect("car-1", "sc-1")
    world.clock.advance(3 * 3600)
    world.smartcar.gate = asyncio.Event()
    reads = [
        world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=timedelta(0))
        for _ in range(200)
    ]
    pending = asyncio.gather(*reads)
    await asyncio.sleep(0)
    world.smartcar.gate.set()
    answers = await pending
    assert len(answers) == 200
    assert world.smartcar.calls["refresh"] == 1
    assert world.smartcar.calls["read"] == 1


async def test_two_cars_of_one_owner_share_one_refresh(world: World) -> None:
    """Cars on one grant, read concurrently at expiry, cause exactly one refresh."""
    url = await world.gateway.get_connect_url("car-1", vin="1HGCM82633A004352")
    code = world.smartcar.issue_code("owner-1", ["sc-1"])
    await world.gateway.connect("car-1", code=code, state=url.state)
    url = await world.gateway.get_connect_url("car-2")
    code = world.smartcar.issue_code("owner-1", ["sc-1", "sc-2"])
    await world.gateway.connect("car-2", code=code, state=url.state)
    assert len(world.uow.store.grants) == 1
    world.clock.advance(3 * 3600)
    await asyncio.gather(
        world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=timedelta(0)),
        world.gateway.get_telemetry("car-2", fields=frozenset(), max_age=timedelta(0)),
    )
    assert world.smartcar.calls["refresh"] == 1


async def test_a_401_refreshes_once_and_retries_once(world: World) -> None:
    """Smartcar's 401 on a read causes one refresh and one retry, which succeeds."""
    from gateway.core.ports import TokenRejected

    await world.connect("car-1", "sc-1")
    world.smartcar.fail("read", TokenRejected())
    telemetry = await world.gateway.get_telemetry(
        "car-1", fields=frozenset({TelemetryField.ODOMETER}), max_age=None
    )
    assert telemetry.readings[TelemetryField.ODOMETER].availability is Availability.AVAILABLE
    assert (world.smartcar.calls["refresh"], world.smartcar.calls["read"]) == (1, 2)


async def test_a_revoked_pair_whose_refresh_fails_is_expired(world: World) -> None:
    """401, then invalid_grant on the one refresh: EXPIRED (only invalid_grant does that)."""
    await world.connect("car-1", "sc-1")
    world.smartcar.revoke_all_tokens()
    with pytest.raises(errors.ConnectionExpired):
        await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=None)
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.EXPIRED
    assert world.smartcar.calls["read"] == 1
    assert world.uow.store.grants == {}


async def test_a_401_that_survives_a_fresh_token_means_disconnected(world: World) -> None:
    """401 again right after a successful refresh is revocation: DISCONNECTED, no loop."""
    from gateway.core.ports import TokenRejected

    await world.connect("car-1", "sc-1")
    world.smartcar.fail("read", TokenRejected(), TokenRejected())
    with pytest.raises(errors.ConnectionDisconnected):
        await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=None)
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.DISCONNECTED
    assert (world.smartcar.calls["refresh"], world.smartcar.calls["read"]) == (1, 2)


async def test_invalid_grant_marks_every_car_on_the_pair_expired(world: World) -> None:
    """A refresh rejected with invalid_grant turns the vehicles EXPIRED and erases the pair."""
    from gateway.core.ports import RefreshRejected

    await world.connect("car-1", "sc-1")
    world.clock.advance(3 * 3600)
    world.smartcar.fail("refresh", RefreshRejected())
    with pytest.raises(errors.ConnectionExpired):
        await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=None)
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.EXPIRED
    assert "invalid_grant" in (panel.vehicle.status_reason or "")
    with pytest.raises(errors.ConnectionExpired):
        await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-1")


@pytest.mark.parametrize(
    ("failure", "cooldown_s"),
    [
        (UpstreamFailure(type="RATE_LIMIT", code="VEHICLE", retry_after_s=30.0), 30),
        (UpstreamFailure(type="UPSTREAM", code="RATE_LIMIT"), 60),
    ],
    ids=["smartcar", "manufacturer"],
)
async def test_a_rate_limited_batch_item_cools_the_vehicle_down(
    world: World, failure: UpstreamFailure, cooldown_s: float
) -> None:
    """A batch item refused by Smartcar's or the manufacturer's rate limit puts the car in
    cooldown (its retry-after, else a minute): reads are refused locally until it ends."""
    await world.connect("car-1", "sc-1")
    world.smartcar.cars["sc-1"].failing[TelemetryField.ODOMETER] = failure
    fields = frozenset({TelemetryField.ODOMETER})
    await world.gateway.get_telemetry("car-1", fields=fields, max_age=timedelta(0))
    with pytest.raises(errors.RateLimited) as refused:
        await world.gateway.get_telemetry("car-1", fields=fields, max_age=timedelta(0))
    assert refused.value.metadata["limit"] == "vehicle_cooldown"
    world.clock.advance(cooldown_s)
    await world.gateway.get_telemetry("car-1", fields=fields, max_age=timedelta(0))
    assert world.smartcar.calls["read"] == 2


async def test_a_smartcar_429_cools_the_vehicle_down_without_upstream_calls(
    world: World,
) -> None:
    """After a 429 with retry-after 30 s, reads are refused locally until 30 s pass."""
    await world.connect("car-1", "sc-1")
    limited = errors.RateLimited("429", metadata={"limit": "smartcar_vehicle"}, retry_after_s=30.0)
    world.smartcar.fail("read", limited)
    with pytest.raises(errors.RateLimited):
        await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=timedelta(0))
    for _ in range(5):
        with pytest.raises(errors.RateLimited) as refused:
            await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=timedelta(0))
        assert refused.value.metadata["limit"] == "vehicle_cooldown"
    assert world.smartcar.calls["read"] == 1
    world.clock.advance(30)
    await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=timedelta(0))
    assert world.smartcar.calls["read"] == 2


async def test_the_gateways_own_bucket_refuses_before_smartcar_is_asked() -> None:
    """With a read bucket of 1, the second forced read is refused and costs no upstream call."""
    world = build(
        Policies(
            rate_limits=RateLimits(
                vehicle_reads=BucketSpec(capacity=1, refill_per_s=0.01),
                vehicle_commands=BucketSpec(capacity=1, refill_per_s=0.01),
                application=BucketSpec(capacity=10, refill_per_s=1.0),
            )
        )
    )
    await world.connect("car-1", "sc-1")
    await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=timedelta(0))
    world.clock.advance(1)
    with pytest.raises(errors.RateLimited) as refused:
        await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=timedelta(0))
    assert refused.value.retry_after_s == pytest.approx(99, abs=0.01)
    assert world.smartcar.calls["read"] == 1


async def test_a_repeated_request_id_sends_one_command(world: World) -> None:
    """Unlock twice with one request id: one upstream command, the second answer replayed."""
    await world.connect("car-1", "sc-1")
    first = await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="r-1")
    again = await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="r-1")
    assert first.state is CommandState.SUCCEEDED
    assert not first.replayed
    assert again.replayed
    assert again.completed_at == first.completed_at
    assert world.smartcar.calls["command"] == 1
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.last_command is not None
    assert panel.vehicle.last_command.action is LockAction.UNLOCK
    lock = await world.gateway.get_telemetry(
        "car-1", fields=frozenset({TelemetryField.LOCK_STATUS}), max_age=timedelta(minutes=1)
    )
    assert lock.from_cache


async def test_a_request_id_reused_for_another_command_is_invalid(world: World) -> None:
    """The same key with another action or vehicle is INVALID_ARGUMENT on request_id."""
    await world.connect("car-1", "sc-1")
    await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-1")
    with pytest.raises(errors.InvalidArgument) as bad:
        await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="r-1")
    assert bad.value.violations[0].field == "request_id"


async def test_an_unknown_outcome_is_kept_and_replayed(world: World) -> None:
    """A command that may have happened is reported so, now and on retry, sent only once."""
    await world.connect("car-1", "sc-1")
    world.smartcar.fail("command", errors.CommandOutcomeUnknown("timed out after sending"))
    for _ in range(2):
        with pytest.raises(errors.CommandOutcomeUnknown) as unknown:
            await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-9")
        assert unknown.value.metadata["may_have_succeeded"] == "true"
    assert world.smartcar.calls["command"] == 1
    assert world.uow.store.commands["r-9"].state is CommandState.OUTCOME_UNKNOWN


async def test_a_command_refused_before_reaching_the_car_can_be_retried(world: World) -> None:
    """A 429 frees the request id: the retry after the cooldown runs the command."""
    await world.connect("car-1", "sc-1")
    limited = errors.RateLimited("429", metadata={"limit": "smartcar_vehicle"}, retry_after_s=5)
    world.smartcar.fail("command", limited)
    with pytest.raises(errors.RateLimited):
        await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-2")
    world.clock.advance(5)
    result = await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-2")
    assert result.state is CommandState.SUCCEEDED
    assert not result.replayed


async def test_a_blocked_command_is_replayed_as_the_same_failure(world: World) -> None:
    """DOOR_OPEN is recorded; the retry gets the same refusal without a second command."""
    await world.connect("car-1", "sc-1")
    world.smartcar.fail("command", errors.VehicleStateBlocks("DOOR_OPEN"))
    with pytest.raises(errors.VehicleStateBlocks):
        await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-3")
    with pytest.raises(errors.VehicleStateBlocks) as replayed:
        await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-3")
    assert replayed.value.metadata["replayed"] == "true"
    assert world.smartcar.calls["command"] == 1


async def test_disconnect_is_refused_during_a_rental_then_erases_the_tokens(
    world: World,
) -> None:
    """Disconnect fails while a rental holds the car; after EndRental it revokes and erases."""
    await world.connect("car-1", "sc-1")
    await world.gateway.start_rental("car-1", rental_id="rent-1")
    with pytest.raises(errors.RentalActive) as held:
        await world.gateway.disconnect("car-1")
    assert held.value.rental_id == "rent-1"
    assert world.smartcar.calls["disconnect"] == 0
    await world.gateway.end_rental("car-1", rental_id="rent-1")
    panel = await world.gateway.disconnect("car-1")
    assert panel.vehicle.status is ConnectionStatus.DISCONNECTED
    assert panel.vehicle.vin == "1HGCM82633A004352"
    assert world.uow.store.grants == {}
    assert world.smartcar.calls["disconnect"] == 1


async def test_a_disconnect_smartcar_cannot_confirm_restores_the_vehicle(world: World) -> None:
    """If revocation fails at Smartcar, the vehicle stays ACTIVE with its tokens."""
    await world.connect("car-1", "sc-1")
    world.smartcar.fail("disconnect", errors.UpstreamUnavailable("503"))
    with pytest.raises(errors.UpstreamUnavailable):
        await world.gateway.disconnect("car-1")
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.ACTIVE
    assert len(world.uow.store.grants) == 1


async def test_rentals_are_idempotent_and_exclusive(world: World) -> None:
    """Starting the same rental twice is fine; a second rental on a held car is refused."""
    await world.connect("car-1", "sc-1")
    first = await world.gateway.start_rental("car-1", rental_id="rent-1")
    assert await world.gateway.start_rental("car-1", rental_id="rent-1") == first
    with pytest.raises(errors.RentalConflict):
        await world.gateway.start_rental("car-1", rental_id="rent-2")
    ended = await world.gateway.end_rental("car-1", rental_id="rent-1")
    assert await world.gateway.end_rental("car-1", rental_id="rent-1") == ended
    with pytest.raises(errors.RentalConflict):
        await world.gateway.end_rental("car-1", rental_id="rent-x")


async def test_a_rental_needs_a_connected_vehicle(world: World) -> None:
    """StartRental on a never-connected vehicle explains that it is not connected."""
    await world.gateway.get_connect_url("car-1")
    with pytest.raises(errors.VehicleNotRentable) as refused:
        await world.gateway.start_rental("car-1", rental_id="rent-1")
    assert [u.type for u in refused.value.unmet] == ["CONNECTION_STATUS"]
    assert "never connected" in refused.value.message


async def test_reconnecting_keeps_the_vehicles_data(world: World) -> None:
    """A second Connect of the same car replaces the pair and keeps history and identity."""
    await world.connect("car-1", "sc-1")
    await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-1")
    old_grants = set(world.uow.store.grants)
    await world.connect("car-1", "sc-1")
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.last_command is not None
    assert set(world.uow.store.grants).isdisjoint(old_grants)
    assert len(world.uow.store.grants) == 1


async def test_list_vehicles_pages_and_filters(world: World) -> None:
    """Pages follow vehicle ids; the status filter keeps only matching vehicles."""
    for n in range(5):
        await world.gateway.get_connect_url(f"car-{n}")
    await world.connect("car-3", "sc-1")
    page = await world.gateway.list_vehicles(status=None, page_size=2, page_token="")
    assert [p.vehicle.id for p in page.panels] == ["car-0", "car-1"]
    rest = await world.gateway.list_vehicles(
        status=None, page_size=10, page_token=page.next_page_token
    )
    assert [p.vehicle.id for p in rest.panels] == ["car-2", "car-3", "car-4"]
    assert rest.next_page_token == ""
    active = await world.gateway.list_vehicles(
        status=ConnectionStatus.ACTIVE, page_size=0, page_token=""
    )
    assert [p.vehicle.id for p in active.panels] == ["car-3"]


@pytest.mark.parametrize(
    "token", [*FORGED_PAGE_TOKENS.values(), "\ud800"], ids=[*FORGED_PAGE_TOKENS, "raw-surrogate"]
)
async def test_list_vehicles_refuses_page_tokens_it_did_not_sign(world: World, token: str) -> None:
    """A page token the gateway did not sign (forged JSON, deeply nested, a lone surrogate)
    is InvalidArgument naming page_token."""
    await world.gateway.get_connect_url("car-0")
    with pytest.raises(errors.InvalidArgument) as caught:
        await world.gateway.list_vehicles(status=None, page_size=1, page_token=token)
    assert [v.field for v in caught.value.violations] == ["page_token"]


async def test_replicas_sharing_keys_accept_each_others_page_tokens(world: World) -> None:
    """A token one replica issued pages on another holding the same keys, and after a key
    rotation that keeps the old key configured."""
    old, new = b"o" * 32, b"n" * 32
    first = gateway_over(world, page_tokens=PageTokens((old,)))
    rotated = gateway_over(world, page_tokens=PageTokens((new, old)))
    for n in range(3):
        await first.get_connect_url(f"car-{n}")
    page = await first.list_vehicles(status=None, page_size=1, page_token="")
    rest = await rotated.list_vehicles(status=None, page_size=5, page_token=page.next_page_token)
    assert [p.vehicle.id for p in rest.panels] == ["car-1", "car-2"]


async def test_unknown_vehicles_are_not_found(world: World) -> None:
    """Every per-vehicle use case answers VehicleNotFound for an unknown id."""
    with pytest.raises(errors.VehicleNotFound):
        await world.gateway.get_vehicle("ghost")
    with pytest.raises(errors.VehicleNotFound):
        await world.gateway.get_telemetry("ghost", fields=frozenset(), max_age=None)
    with pytest.raises(errors.VehicleNotFound):
        await world.gateway.disconnect("ghost")
    with pytest.raises(errors.VehicleNotFound):
        await world.gateway.command("ghost", action=LockAction.LOCK, request_id="")


async def test_a_car_already_linked_to_another_fleet_vehicle_is_refused(world: World) -> None:
    """Connecting the same Smartcar car as a second fleet vehicle is AuthorizationMismatch."""
    await world.connect("car-1", "sc-1")
    with pytest.raises(errors.AuthorizationMismatch):
        await world.connect("car-2", "sc-1")
    panel = await world.gateway.get_vehicle("car-2")
    assert panel.vehicle.status is ConnectionStatus.NOT_CONNECTED


async def test_concurrent_first_connect_urls_register_the_vehicle_once(world: World) -> None:
    """Two GetConnectUrl for a new vehicle at once both succeed with distinct states."""
    first, second = await asyncio.gather(
        world.gateway.get_connect_url("car-new"), world.gateway.get_connect_url("car-new")
    )
    assert first.state != second.state
    assert list(world.uow.store.vehicles) == ["car-new"]


async def test_cached_reads_follow_vehicle_changes_by_one_query_per_interval() -> None:
    """Reads answered from cache open no unit of work; after the 2 s interval one query
    asks which vehicles changed (not one per vehicle), and a permission withdrawn
    elsewhere (another replica) shows in the next answers."""
    world = build()
    await world.connect("car-1", "sc-1")
    await world.connect("car-2", "sc-2")
    for car in ("car-1", "car-2"):
        await world.gateway.get_telemetry(car, fields=frozenset(), max_age=None)
    opened = world.uow.opened
    for _ in range(5):
        for car in ("car-1", "car-2"):
            await world.gateway.get_telemetry(car, fields=frozenset(), max_age=None)
    assert world.uow.opened == opened
    async with world.uow() as uow:
        vehicle = await uow.vehicles.get("car-1")
        assert vehicle is not None
        fewer = vehicle.permissions - {"read_odometer"}
        await uow.vehicles.update(dataclasses.replace(vehicle, permissions=fewer))
        await uow.commit()
    odometer = frozenset({TelemetryField.ODOMETER})
    before = await world.gateway.get_telemetry("car-1", fields=odometer, max_age=None)
    assert before.readings[TelemetryField.ODOMETER].availability is Availability.AVAILABLE
    world.clock.advance(3)
    opened = world.uow.opened
    for car in ("car-1", "car-2"):
        after = await world.gateway.get_telemetry(car, fields=odometer, max_age=None)
    assert world.uow.opened == opened + 1
    answer = await world.gateway.get_telemetry("car-1", fields=odometer, max_age=None)
    assert answer.readings[TelemetryField.ODOMETER].availability is (
        Availability.PERMISSION_MISSING
    )
    assert after.readings[TelemetryField.ODOMETER].availability is Availability.AVAILABLE
    # The same object each time, so the edge can keep the answer built from it.
    again = await world.gateway.get_telemetry("car-1", fields=odometer, max_age=None)
    assert again.readings[TelemetryField.ODOMETER] is answer.readings[TelemetryField.ODOMETER]


async def test_the_cache_keeps_readings_packed_beyond_its_hot_set() -> None:
    """With a hot set of 2, readings of 5 vehicles all stay cached and read back equal,
    and none is read from storage again."""
    world = build()
    cars = [("car-1", "sc-1"), ("car-2", "sc-2"), ("ev-1", "sc-ev")]
    for car, smartcar_id in cars:
        await world.connect(car, smartcar_id)
        await world.gateway.get_telemetry(car, fields=frozenset(), max_age=None)
    cache = TelemetryCache(world.uow, hot=2)
    first = {car: dict(await cache.readings(car)) for car, _ in cars}
    opened = world.uow.opened
    for _ in range(3):
        for car, _ in cars:
            assert dict(await cache.readings(car)) == first[car]
    assert world.uow.opened == opened
    assert all(first[car] for car, _ in cars)


async def test_the_cache_holds_at_most_its_size_dropping_the_least_recently_used() -> None:
    """With room for 2 vehicles, a third drops the one used longest ago; a dropped vehicle's
    readings come back from storage, equal, on its next use (one unit of work), and the
    vehicles in use stay held."""
    world = build()
    cars = [("car-1", "sc-1"), ("car-2", "sc-2"), ("ev-1", "sc-ev")]
    for car, smartcar_id in cars:
        await world.connect(car, smartcar_id)
        await world.gateway.get_telemetry(car, fields=frozenset(), max_age=None)
    cache = TelemetryCache(world.uow, hot=1, size=2)
    first = {car: dict(await cache.readings(car)) for car, _ in cars[:2]}
    await cache.readings("car-1")  # car-2 is now the least recently used
    await cache.readings("ev-1")
    assert (len(cache), cache.evictions) == (2, 1)
    assert cache.held("car-2") is None
    assert cache.held("car-1") is not None
    opened = world.uow.opened
    assert dict(await cache.readings("car-2")) == first["car-2"]
    assert world.uow.opened == opened + 1
    assert cache.held("ev-1") is None  # car-1 was used after ev-1 was loaded
    assert dict(await cache.readings("car-1")) == first["car-1"]


def replicas(shared: FakeSharedTelemetry | None) -> tuple[World, Gateway]:
    """Two gateways on one storage and one Smartcar (two replicas), sharing `shared`."""
    one = build()
    other = gateway_over(one, shared_telemetry=shared)
    one.gateway = gateway_over(one, shared_telemetry=shared)
    return one, other


async def test_a_replica_finds_what_another_fetched_before_asking_smartcar() -> None:
    """Without shared telemetry, a replica whose own cache is too old reads storage (where
    the other replica stored its answer) before it asks Smartcar."""
    world, other = replicas(None)
    await world.connect("car-1", "sc-1")
    minute = timedelta(minutes=1)
    await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=minute)
    await other.get_telemetry("car-1", fields=frozenset(), max_age=None)  # loads its cache
    world.clock.advance(600)
    await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=minute)
    assert world.smartcar.calls["read"] == 2
    answer = await other.get_telemetry("car-1", fields=frozenset(), max_age=minute)
    assert answer.from_cache
    assert world.smartcar.calls["read"] == 2


async def test_stale_reads_on_two_replicas_ask_smartcar_once() -> None:
    """With shared telemetry, concurrent stale reads on both replicas make one batch: one
    replica claims the vehicle, the other waits for its answer."""
    shared = FakeSharedTelemetry()
    world, other = replicas(shared)
    await world.connect("car-1", "sc-1")
    await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=None)
    world.clock.advance(600)
    world.smartcar.gate = asyncio.Event()
    fresh = timedelta(minutes=1)
    reads = [
        gateway.get_telemetry("car-1", fields=frozenset(), max_age=fresh)
        for _ in range(50)
        for gateway in (world.gateway, other)
    ]
    pending = asyncio.gather(*reads)
    for _ in range(5):
        await asyncio.sleep(0)
    world.smartcar.gate.set()
    answers = await pending
    assert len(answers) == 100
    assert world.smartcar.calls["read"] == 2
    assert shared.claims == 2
    assert shared.holders == {}
