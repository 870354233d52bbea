"""Owner revocation and Disconnect on fakes: which answers mean the owner revoked access
(DISCONNECTED) and which only expiry (EXPIRED), and Disconnect deleting the connection at
Smartcar whatever the car's status."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from gateway.core import errors
from gateway.core.model import ConnectionStatus, SmartcarApi, TelemetryField
from gateway.core.ports import TokenRejected
from gateway.core.revocation import ACCESS_REVOKED, REFRESH_REFUSED, REFRESH_REVOKED
from gateway.core.upstream import REVOKED_REASON
from tests.unit.gateway.states import OWNER, account_issue, connect, world_of
from tests.unit.gateway.test_use_cases import World

ODOMETER = frozenset({TelemetryField.ODOMETER})


async def read(world: World, vehicle_id: str = "car-1") -> None:
    """Read the odometer from Smartcar."""
    await world.gateway.get_telemetry(vehicle_id, fields=ODOMETER, max_age=timedelta(0))


async def status_of(world: World, vehicle_id: str = "car-1") -> tuple[ConnectionStatus, str]:
    """The car's status and its reason."""
    vehicle = (await world.gateway.get_vehicle(vehicle_id)).vehicle
    return vehicle.status, vehicle.status_reason or ""


async def expired(world: World) -> None:
    """Connect car-1 on v2, then have Smartcar refuse its pair (still listing it)."""
    await connect(world)
    world.smartcar.revoke_all_tokens()
    with pytest.raises(errors.ConnectionExpired):
        await read(world)


async def test_a_refused_pair_whose_connection_smartcar_no_longer_lists_was_revoked() -> None:
    """v2: a 401, then invalid_grant, and Smartcar's connections no longer list the car:
    the owner revoked access, DISCONNECTED with that reason, the pair erased."""
    world = world_of()
    await connect(world)
    world.smartcar.revoke_all_tokens()
    world.smartcar.v3_users[OWNER] = []
    with pytest.raises(errors.ConnectionDisconnected):
        await read(world)
    assert await status_of(world) == (ConnectionStatus.DISCONNECTED, REFRESH_REVOKED)
    assert world.uow.store.grants == {}


async def test_a_refused_pair_whose_connection_is_still_listed_is_expired() -> None:
    """v2: invalid_grant while Smartcar still lists the connection (or when it cannot be
    asked: no application credentials) is EXPIRED, as DESIGN says."""
    world = world_of()
    await expired(world)
    assert await status_of(world) == (ConnectionStatus.EXPIRED, REFRESH_REFUSED)
    unasked = world_of(with_application=False)
    await expired(unasked)
    assert (await status_of(unasked))[0] is ConnectionStatus.EXPIRED


async def test_a_fresh_token_refused_for_one_car_disconnects_it_not_the_owners_others() -> None:
    """v2: a 401 that survives a fresh token for one of an owner's two cars on one pair
    disconnects that car (and any Smartcar no longer lists), not the other, which keeps
    the pair and still answers."""
    world = world_of()
    for vehicle_id, vin in (("car-1", "1HGCM82633A004352"), ("car-2", "1HGCM82633A004353")):
        url = await world.gateway.get_connect_url(vehicle_id, vin=vin)
        code = world.smartcar.issue_code(OWNER, ["sc-1", "sc-2"])
        await world.gateway.connect(vehicle_id, code=code, state=url.state)
    assert len(world.uow.store.grants) == 1
    world.smartcar.fail("read", TokenRejected(), TokenRejected())
    with pytest.raises(errors.ConnectionDisconnected):
        await read(world, "car-2")
    assert await status_of(world, "car-2") == (ConnectionStatus.DISCONNECTED, REVOKED_REASON)
    assert (await status_of(world, "car-1"))[0] is ConnectionStatus.ACTIVE
    assert len(world.uow.store.grants) == 1
    await read(world, "car-1")


async def test_a_pair_past_its_sixty_days_is_expired_without_asking_smartcar() -> None:
    """A refresh token that outlived its 60 days is plain expiry: EXPIRED, and neither the
    token endpoint nor the connections listing is asked."""
    world = world_of()
    await connect(world)
    listed, refreshes = world.smartcar.calls["vehicle_ids"], world.smartcar.calls["refresh"]
    world.clock.advance(61 * 86400)
    with pytest.raises(errors.ConnectionExpired):
        await read(world)
    status, reason = await status_of(world)
    assert status is ConnectionStatus.EXPIRED
    assert "60 days" in reason
    assert world.smartcar.calls["vehicle_ids"] == listed
    assert world.smartcar.calls["refresh"] == refreshes


