"""Smartcar error bodies become the right class, with every field and retry-after read."""

from __future__ import annotations

import copy
import inspect
import pickle
from datetime import timedelta
from email.utils import format_datetime

import pytest

import clients.smartcar.errors as errors_module
from clients.smartcar import (
    AccessDenied,
    AppRateLimited,
    AuthenticationError,
    BillingError,
    CompatibilityError,
    ConnectedServicesAccountError,
    PermissionDenied,
    RateLimited,
    Resolution,
    ResourceNotFound,
    ServerError,
    SmartcarAPIError,
    SmartcarError,
    SmartcarProtocolError,
    SmartcarVehicles,
    UpstreamError,
    ValidationError,
    VehicleAsleep,
    VehicleNotCapable,
    VehicleRateLimited,
    VehicleRequestLimitReached,
    VehicleStateError,
)
from tests.unit.smartcar.fakes import ACCESS_TOKEN, NOW, VEHICLE_ID, FakeSmartcar, error_body

BY_TYPE_AND_CODE = [
    ("AUTHENTICATION", None, 401, AuthenticationError),
    ("PERMISSION", None, 403, PermissionDenied),
    ("AUTHENTICATION", "ACCESS_DENIED", 403, AccessDenied),
    ("VALIDATION", "PARAMETER", 400, ValidationError),
    ("RESOURCE_NOT_FOUND", "PATH", 404, ResourceNotFound),
    ("VEHICLE_STATE", "ASLEEP", 409, VehicleAsleep),
    ("VEHICLE_STATE", "DOOR_OPEN", 409, VehicleStateError),
    ("VEHICLE_STATE", "IN_MOTION", 409, VehicleStateError),
    ("RATE_LIMIT", "VEHICLE", 429, VehicleRateLimited),
    ("RATE_LIMIT", "SMARTCAR_API", 429, AppRateLimited),
    ("BILLING", "VEHICLE_REQUEST_LIMIT", 430, VehicleRequestLimitReached),
    ("BILLING", "VEHICLE_LIMIT", 430, BillingError),
    ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE", 501, VehicleNotCapable),
    ("COMPATIBILITY", "SMARTCAR_NOT_CAPABLE", 501, CompatibilityError),
    ("CONNECTED_SERVICES_ACCOUNT", "AUTHENTICATION_FAILED", 400, ConnectedServicesAccountError),
    ("UPSTREAM", "NO_RESPONSE", 502, UpstreamError),
    ("SERVER", "INTERNAL", 500, ServerError),
    # Unknown types fall back on the status, then on the root.
    ("SOMETHING_NEW", "X", 409, VehicleStateError),
    ("SOMETHING_NEW", "X", 429, RateLimited),
    ("SOMETHING_NEW", "X", 503, ServerError),
    ("SOMETHING_NEW", "X", 418, SmartcarAPIError),
    ("SOMETHING_NEW", "X", 400, SmartcarAPIError),
]


@pytest.mark.parametrize(("type_", "code", "status", "expected"), BY_TYPE_AND_CODE)
async def test_error_body_maps_to_its_class(
    fake: FakeSmartcar,
    vehicles: SmartcarVehicles,
    type_: str,
    code: str | None,
    status: int,
    expected: type[SmartcarAPIError],
) -> None:
    """Each documented type/code (and unknown ones by status) raises exactly its class."""
    fake.reply(status, json_body=error_body(type_, code, status))
    with pytest.raises(SmartcarAPIError) as caught:
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert type(caught.value) is expected
    assert (caught.value.type, caught.value.code, caught.value.status) == (type_, code, status)


