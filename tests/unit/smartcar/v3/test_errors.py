"""V3 error bodies (errors[]) and v2 flat bodies on V3 endpoints become the same classes."""

from __future__ import annotations

from typing import Any

import pytest

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
    SmartcarProtocolError,
    UpstreamError,
    ValidationError,
    VehicleAsleep,
    VehicleNotCapable,
    VehicleRateLimited,
    VehicleRequestLimitReached,
    VehicleStateError,
)
from clients.smartcar.v3 import SmartcarVehiclesV3
from tests.unit.smartcar.fakes import USER_ID, VEHICLE_ID, FakeSmartcar, error_body
from tests.unit.smartcar.v3.fakes import APP_TOKEN, v3_error

V3_CLASSES = [
    (401, "AUTHENTICATION", "UNAUTHORIZED", AuthenticationError),
    (403, "AUTHENTICATION", "ACCESS_DENIED", AccessDenied),
    (403, "PERMISSION", None, PermissionDenied),
    (400, "VALIDATION", "INVALID_INPUT_FORMAT", ValidationError),
    (400, "VALIDATION", "BAD_REQUEST", ValidationError),
    (404, "RESOURCE_NOT_FOUND", "PATH", ResourceNotFound),
    (409, "VEHICLE_STATE", "ASLEEP", VehicleAsleep),
    (409, "VEHICLE_STATE", "UNREACHABLE", VehicleStateError),
    (429, "RATE_LIMIT", "VEHICLE", VehicleRateLimited),
    (429, "RATE_LIMIT", "SMARTCAR_API", AppRateLimited),
    (430, "BILLING", "VEHICLE_REQUEST_LIMIT", VehicleRequestLimitReached),
    (430, "BILLING", "VEHICLE_LIMIT", BillingError),
    (430, "BILLING", "INVALID_PLAN", BillingError),
    (501, "COMPATIBILITY", "MAKE_NOT_COMPATIBLE", CompatibilityError),
    (501, "COMPATIBILITY", "VEHICLE_NOT_CAPABLE", VehicleNotCapable),
    (400, "CONNECTED_SERVICES_ACCOUNT", "VIRTUAL_KEY_REQUIRED", ConnectedServicesAccountError),
    (502, "UPSTREAM", "RATE_LIMIT", UpstreamError),
    (500, "SERVER", "INTERNAL", ServerError),
    # The older spec's lower-case codes without a type fall back on the status.
    (404, None, "not_found", ResourceNotFound),
    (429, None, "too_many", RateLimited),
    (503, "SOMETHING_NEW", "X", ServerError),
    (418, "SOMETHING_NEW", "X", SmartcarAPIError),
]


async def _raised(fake: FakeSmartcar, vehicles: SmartcarVehiclesV3) -> SmartcarAPIError:
    with pytest.raises(SmartcarAPIError) as caught:
        await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    return caught.value


@pytest.mark.parametrize(("status", "type_", "code", "expected"), V3_CLASSES)
async def test_v3_error_bodies_map_to_the_shared_classes(
    fake: FakeSmartcar,
    vehicles: SmartcarVehiclesV3,
    status: int,
    type_: str | None,
    code: str | None,
    expected: type[SmartcarAPIError],
) -> None:
    """Each V3 type/code raises exactly the class v2's body would (plus AccessDenied)."""
    fake.reply(status, json_body=v3_error(status, type_, code))
    error = await _raised(fake, vehicles)
    assert type(error) is expected
    assert (error.status, error.type, error.code) == (status, type_, code)