async def test_a_v3_car_refused_403_is_disconnected_only_when_its_connection_is_gone() -> None:
    """V3: a 403 ACCESS_DENIED while Smartcar still lists the connection stands as it is
    (status kept); once the connection is no longer listed, DISCONNECTED."""
    world = world_of(SmartcarApi.V3)
    await connect(world)
    world.smartcar.fail("read", errors.AuthorizationMismatch("403 ACCESS_DENIED"))
    with pytest.raises(errors.AuthorizationMismatch):
        await read(world)
    assert (await status_of(world))[0] is ConnectionStatus.ACTIVE
    world.smartcar.v3_users[OWNER] = []
    with pytest.raises(errors.ConnectionDisconnected):
        await read(world)
    assert await status_of(world) == (ConnectionStatus.DISCONNECTED, ACCESS_REVOKED)


async def test_disconnecting_an_expired_car_deletes_it_with_the_applications_token() -> None:
    """v2, EXPIRED (tokens gone): Disconnect deletes the owner's connection through API V3
    with the application's token, and the car ends DISCONNECTED; a Smartcar failure keeps
    the car EXPIRED, says why, and fails the call; the retry deletes it."""
    world = world_of()
    await expired(world)
    world.smartcar.fail("disconnect", errors.UpstreamUnavailable("503"))
    with pytest.raises(errors.UpstreamUnavailable):
        await world.gateway.disconnect("car-1")
    status, reason = await status_of(world)
    assert status is ConnectionStatus.EXPIRED
    assert "disconnect failed" in reason
    assert world.smartcar.v3_users[OWNER] == ["sc-1"]
    panel = await world.gateway.disconnect("car-1")
    assert panel.vehicle.status is ConnectionStatus.DISCONNECTED
    assert world.smartcar.v3_users[OWNER] == []
    assert world.smartcar.calls["disconnect"] == 2


async def test_disconnecting_a_car_waiting_for_its_owner_deletes_it_with_the_owners_tokens() -> (
    None
):
    """v2, NEEDS_REAUTHENTICATION (tokens kept): Disconnect revokes with the owner's token
    and erases the pair; the car ends DISCONNECTED, Smartcar's resolution dropped."""
    world = world_of()
    await connect(world)
    world.smartcar.fail("read", account_issue())
    with pytest.raises(errors.OwnerAccountIssue):
        await read(world)
    panel = await world.gateway.disconnect("car-1")
    assert (panel.vehicle.status, panel.vehicle.owner_action) == (
        ConnectionStatus.DISCONNECTED,
        None,
    )
    assert world.smartcar.calls["disconnect"] == 1
    assert world.uow.store.grants == {}


async def test_a_v3_car_waiting_for_its_owner_is_deleted_and_a_vanished_one_is_done() -> None:
    """V3, NEEDS_REAUTHENTICATION: Disconnect deletes the connection; a connection Smartcar
    no longer has counts as deleted."""
    world = world_of(SmartcarApi.V3)
    await connect(world)
    world.smartcar.fail("read", account_issue("SUBSCRIPTION"))
    with pytest.raises(errors.OwnerAccountIssue):
        await read(world)
    world.smartcar.v3_users[OWNER] = []  # gone already at Smartcar
    panel = await world.gateway.disconnect("car-1")
    assert panel.vehicle.status is ConnectionStatus.DISCONNECTED
    assert world.smartcar.calls["disconnect"] == 1


async def test_a_connection_the_gateway_cannot_delete_is_refused_before_anything_changes() -> None:
    """An EXPIRED car without its owner's Smartcar user id, or a gateway without application
    credentials, cannot be deleted: the call fails and the car stays EXPIRED."""
    unknown_owner = world_of()
    await expired(unknown_owner)
    vehicle = unknown_owner.uow.store.vehicles["car-1"]
    unknown_owner.uow.store.vehicles["car-1"] = dataclasses.replace(vehicle, smartcar_user_id=None)
    with pytest.raises(errors.PreconditionFailed):
        await unknown_owner.gateway.disconnect("car-1")
    assert (await status_of(unknown_owner))[0] is ConnectionStatus.EXPIRED
    unequipped = world_of(with_application=False)
    await expired(unequipped)
    with pytest.raises(errors.UpstreamUnavailable):
        await unequipped.gateway.disconnect("car-1")
    assert (await status_of(unequipped))[0] is ConnectionStatus.EXPIRED
    assert unequipped.smartcar.calls["disconnect"] == 0


async def test_disconnected_and_never_connected_cars_send_nothing() -> None:
    """A car the owner revoked (Smartcar no longer lists it) or never connected: Disconnect
    answers its panel and asks Smartcar nothing."""
    world = world_of()
    await connect(world)
    world.smartcar.revoke_all_tokens()
    world.smartcar.v3_users[OWNER] = []
    with pytest.raises(errors.ConnectionDisconnected):
        await read(world)
    await world.gateway.get_connect_url("car-2")
    for vehicle_id in ("car-1", "car-2"):
        await world.gateway.disconnect(vehicle_id)
    assert world.smartcar.calls["disconnect"] == 0