async def test_error_keeps_every_documented_field(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """Description, doc URL, request id, resolution and suggested message are kept."""
    body = error_body(
        "CONNECTED_SERVICES_ACCOUNT",
        "AUTHENTICATION_FAILED",
        400,
        resolution={"type": "REAUTHENTICATE", "url": "https://connect.smartcar.com/reauth"},
    )
    fake.reply(400, json_body=body)
    with pytest.raises(ConnectedServicesAccountError) as caught:
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    error = caught.value
    assert error.description == body["description"]
    assert error.doc_url == body["docURL"]
    assert error.request_id == "req-err-1"
    assert error.resolution == Resolution("REAUTHENTICATE", "https://connect.smartcar.com/reauth")
    assert error.suggested_user_message == "Please try again later."
    assert "CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED" in str(error)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("RETRY_LATER", Resolution("RETRY_LATER")),
        ({"type": None}, Resolution()),
        (None, Resolution()),
        (42, Resolution()),
    ],
)
async def test_resolution_may_be_an_object_a_string_or_null(
    fake: FakeSmartcar, vehicles: SmartcarVehicles, raw: object, expected: Resolution
) -> None:
    """A bare-string resolution keeps its type (the official SDK lost it)."""
    fake.reply(429, json_body=error_body("RATE_LIMIT", "VEHICLE", 429, resolution=raw))
    with pytest.raises(RateLimited) as caught:
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert caught.value.resolution == expected


async def test_request_id_falls_back_on_the_header(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """Without requestId in the body, the sc-request-id header names the request."""
    body = error_body("SERVER", "INTERNAL", 500)
    del body["requestId"]
    fake.reply(500, json_body=body, headers={"SC-Request-Id": "hdr-7"})
    with pytest.raises(ServerError) as caught:
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert caught.value.request_id == "hdr-7"


@pytest.mark.parametrize(
    ("header", "value", "expected_s"),
    [
        ("retry-after", "30", 30.0),
        ("Retry-After", "2.5", 2.5),
        ("RETRY-AFTER", format_datetime(NOW + timedelta(seconds=90), usegmt=True), 90.0),
        ("retry-after", format_datetime(NOW - timedelta(seconds=90), usegmt=True), 0.0),
        ("retry-after", "soon", None),
        ("retry-after", "", None),
        ("x-other", "30", None),
    ],
)
async def test_retry_after_reads_seconds_or_an_http_date(
    fake: FakeSmartcar,
    vehicles: SmartcarVehicles,
    header: str,
    value: str,
    expected_s: float | None,
) -> None:
    """retry-after is read in any case, as seconds or an HTTP date; garbage gives None."""
    fake.reply(429, json_body=error_body("RATE_LIMIT", "VEHICLE", 429), headers={header: value})
    with pytest.raises(VehicleRateLimited) as caught:
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert caught.value.retry_after_s == expected_s


async def test_error_answer_without_a_type_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehicles
) -> None:
    """A JSON error answer that is not a v2 error body cannot be trusted: protocol error."""
    fake.reply(404, json_body={"message": "Not Found"})
    with pytest.raises(SmartcarProtocolError) as caught:
        await vehicles.odometer(ACCESS_TOKEN, VEHICLE_ID)
    assert caught.value.status == 404


def _all_subclasses(cls: type[SmartcarError]) -> set[type[SmartcarError]]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub, *_all_subclasses(sub)}
    return found


def test_every_error_class_is_drawn_in_the_module_tree() -> None:
    """The tree in errors.py's docstring names every error class, so it cannot drift."""
    doc = inspect.getdoc(errors_module) or ""
    for cls in _all_subclasses(SmartcarError) | {SmartcarError}:
        assert f" {cls.__name__} " in f" {doc} ".replace("\n", " "), cls.__name__


@pytest.mark.parametrize(
    "error",
    [
        VehicleRateLimited(status=429, type="RATE_LIMIT", code="VEHICLE", retry_after_s=3.0),
        SmartcarProtocolError("not JSON", status=502),
    ],
    ids=["api", "protocol"],
)
def test_errors_survive_pickling_and_copying(error: SmartcarError) -> None:
    """Keyword-only errors still pickle and deep-copy with every field intact."""
    pickled = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    for clone in (pickled, copy.deepcopy(error)):
        assert type(clone) is type(error)
        assert vars(clone) == vars(error)
        assert str(clone) == str(error)
