"""Before and around Connect, over a real server and the simulator over HTTP (API V3):
CheckCompatibility, Connect URLs that mark required permissions, and Connect redirects
that carry Smartcar's `error`."""

from __future__ import annotations

import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import pytest
from google.rpc import error_details_pb2

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.model import AuditQuery
from gateway.edge.clock import ManualClock
from tests.instants import START
from tests.rpc.rig import (
    Rig,
    error_info_of,
    gateway_against,
    gateway_settings,
    simulator,
    status_of,
)

UNKNOWN_MAKE_VIN = "SALGS2SE1LA000001"
DEFAULT_REQUIRED = [
    "control_security",
    "read_location",
    "read_odometer",
    "read_security",
    "read_vehicle_info",
    "read_vin",
]


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """A gateway whose new connections use API V3, pointed at a fresh simulator."""
    settings = gateway_settings(tmp_path, VG_SMARTCAR_API="v3")
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as running:
        yield running


async def catalog_vin(rig: Rig, powertrain: str) -> str:
    """The VIN of the simulator's first catalog car with this powertrain."""
    vehicles = (await rig.sim("GET", "/sim/vehicles"))["vehicles"]
    return str(next(v["vin"] for v in vehicles if v["powertrain"] == powertrain))


def by_permission(answer: pb.CheckCompatibilityResponse) -> dict[str, Any]:
    """Index a compatibility answer's permissions by name."""
    return {p.permission: p for p in answer.permissions}


def bad_fields(error: grpc.aio.AioRpcError) -> list[str]:
    """The fields a BadRequest detail names."""
    for packed in status_of(error).details:
        if packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            detail = error_details_pb2.BadRequest.FromString(packed.value)
            return [v.field for v in detail.field_violations]
    raise AssertionError("no BadRequest detail")


async def redirect_of(rig: Rig, url: str, **sim_params: str) -> dict[str, str]:
    """Open a Connect URL at the simulator and return the redirect's query."""
    target = url + ("&" + urllib.parse.urlencode(sim_params) if sim_params else "")
    redirect = await rig.http.get(target)
    assert redirect.status_code == 302, redirect.text
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    return {key: values[0] for key, values in query.items()}


# --- CheckCompatibility ---------------------------------------------------------------------


async def test_a_catalog_car_is_checked_per_permission_and_costs_no_allowance(
    rig: Rig,
) -> None:
    """An ICE car of the catalog is compatible: capable of fuel and of locking (required),
    not of a battery (VEHICLE_NOT_CAPABLE); one request at Smartcar, billed to no car."""
    connected = await rig.connect("car-1")
    spent = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    vin = await catalog_vin(rig, "ICE")
    answer = await rig.stub.CheckCompatibility(
        pb.CheckCompatibilityRequest(vin=vin.lower(), country="us")
    )
    assert (answer.vin, answer.country, answer.compatible, answer.reason) == (vin, "US", True, "")
    permissions = by_permission(answer)
    assert sorted(permissions) == sorted(
        set(DEFAULT_REQUIRED)
        | {"read_fuel", "read_battery", "read_tires", "read_engine_oil"}
        | {"read_charge", "control_charge"}
    )
    fuel, battery = permissions["read_fuel"], permissions["read_battery"]
    assert (fuel.capability, fuel.required) == (pb.PERMISSION_CAPABLE, False)
    assert (battery.capability, battery.reason) == (
        pb.PERMISSION_NOT_CAPABLE,
        "VEHICLE_NOT_CAPABLE",
    )
    assert [(e.endpoint, e.capable) for e in battery.endpoints] == [("/battery", False)]
    security = permissions["control_security"]
    assert (security.capability, security.required) == (pb.PERMISSION_CAPABLE, True)
    assert list(answer.unsupported_required_permissions) == []
    assert answer.HasField("checked_at")
    stats = await rig.stats()
    assert stats["requests"]["by_endpoint"]["compatibility"] == 1
    assert set(stats["billed_this_month"]) <= {connected.smartcar_vehicle_id}
    after = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    assert after.requests_this_month == spent.requests_this_month


