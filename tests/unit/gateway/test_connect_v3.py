"""Connections through Smartcar API V3 on fakes (gateway.core.connections, .upstream): the
redirect's user id links the car, the application's token reads and commands it, and
Disconnect removes the connection."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.core.assembly import Policies, build_gateway
from gateway.core.connections import ConnectPolicy
from gateway.core.errors import InvalidArgument, UpstreamUnavailable
from gateway.core.model import (
    ConnectionStatus,
    LockAction,
    SmartcarAccess,
    SmartcarApi,
    TelemetryField,
)
from gateway.core.secret import Secret
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START
from tests.unit.gateway.fake_smartcar import FakeCar, FakeSmartcar
from tests.unit.gateway.test_use_cases import GENEROUS, World

V3 = Policies(rate_limits=GENEROUS, connect=ConnectPolicy(api=SmartcarApi.V3))


class FakeApplicationTokens:
    """The application's token, as the fake Smartcar grants and refuses it."""

    def __init__(self, smartcar: FakeSmartcar) -> None:
        self.smartcar = smartcar
        self.grants = 0
        self.token = self._grant()

    def _grant(self) -> str:
        self.grants += 1
        token = f"app-{self.grants}"
        self.smartcar.application_tokens.add(token)
        return token

    async def current(self) -> Secret:
        return Secret(self.token)

    async def rejected(self, token: Secret) -> Secret:
        if token.reveal() == self.token:
            self.token = self._grant()
        return Secret(self.token)


def world_on_v3(*, with_application: bool = True) -> tuple[World, FakeApplicationTokens]:
    """A gateway whose new connections use V3; user-1 connected sc-1 at Smartcar."""
    clock = ManualClock(START)
    smartcar = FakeSmartcar(clock=clock)
    smartcar.add_car("sc-1", FakeCar(vin="1HGCM82633A004352", locked=False))
    smartcar.v3_users["user-1"] = ["sc-1"]
    tokens = FakeApplicationTokens(smartcar)
    uow = FakeUnitOfWorkFactory()
    gateway = build_gateway(
        uow=uow,
        smartcar=smartcar,
        clock=clock,
        policies=V3,
        application_tokens=tokens if with_application else None,
    )
    return World(gateway=gateway, smartcar=smartcar, uow=uow, clock=clock), tokens


async def connect_v3(world: World, *, user_id: str = "user-1", code: str = "") -> None:
    url = await world.gateway.get_connect_url("car-1")
    await world.gateway.connect("car-1", code=code, state=url.state, user_id=user_id)


async def test_a_v3_connect_links_the_users_car_without_tokens() -> None:
    """The user id names the owner: the car is ACTIVE on V3, with no grant and no code
    exchange, and Connect counts one billed request."""
    world, _ = world_on_v3()
    await connect_v3(world)
    panel = await world.gateway.get_vehicle("car-1")
    vehicle = panel.vehicle
    assert vehicle.status is ConnectionStatus.ACTIVE
    assert (vehicle.api, vehicle.smartcar_user_id, vehicle.grant_id) == (
        SmartcarApi.V3,
        "user-1",
        None,
    )
    assert vehicle.smartcar_vehicle_id == "sc-1"
    assert vehicle.vin == "1HGCM82633A004352"
    assert panel.requests_this_month == 1
    assert world.smartcar.calls["exchange_code"] == 0
    assert world.uow.store.grants == {}


async def test_a_v3_car_is_read_and_locked_with_the_application_token() -> None:
    """Reads and commands on a V3 car carry the application token for its owner (the fake
    refuses anything else)."""
    world, _ = world_on_v3()
    await connect_v3(world)
    telemetry = await world.gateway.get_telemetry(
        "car-1", fields=frozenset({TelemetryField.ODOMETER}), max_age=None
    )
    assert telemetry.readings[TelemetryField.ODOMETER].value is not None
    await world.gateway.command("car-1", action=LockAction.LOCK, request_id="r-1")
    assert world.smartcar.cars["sc-1"].locked


async def test_an_expired_application_token_is_replaced_once_for_every_caller() -> None:
    """Smartcar stops accepting the token: the next read gets one new token and succeeds."""
    world, tokens = world_on_v3()
    await connect_v3(world)
    world.smartcar.application_tokens.clear()
    await world.gateway.get_telemetry("car-1", fields=frozenset(), max_age=None)
    assert tokens.grants == 2


