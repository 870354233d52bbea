"""A gateway over fakes for the connection-state tests: v2 or V3 connections, the
application's token (so Smartcar's listing of connections can be asked), and Smartcar's
CONNECTED_SERVICES_ACCOUNT errors as the adapter raises them."""

from __future__ import annotations

from gateway.core.assembly import Policies, build_gateway
from gateway.core.connections import ConnectPolicy
from gateway.core.errors import OwnerAccountIssue
from gateway.core.model import OwnerAction, SmartcarApi, UpstreamFailure
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START
from tests.unit.gateway.fake_smartcar import FakeCar, FakeSmartcar
from tests.unit.gateway.test_connect_v3 import FakeApplicationTokens
from tests.unit.gateway.test_use_cases import GENEROUS, World

OWNER = "owner-1"
REAUTH_URL = "https://connect.smartcar.com/oauth/reauthenticate?response_type=vehicle_id"
DOCS = "https://smartcar.com/docs/errors/api-errors/connected-services-account-errors"
VIRTUAL_KEY_URL = "https://www.tesla.com/_ak/smartcar.com"


def world_of(api: SmartcarApi = SmartcarApi.V2, *, with_application: bool = True) -> World:
    """A gateway whose new connections use `api`, with two ICE cars; Smartcar's
    Connections API lists `owner-1`'s connection to sc-1 (v2 connections included)."""
    clock = ManualClock(START)
    smartcar = FakeSmartcar(clock=clock)
    smartcar.add_car("sc-1", FakeCar(vin="1HGCM82633A004352"))
    smartcar.add_car("sc-2", FakeCar(vin="1HGCM82633A004353"))
    smartcar.v3_users[OWNER] = ["sc-1"]
    uow = FakeUnitOfWorkFactory()
    gateway = build_gateway(
        uow=uow,
        smartcar=smartcar,
        clock=clock,
        policies=Policies(rate_limits=GENEROUS, connect=ConnectPolicy(api=api)),
        application_tokens=FakeApplicationTokens(smartcar) if with_application else None,
    )
    return World(gateway=gateway, smartcar=smartcar, uow=uow, clock=clock)


async def connect(world: World, vehicle_id: str = "car-1", smartcar_id: str = "sc-1") -> None:
    """Connect a fleet vehicle to a fake car: by code on v2, by the owner's id on V3."""
    url = await world.gateway.get_connect_url(vehicle_id)
    code = world.smartcar.issue_code(OWNER, [smartcar_id])
    await world.gateway.connect(vehicle_id, code=code, state=url.state, user_id=OWNER)


def account_issue(code: str = "AUTHENTICATION_FAILED") -> OwnerAccountIssue:
    """Smartcar's 400 CONNECTED_SERVICES_ACCOUNT `code`, as the adapter raises it (a
    virtual key concerns commands only)."""
    virtual_key = code == "VIRTUAL_KEY_REQUIRED"
    failure = UpstreamFailure(
        type="CONNECTED_SERVICES_ACCOUNT",
        code=code,
        resolution_type="ACTION_REQUIRED" if virtual_key else "REAUTHENTICATE",
        resolution_url=VIRTUAL_KEY_URL if virtual_key else REAUTH_URL,
        doc_url=DOCS,
        suggested_user_message="Please re-connect your car.",
    )
    action = OwnerAction(
        error=f"CONNECTED_SERVICES_ACCOUNT:{code}",
        resolution_type=failure.resolution_type,
        resolution_url=failure.resolution_url,
        doc_url=DOCS,
        user_message=failure.suggested_user_message,
        commands_only=virtual_key,
    )
    return OwnerAccountIssue(f"Smartcar: {code}", action=action, upstream=failure)