async def test_access_denied_is_no_authentication_error(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """403 ACCESS_DENIED (another user's car): a permission problem a new token cannot fix."""
    fake.reply(403, json_body=v3_error(403, "AUTHENTICATION", "ACCESS_DENIED"))
    error = await _raised(fake, vehicles)
    assert isinstance(error, PermissionDenied)
    assert not isinstance(error, AuthenticationError)


async def test_every_v3_field_is_read(fake: FakeSmartcar, vehicles: SmartcarVehiclesV3) -> None:
    """detail, links.about, resolution, suggestedUserMessage, request id, retry-after."""
    body = v3_error(
        429,
        "RATE_LIMIT",
        "VEHICLE",
        detail="Too many requests to this vehicle.",
        links={"about": "https://smartcar.com/docs/errors/api-errors/v3/rate-limit"},
        resolution={"type": "RETRY_LATER"},
        suggestedUserMessage="Try again in a minute.",
        meta={"requestId": "rq-meta"},
    )
    fake.reply(429, json_body=body, headers={"retry-after": "42", "sc-request-id": "rq-header"})
    error = await _raised(fake, vehicles)
    assert error.description == "Too many requests to this vehicle."
    assert error.doc_url == "https://smartcar.com/docs/errors/api-errors/v3/rate-limit"
    assert error.resolution == Resolution("RETRY_LATER")
    assert error.suggested_user_message == "Try again in a minute."
    assert error.request_id == "rq-meta"
    assert error.retry_after_s == 42.0


@pytest.mark.parametrize(
    ("body", "headers", "request_id"),
    [
        ({"errors": [{"type": "SERVER", "code": "INTERNAL"}]}, {"sc-request-id": "h"}, "h"),
        (
            {"errors": [{"type": "SERVER", "code": "INTERNAL"}], "meta": {"requestId": "b"}},
            {"sc-request-id": "h"},
            "b",
        ),
        ({"errors": [{"type": "SERVER", "requestId": "e"}]}, {}, "e"),
        ({"errors": [{"type": "SERVER"}]}, {}, None),
    ],
)
async def test_request_id_from_error_meta_body_or_header(
    fake: FakeSmartcar,
    vehicles: SmartcarVehiclesV3,
    body: Any,
    headers: dict[str, str],
    request_id: str | None,
) -> None:
    """The error's own id wins, then the body's meta, then sc-request-id."""
    fake.reply(500, json_body=body, headers=headers)
    assert (await _raised(fake, vehicles)).request_id == request_id


async def test_title_stands_in_for_a_missing_detail(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """ACCESS_DENIED examples have neither links nor resolution: title is the description."""
    body = {
        "errors": [
            {
                "status": "403",
                "type": "AUTHENTICATION",
                "code": "ACCESS_DENIED",
                "title": "Access Denied",
            }
        ]
    }
    fake.reply(403, json_body=body)
    error = await _raised(fake, vehicles)
    assert (error.description, error.doc_url, error.resolution) == (
        "Access Denied",
        None,
        Resolution(),
    )


async def test_several_errors_keep_every_detail(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """The validation example sends two errors: the first names the class, both details stay."""
    body = {
        "errors": [
            {
                "status": "400",
                "type": "VALIDATION",
                "code": "INVALID_INPUT_FORMAT",
                "detail": "Invalid latitude.",
            },
            {
                "status": "400",
                "type": "VALIDATION",
                "code": "INVALID_INPUT_FORMAT",
                "detail": "Invalid longitude.",
            },
        ]
    }
    fake.reply(400, json_body=body)
    error = await _raised(fake, vehicles)
    assert type(error) is ValidationError
    assert error.description == "Invalid latitude.; Invalid longitude."
    assert "Invalid longitude." in str(error)


async def test_a_v2_flat_body_on_a_v3_endpoint_is_read(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """Where Smartcar still sends v2 bodies, they read as before."""
    fake.reply(409, json_body=error_body("VEHICLE_STATE", "ASLEEP", 409))
    error = await _raised(fake, vehicles)
    assert type(error) is VehicleAsleep
    assert (error.request_id, error.doc_url) == ("req-err-1", "https://smartcar.com/docs/errors")


@pytest.mark.parametrize(
    "body",
    [
        {"errors": []},
        {"errors": [{"title": "no type or code"}]},
        {"errors": "broken"},
        {"message": "Not Found"},
        ["errors"],
    ],
    ids=["empty", "untyped", "not-a-list", "gateway-json", "list"],
)
async def test_an_error_answer_smartcar_did_not_shape_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3, body: Any
) -> None:
    """An error answer naming no type or code (a proxy's, say) is not trusted."""
    fake.reply(404, json_body=body)
    with pytest.raises(SmartcarProtocolError) as caught:
        await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert caught.value.status == 404


async def test_a_non_json_error_is_a_protocol_error(
    fake: FakeSmartcar, vehicles: SmartcarVehiclesV3
) -> None:
    """An HTML 502 from a load balancer is a protocol error with its status."""
    fake.reply(502, content=b"<html>bad gateway</html>", headers={"content-type": "text/html"})
    with pytest.raises(SmartcarProtocolError) as caught:
        await vehicles.signals(APP_TOKEN, VEHICLE_ID, user_id=USER_ID)
    assert caught.value.status == 502