async def test_v3_disconnect_removes_the_connection_once() -> None:
    """Disconnect removes the user's connection at Smartcar; a second one sends nothing."""
    world, _ = world_on_v3()
    await connect_v3(world)
    first = await world.gateway.disconnect("car-1")
    again = await world.gateway.disconnect("car-1")
    assert first.vehicle.status is ConnectionStatus.DISCONNECTED
    assert again.vehicle.status is ConnectionStatus.DISCONNECTED
    assert world.smartcar.v3_users["user-1"] == []
    assert world.smartcar.calls["disconnect"] == 1


async def test_a_v3_connect_needs_the_user_id() -> None:
    """Without the redirect's user_id a V3 Connect names the field; a code alone is no help."""
    world, _ = world_on_v3()
    with pytest.raises(InvalidArgument) as refused:
        await connect_v3(world, user_id="", code="code-1")
    assert [v.field for v in refused.value.violations] == ["user_id"]


async def test_a_v2_connect_needs_the_code() -> None:
    """With v2 for new connections, a user id alone is not enough: the code is named."""
    world, _ = world_on_v3()
    v2 = build_gateway(
        uow=world.uow,
        smartcar=world.smartcar,
        clock=world.clock,
        policies=Policies(rate_limits=GENEROUS),
    )
    url = await v2.get_connect_url("car-1")
    with pytest.raises(InvalidArgument) as refused:
        await v2.connect("car-1", code="", state=url.state, user_id="user-1")
    assert [v.field for v in refused.value.violations] == ["code"]


async def test_v3_without_application_credentials_says_so() -> None:
    """A gateway set to V3 without application credentials refuses Connect clearly."""
    world, _ = world_on_v3(with_application=False)
    with pytest.raises(UpstreamUnavailable, match="application credentials"):
        await connect_v3(world)


class RecordingSubscriptions:
    """Webhook subscriptions that record each request, or fail when told to."""

    def __init__(
        self, failure: Exception | None = None, *, removal_failure: Exception | None = None
    ) -> None:
        self.made: list[tuple[str | None, str]] = []
        self.removed: list[tuple[str | None, str]] = []
        self.failure = failure
        self.removal_failure = removal_failure

    async def subscribe(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        if self.failure is not None:
            raise self.failure
        self.made.append((access.user_id, smartcar_vehicle_id))

    async def unsubscribe(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        if self.removal_failure is not None:
            raise self.removal_failure
        self.removed.append((access.user_id, smartcar_vehicle_id))


def world_with(subscriptions: RecordingSubscriptions) -> World:
    """world_on_v3's fakes, with webhook subscriptions."""
    world, tokens = world_on_v3()
    gateway = build_gateway(
        uow=world.uow,
        smartcar=world.smartcar,
        clock=world.clock,
        policies=V3,
        application_tokens=tokens,
        subscriptions=subscriptions,
    )
    return dataclasses.replace(world, gateway=gateway)


async def test_a_v3_connection_is_subscribed_to_the_webhook() -> None:
    """A V3 Connect subscribes the user's car to the application's webhook."""
    subscriptions = RecordingSubscriptions()
    world = world_with(subscriptions)
    await connect_v3(world)
    assert subscriptions.made == [("user-1", "sc-1")]


async def test_a_failed_subscription_does_not_fail_connect() -> None:
    """Smartcar refusing the subscription leaves the car connected (events can wait)."""
    world = world_with(RecordingSubscriptions(UpstreamUnavailable("management API down")))
    await connect_v3(world)
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.ACTIVE


async def test_v3_disconnect_removes_the_subscription_before_the_connection() -> None:
    """Disconnect unsubscribes the car from the webhook, then deletes its connection; a
    second Disconnect sends neither again."""
    subscriptions = RecordingSubscriptions()
    world = world_with(subscriptions)
    await connect_v3(world)
    await world.gateway.disconnect("car-1")
    await world.gateway.disconnect("car-1")
    assert subscriptions.removed == [("user-1", "sc-1")]
    assert world.smartcar.v3_users["user-1"] == []
    assert world.smartcar.calls["disconnect"] == 1


async def test_a_failed_unsubscribe_does_not_keep_the_car_connected() -> None:
    """The management API failing leaves the disconnect to go on: the connection is gone."""
    failing = RecordingSubscriptions(removal_failure=UpstreamUnavailable("management API down"))
    world = world_with(failing)
    await connect_v3(world)
    panel = await world.gateway.disconnect("car-1")
    assert panel.vehicle.status is ConnectionStatus.DISCONNECTED
    assert world.smartcar.v3_users["user-1"] == []