async def test_an_unknown_make_and_a_foreign_car_say_why(rig: Rig) -> None:
    """A VIN of a make Smartcar does not support is not compatible (MAKE_NOT_COMPATIBLE):
    every permission NOT_CAPABLE, every required one unsupported. A car registered outside
    the US is compatible, with every permission UNKNOWN (Smartcar checks US cars only)."""
    unknown = await rig.stub.CheckCompatibility(
        pb.CheckCompatibilityRequest(vin=UNKNOWN_MAKE_VIN, country="US")
    )
    assert (unknown.compatible, unknown.reason) == (False, "MAKE_NOT_COMPATIBLE")
    assert {(p.capability, p.reason) for p in unknown.permissions} == {
        (pb.PERMISSION_NOT_CAPABLE, "MAKE_NOT_COMPATIBLE")
    }
    assert list(unknown.unsupported_required_permissions) == DEFAULT_REQUIRED
    abroad = await rig.stub.CheckCompatibility(
        pb.CheckCompatibilityRequest(vin=await catalog_vin(rig, "BEV"), country="DE")
    )
    assert abroad.compatible
    assert {p.capability for p in abroad.permissions} == {pb.PERMISSION_CAPABILITY_UNKNOWN}


@pytest.mark.parametrize(
    ("request_message", "fields"),
    [
        (pb.CheckCompatibilityRequest(country="US"), ["vin"]),
        (pb.CheckCompatibilityRequest(vin="1FTFW1E50NFA0000I", country="US"), ["vin"]),
        (pb.CheckCompatibilityRequest(vin="1FTFW1E50NFA00001", country="UK"), ["country"]),
        (pb.CheckCompatibilityRequest(vin="1FTFW1E50NFA00001"), ["country"]),
        (pb.CheckCompatibilityRequest(vin="short", country="USA"), ["vin", "country"]),
    ],
)
async def test_a_bad_vin_or_country_is_invalid_argument_naming_it(
    rig: Rig, request_message: pb.CheckCompatibilityRequest, fields: list[str]
) -> None:
    """A VIN that is not 17 characters of the VIN alphabet, or a country that is not an
    assigned ISO 3166-1 alpha-2 code, is INVALID_ARGUMENT naming the field; Smartcar is not
    asked."""
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.CheckCompatibility(request_message)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(refused.value) == fields
    assert "compatibility" not in (await rig.stats())["requests"]["by_endpoint"]


async def test_smartcar_failing_a_check_is_unavailable_then_it_works(rig: Rig) -> None:
    """A Smartcar 500 on the check is UNAVAILABLE (UPSTREAM_UNAVAILABLE, Smartcar's type
    and code in the metadata), never UNKNOWN or INTERNAL; the next check is answered."""
    await rig.sim(
        "POST", "/sim/faults", {"kind": "server_error", "path": "compatibility", "count": 1}
    )
    check = pb.CheckCompatibilityRequest(vin="1FTFW1E50NFA00001", country="US")
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await rig.stub.CheckCompatibility(check)
    assert failed.value.code() is grpc.StatusCode.UNAVAILABLE
    info = error_info_of(failed.value)
    assert (info.reason, info.metadata["smartcar_type"]) == ("UPSTREAM_UNAVAILABLE", "SERVER")
    assert (await rig.stub.CheckCompatibility(check)).compatible


# --- Connect URLs and required permissions --------------------------------------------------


async def test_required_permissions_cannot_be_left_out_of_a_grant(rig: Rig) -> None:
    """The Connect URL marks the rental flow's permissions `required:`; an owner who would
    untick control_security and read_tires still grants control_security (its box is
    locked), while read_tires is missing."""
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    scope = urllib.parse.parse_qs(urllib.parse.urlsplit(issued.url).query)["scope"][0].split()
    assert sorted(s.removeprefix("required:") for s in scope if s.startswith("required:")) == (
        DEFAULT_REQUIRED
    )
    assert "read_fuel" in scope
    assert "read_tires" in scope
    query = await redirect_of(rig, issued.url, sim_withhold="control_security read_tires")
    vehicle = await rig.stub.Connect(
        pb.ConnectRequest(vehicle_id="car-1", user_id=query["user_id"], state=issued.state)
    )
    assert "control_security" in vehicle.granted_permissions
    assert list(vehicle.missing_permissions) == ["read_tires"]
    locked = await rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="lock-1"))
    assert locked.state == pb.SUCCEEDED


