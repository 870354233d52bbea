"""Cars that wait for their owner (NEEDS_REAUTHENTICATION) on fakes: how Smartcar's
CONNECTED_SERVICES_ACCOUNT errors put a car there, what calls to it get, and what ends it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.core import errors
from gateway.core.model import (
    Availability,
    ConnectionStatus,
    LockAction,
    Odometer,
    TelemetryField,
)
from gateway.core.reauthentication import OwnerActions, kept, waiting
from tests.unit.gateway.states import (
    REAUTH_URL,
    VIRTUAL_KEY_URL,
    account_issue,
    connect,
    world_of,
)
from tests.unit.gateway.test_use_cases import World

ODOMETER = frozenset({TelemetryField.ODOMETER})
PROBE_INTERVAL = timedelta(hours=6)


async def waiting_car(world: World, code: str = "AUTHENTICATION_FAILED") -> None:
    """Connect car-1, read its odometer once, then let Smartcar say the owner must act."""
    await connect(world)
    await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
    world.smartcar.fail("read", account_issue(code))
    world.clock.advance(60)
    await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))


async def test_an_account_error_makes_the_car_wait_and_reads_answer_from_what_is_held() -> None:
    """A read meeting CONNECTED_SERVICES_ACCOUNT makes the car NEEDS_REAUTHENTICATION with
    Smartcar's resolution; that read and later ones are answered with the last value and its
    age, UNAVAILABLE for REAUTHENTICATION_REQUIRED, and Smartcar is not asked again."""
    world = world_of()
    await waiting_car(world)
    panel = await world.gateway.get_vehicle("car-1")
    vehicle = panel.vehicle
    assert vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION
    assert vehicle.owner_action is not None
    assert vehicle.owner_action.error == "CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED"
    assert (vehicle.owner_action.resolution_type, vehicle.owner_action.resolution_url) == (
        "REAUTHENTICATE",
        REAUTH_URL,
    )
    assert vehicle.grant_id is not None  # the connection stands: its tokens are kept
    reads = world.smartcar.calls["read"]
    answer = await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=timedelta(0))
    odometer = answer.readings[TelemetryField.ODOMETER]
    assert (odometer.availability, odometer.reason) == (
        Availability.UNAVAILABLE,
        "REAUTHENTICATION_REQUIRED",
    )
    assert isinstance(odometer.value, Odometer)
    assert odometer.recorded_at is not None
    assert world.smartcar.calls["read"] == reads


async def test_with_nothing_held_a_read_fails_naming_the_owners_action() -> None:
    """A waiting car with no reading held: the first read fails OwnerAccountIssue with
    Smartcar's answer, later ones ReauthenticationRequired carrying the resolution URL."""
    world = world_of()
    await connect(world)
    world.smartcar.fail("read", account_issue())
    with pytest.raises(errors.OwnerAccountIssue):
        await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=None)
    with pytest.raises(errors.ReauthenticationRequired) as refused:
        await world.gateway.get_telemetry("car-1", fields=ODOMETER, max_age=None)
    assert refused.value.metadata["resolution_url"] == REAUTH_URL
    assert refused.value.metadata["status"] == "NEEDS_REAUTHENTICATION"
    assert world.smartcar.calls["read"] == 1


async def test_commands_and_rentals_are_refused_while_the_car_waits() -> None:
    """A command is refused before anything is sent; StartRental names the status and the
    resolution URL."""
    world = world_of()
    await waiting_car(world)
    with pytest.raises(errors.ReauthenticationRequired) as refused:
        await world.gateway.command("car-1", action=LockAction.LOCK, request_id="lock-1")
    assert refused.value.metadata["resolution_url"] == REAUTH_URL
    assert world.smartcar.calls["command"] == 0
    with pytest.raises(errors.VehicleNotRentable) as not_rentable:
        await world.gateway.start_rental("car-1", rental_id="rent-1")
    assert not_rentable.value.metadata["status"] == "NEEDS_REAUTHENTICATION"
    assert not_rentable.value.metadata["resolution_url"] == REAUTH_URL
    assert "NEEDS_REAUTHENTICATION" in not_rentable.value.unmet[0].description


