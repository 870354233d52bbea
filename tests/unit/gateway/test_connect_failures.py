"""Connect URLs marking required permissions, and Connect redirects that carry Smartcar's
`error`: the state used up, the vehicle noting why, the caller told by a reason naming it."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.core import errors
from gateway.core.assembly import Policies
from gateway.core.connect_failures import HINTS, reason_of
from gateway.core.connections import ConnectPolicy
from gateway.core.model import ConnectFailure, ConnectionStatus, TelemetryField
from gateway.core.permissions import DEFAULT_REQUIRED_AT_CONNECT
from tests.unit.gateway.test_use_cases import GENEROUS, World, build

DENIED = ConnectFailure(error="access_denied", description="User denied access to application")
REASON_SHAPE = re.compile(r"[A-Z][A-Z0-9_]*[A-Z0-9]")


@pytest.fixture
def world() -> World:
    """A fresh gateway over fakes."""
    return build()


def required_in(url: str) -> set[str]:
    """The permissions the fake Smartcar's Connect URL was asked to mark required."""
    marked = parse_qs(urlsplit(url).query, keep_blank_values=True)["required"][0]
    return set(marked.split(",")) - {""}


async def test_connect_urls_mark_the_configured_permissions_required() -> None:
    """By default Connect URLs mark the rental flow's permissions required; the policy may
    name others (or none)."""
    default = await build().gateway.get_connect_url("car-1")
    assert required_in(default.url) == DEFAULT_REQUIRED_AT_CONNECT
    chosen = Policies(
        rate_limits=GENEROUS,
        connect=ConnectPolicy(required_permissions=frozenset({"control_security"})),
    )
    assert required_in((await build(chosen).gateway.get_connect_url("car-1")).url) == {
        "control_security"
    }
    none = Policies(rate_limits=GENEROUS, connect=ConnectPolicy(required_permissions=frozenset()))
    assert required_in((await build(none).gateway.get_connect_url("car-1")).url) == set()


def test_only_permissions_connect_asks_for_can_be_required() -> None:
    """A required permission Connect would not even ask for is a configuration error."""
    with pytest.raises(ValueError, match="read_speedometer"):
        ConnectPolicy(required_permissions=frozenset({"read_speedometer"}))


async def test_a_failed_redirect_uses_the_state_and_records_why(world: World) -> None:
    """access_denied: ConnectFailed with reason CONNECT_ACCESS_DENIED and the code and
    description in its metadata; the vehicle stays NOT_CONNECTED, its status reason says
    why and what to do, and the state cannot be used again."""
    url = await world.gateway.get_connect_url("car-1")
    with pytest.raises(errors.ConnectFailed) as failed:
        await world.gateway.connect("car-1", code="", state=url.state, failure=DENIED)
    assert failed.value.reason == "CONNECT_ACCESS_DENIED"
    assert failed.value.metadata == {
        "vehicle_id": "car-1",
        "connect_error": "access_denied",
        "connect_error_description": "User denied access to application",
    }
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.NOT_CONNECTED
    reason = panel.vehicle.status_reason or ""
    assert "access_denied (User denied access to application)" in reason
    assert HINTS["access_denied"] in reason
    assert reason in failed.value.message
    code = world.smartcar.issue_code("owner-1", ["sc-1"])
    with pytest.raises(errors.InvalidArgument) as reused:
        await world.gateway.connect("car-1", code=code, state=url.state)
    assert reused.value.violations[0].field == "state"


async def test_a_failed_reconnect_leaves_a_working_connection_alone(world: World) -> None:
    """An ACTIVE car whose owner denies a new Connect stays ACTIVE on its pair (reads still
    work); its status reason says the new Connect failed and the connection is unchanged."""
    await world.connect("car-1", "sc-1")
    url = await world.gateway.get_connect_url("car-1")
    failure = ConnectFailure(error="no_vehicles", description="")
    with pytest.raises(errors.ConnectFailed) as failed:
        await world.gateway.connect("car-1", code="", state=url.state, failure=failure)
    assert failed.value.reason == "CONNECT_NO_VEHICLES"
    assert "connect_error_description" not in failed.value.metadata
    panel = await world.gateway.get_vehicle("car-1")
    assert panel.vehicle.status is ConnectionStatus.ACTIVE
    assert "the connection is unchanged" in (panel.vehicle.status_reason or "")
    telemetry = await world.gateway.get_telemetry(
        "car-1", fields=frozenset({TelemetryField.ODOMETER}), max_age=None
    )
    assert telemetry.readings[TelemetryField.ODOMETER].value is not None


async def test_an_unknown_error_is_reported_as_given(world: World) -> None:
    """A code nobody documented is named by the reason all the same and kept as given in
    the metadata and the vehicle's status reason, without a hint."""
    url = await world.gateway.get_connect_url("car-1")
    failure = ConnectFailure(error="brand.new-Error", description="Something new happened")
    with pytest.raises(errors.ConnectFailed) as failed:
        await world.gateway.connect("car-1", code="", state=url.state, failure=failure)
    assert failed.value.reason == "CONNECT_BRAND_NEW_ERROR"
    assert failed.value.metadata["connect_error"] == "brand.new-Error"
    panel = await world.gateway.get_vehicle("car-1")
    assert (panel.vehicle.status_reason or "").endswith("brand.new-Error (Something new happened)")


async def test_a_failed_redirect_for_another_vehicles_state_records_nothing(
    world: World,
) -> None:
    """The state is checked first: one issued for another vehicle is INVALID_ARGUMENT on
    `state`, and neither vehicle notes a failure."""
    await world.gateway.get_connect_url("car-2")
    url = await world.gateway.get_connect_url("car-1")
    with pytest.raises(errors.InvalidArgument) as refused:
        await world.gateway.connect("car-2", code="", state=url.state, failure=DENIED)
    assert refused.value.violations[0].field == "state"
    for vehicle_id in ("car-1", "car-2"):
        assert (await world.gateway.get_vehicle(vehicle_id)).vehicle.status_reason is None


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("access_denied", "CONNECT_ACCESS_DENIED"),
        ("invalid_subscription", "CONNECT_INVALID_SUBSCRIPTION"),
        ("user_manually_returned_to_application", "CONNECT_USER_MANUALLY_RETURNED_TO_APPLICATION"),
        ("--", "CONNECT_FAILED"),
        ("é", "CONNECT_FAILED"),
        ("a" * 64, "CONNECT_" + "A" * 55),
        ("x" * 54 + "_y", "CONNECT_" + "X" * 54),
    ],
)
def test_reasons_name_the_error_in_google_rpcs_shape(error: str, reason: str) -> None:
    """The reason is CONNECT_ and the code in capitals, at most 63 characters of
    UPPER_SNAKE_CASE, never ending in `_`; a code with nothing to name it by is
    CONNECT_FAILED."""
    assert reason_of(error) == reason
    assert len(reason) <= 63
    assert REASON_SHAPE.fullmatch(reason)