async def test_the_required_permissions_are_configuration(tmp_path: Path) -> None:
    """VG_REQUIRED_PERMISSIONS names what Connect URLs mark required and what
    CheckCompatibility calls required: an EV cannot serve a required read_fuel."""
    settings = gateway_settings(
        tmp_path, VG_SMARTCAR_API="v3", VG_REQUIRED_PERMISSIONS="read_fuel,control_security"
    )
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
        scope = urllib.parse.parse_qs(urllib.parse.urlsplit(issued.url).query)["scope"][0]
        assert sorted(s for s in scope.split() if s.startswith("required:")) == [
            "required:control_security",
            "required:read_fuel",
        ]
        ev = await rig.stub.CheckCompatibility(
            pb.CheckCompatibilityRequest(vin=await catalog_vin(rig, "BEV"), country="US")
        )
    assert ev.compatible
    assert list(ev.unsupported_required_permissions) == ["read_fuel"]


# --- Connect redirects that carry an error --------------------------------------------------


async def test_a_denied_connect_is_reported_recorded_and_audited(rig: Rig) -> None:
    """The owner denies access: Connect with the redirect's error and description is
    FAILED_PRECONDITION (CONNECT_ACCESS_DENIED, the error in the metadata); GetVehicle
    shows why in the status reason, the state is used up, and the audit trail keeps it."""
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    query = await redirect_of(rig, issued.url, sim_deny="1")
    assert query["state"] == issued.state
    failed_connect = pb.ConnectRequest(
        vehicle_id="car-1",
        state=query["state"],
        error=query["error"],
        error_description=query["error_description"],
    )
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await rig.stub.Connect(failed_connect)
    assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(failed.value)
    assert info.reason == "CONNECT_ACCESS_DENIED"
    assert dict(info.metadata) == {
        "vehicle_id": "car-1",
        "connect_error": "access_denied",
        "connect_error_description": "User denied access to application",
    }
    vehicle = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    assert vehicle.status == pb.NOT_CONNECTED
    assert "access_denied (User denied access to application)" in vehicle.status_reason
    with pytest.raises(grpc.aio.AioRpcError) as reused:
        await rig.stub.Connect(failed_connect)
    assert reused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(reused.value) == ["state"]
    trail = await rig.running.gateway.audit.find(AuditQuery(vehicle_id="car-1"))
    assert [(e.method, e.outcome, e.reason) for e in trail][-1] == (
        "Connect",
        "FAILED_PRECONDITION",
        "CONNECT_ACCESS_DENIED",
    )


async def test_an_unknown_connect_error_is_reported_as_given(rig: Rig) -> None:
    """An error code nobody documented still names the reason and is kept as given; a
    connected car whose new Connect fails stays ACTIVE; the longest code's reason is
    audited whole."""
    await rig.connect("car-1")
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await rig.stub.Connect(
            pb.ConnectRequest(
                vehicle_id="car-1",
                state=issued.state,
                error="vehicle_offline_for_service",
                error_description="Ce véhicule est en révision",
            )
        )
    assert failed.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    info = error_info_of(failed.value)
    assert info.reason == "CONNECT_VEHICLE_OFFLINE_FOR_SERVICE"
    assert info.metadata["connect_error_description"] == "Ce véhicule est en révision"
    vehicle = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
    assert vehicle.status == pb.ACTIVE
    assert "vehicle_offline_for_service (Ce véhicule est en révision)" in vehicle.status_reason
    longest = "e" * 64  # the longest error accepted: its reason still fits the audit trail
    issued = await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    with pytest.raises(grpc.aio.AioRpcError) as failed_again:
        await rig.stub.Connect(
            pb.ConnectRequest(vehicle_id="car-1", state=issued.state, error=longest)
        )
    assert error_info_of(failed_again.value).reason == "CONNECT_" + "E" * 55
    trail = await rig.running.gateway.audit.find(AuditQuery(vehicle_id="car-1", method="Connect"))
    assert trail[0].reason == "CONNECT_" + "E" * 55


@pytest.mark.parametrize(
    ("request_message", "fields"),
    [
        (
            pb.ConnectRequest(vehicle_id="car-1", state="st", error="access_denied", user_id="u"),
            ["error"],
        ),
        (pb.ConnectRequest(vehicle_id="car-1", state="st", error="x" * 65), ["error"]),
        (
            pb.ConnectRequest(
                vehicle_id="car-1", state="st", error="access_denied", error_description="a\x00b"
            ),
            ["error_description"],
        ),
    ],
)
async def test_a_malformed_connect_error_is_invalid_argument(
    rig: Rig, request_message: pb.ConnectRequest, fields: list[str]
) -> None:
    """An error beside a user id, an over-long error, or a description with control
    characters is INVALID_ARGUMENT naming the field, before the state is looked at."""
    await rig.stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.stub.Connect(request_message)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert bad_fields(refused.value) == fields