async def test_a_command_meeting_a_virtual_key_error_waits_and_is_never_probed() -> None:
    """VIRTUAL_KEY_REQUIRED on a command: the car waits (ACTION_REQUIRED, the key's page);
    reads say nothing about it, so the scheduler never probes it."""
    world = world_of()
    await connect(world)
    world.smartcar.fail("command", account_issue("VIRTUAL_KEY_REQUIRED"))
    with pytest.raises(errors.OwnerAccountIssue):
        await world.gateway.command("car-1", action=LockAction.UNLOCK, request_id="unlock-1")
    vehicle = (await world.gateway.get_vehicle("car-1")).vehicle
    assert vehicle.owner_action is not None
    assert vehicle.owner_action.commands_only
    assert vehicle.owner_action.resolution_url == VIRTUAL_KEY_URL
    world.clock.advance(7 * 3600)
    reads = world.smartcar.calls["read"]
    report = await world.gateway.scheduler.tick()
    assert (report.probes, world.smartcar.calls["read"]) == (0, reads)


async def test_the_scheduler_probes_a_waiting_car_every_interval_until_smartcar_answers() -> None:
    """No poll while the car waits; a probe of one field once the interval has passed (the
    same error keeps it waiting, and the next probe waits another interval); an answered
    probe makes it ACTIVE, Smartcar's resolution dropped."""
    world = world_of()
    await waiting_car(world)
    reads = world.smartcar.calls["read"]
    await world.gateway.scheduler.tick()
    assert world.smartcar.calls["read"] == reads
    world.clock.advance(PROBE_INTERVAL.total_seconds())
    world.smartcar.fail("read", account_issue())
    report = await world.gateway.scheduler.tick()
    assert (report.probes, world.smartcar.calls["read"]) == (1, reads + 1)
    vehicle = (await world.gateway.get_vehicle("car-1")).vehicle
    assert vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION
    assert vehicle.owner_action is not None
    assert vehicle.owner_action.probed_at == world.clock.now()
    world.clock.advance(PROBE_INTERVAL.total_seconds() - 1)
    await world.gateway.scheduler.tick()
    assert world.smartcar.calls["read"] == reads + 1
    world.clock.advance(1)
    await world.gateway.scheduler.tick()
    vehicle = (await world.gateway.get_vehicle("car-1")).vehicle
    assert (vehicle.status, vehicle.owner_action) == (ConnectionStatus.ACTIVE, None)
    assert "probe" in (vehicle.status_reason or "")


async def test_a_reconnect_ends_the_wait() -> None:
    """Connect again: ACTIVE, Smartcar's resolution dropped, commands go through."""
    world = world_of()
    await waiting_car(world)
    await connect(world)
    vehicle = (await world.gateway.get_vehicle("car-1")).vehicle
    assert (vehicle.status, vehicle.owner_action) == (ConnectionStatus.ACTIVE, None)
    await world.gateway.command("car-1", action=LockAction.LOCK, request_id="lock-1")


async def test_only_served_connections_wait_and_a_repeated_error_keeps_its_probe_time() -> None:
    """An EXPIRED or DISCONNECTED car does not start waiting; the same error again keeps
    when the car was last probed, another error replaces it."""
    world = world_of()
    await waiting_car(world)
    vehicle = (await world.gateway.get_vehicle("car-1")).vehicle
    action = account_issue().action
    for status in (ConnectionStatus.EXPIRED, ConnectionStatus.DISCONNECTED):
        gone = vehicle.__class__(id="x", status=status)
        assert waiting(gone, action, now=world.clock.now()) is None
    owners = OwnerActions(uow=world.uow, clock=world.clock)
    world.clock.advance(PROBE_INTERVAL.total_seconds())
    assert await owners.probing("car-1", interval=PROBE_INTERVAL)
    probed = world.clock.now()
    await owners.required("car-1", action)
    stored = world.uow.store.vehicles["car-1"].owner_action
    assert stored is not None
    assert stored.probed_at == probed
    await owners.required("car-1", account_issue("SUBSCRIPTION").action)
    stored = world.uow.store.vehicles["car-1"].owner_action
    assert stored is not None
    assert (stored.error, stored.probed_at) == ("CONNECTED_SERVICES_ACCOUNT:SUBSCRIPTION", None)


def test_what_smartcar_asked_is_kept_bounded_and_only_http_links_are_kept() -> None:
    """Texts are cut to a bound; a link that is not http(s), or too long, is dropped."""
    action = account_issue().action
    long_text = "x" * 5000
    bounded = kept(
        action.__class__(
            error=long_text,
            resolution_url="javascript:alert(1)",
            doc_url="https://smartcar.com/" + long_text,
            user_message=long_text,
        )
    )
    assert len(bounded.error) == 2000
    assert bounded.error.endswith("…")
    assert (bounded.resolution_url, bounded.doc_url) == (None, None)
    assert bounded.user_message is not None
    assert len(bounded.user_message) == 2000
    assert kept(action) == action
