"""Smartcar client errors as the core's errors: the token endpoint's transient failures."""

from __future__ import annotations

import pytest

from clients import smartcar as sc
from clients.smartcar.errors import api_error_class
from gateway.core import errors
from gateway.edge.smartcar.failures import translate


@pytest.mark.parametrize(
    ("oauth_error", "status"), [("server_error", 500), ("temporarily_unavailable", 503)]
)
def test_a_token_endpoint_that_is_down_is_unavailable_not_a_refusal(
    oauth_error: str, status: int
) -> None:
    """RFC 6749's server_error / temporarily_unavailable mean "try again": UNAVAILABLE."""
    translated = translate(sc.OAuthError(error=oauth_error, description=None, status=status))
    assert isinstance(translated, errors.UpstreamUnavailable)


def test_a_refused_client_is_still_a_refusal() -> None:
    """invalid_client is the application's own problem: UpstreamRejected."""
    translated = translate(sc.InvalidClient(error="invalid_client", description=None, status=401))
    assert isinstance(translated, errors.UpstreamRejected)


# Every documented API error type and code (reference/smartcar-docs/api-reference_api-errors.md),
# and whether an answer of that kind to a command may mean the car acted.
DOCUMENTED_ERRORS = [
    ("AUTHENTICATION", None, 401, False),
    ("BILLING", "INVALID_PLAN", 430, False),
    ("BILLING", "VEHICLE_LIMIT", 430, False),
    ("BILLING", "VEHICLE_REQUEST_LIMIT", 430, False),
    ("BILLING", "ACCOUNT_SUSPENDED", 430, False),
    ("COMPATIBILITY", "MAKE_NOT_COMPATIBLE", 501, False),
    ("COMPATIBILITY", "SMARTCAR_NOT_CAPABLE", 501, False),
    ("COMPATIBILITY", "VEHICLE_NOT_CAPABLE", 501, False),
    ("CONNECTED_SERVICES_ACCOUNT", "ACCOUNT_ISSUE", 400, False),
    ("CONNECTED_SERVICES_ACCOUNT", "AUTHENTICATION_FAILED", 400, False),
    ("CONNECTED_SERVICES_ACCOUNT", "NO_VEHICLES", 400, False),
    ("CONNECTED_SERVICES_ACCOUNT", "SUBSCRIPTION", 400, False),
    ("CONNECTED_SERVICES_ACCOUNT", "VEHICLE_MISSING", 400, False),
    ("CONNECTED_SERVICES_ACCOUNT", "PERMISSION", 400, False),
    ("CONNECTED_SERVICES_ACCOUNT", "VIRTUAL_KEY_REQUIRED", 400, False),
    ("PERMISSION", None, 403, False),
    ("RATE_LIMIT", "SMARTCAR_API", 429, False),
    ("RATE_LIMIT", "VEHICLE", 429, False),
    ("RESOURCE_NOT_FOUND", "PATH", 404, False),
    ("RESOURCE_NOT_FOUND", "VERSION", 404, False),
    ("SERVER", "INTERNAL", 500, True),
    ("SERVER", "MULTIPLE_RECORDS_FOUND", 500, True),
    ("SERVER", "RECORD_NOT_FOUND", 500, True),
    ("UPSTREAM", "INVALID_DATA", 502, True),
    ("UPSTREAM", "KNOWN_ISSUE", 502, True),
    ("UPSTREAM", "NO_RESPONSE", 502, True),
    ("UPSTREAM", "RATE_LIMIT", 502, False),
    ("UPSTREAM", "UNKNOWN_ISSUE", 502, True),
    ("VALIDATION", None, 400, False),
    ("VALIDATION", "PARAMETER", 400, False),
    ("VEHICLE_STATE", "ASLEEP", 409, False),
    ("VEHICLE_STATE", "CHARGING_IN_PROGRESS", 409, False),
    ("VEHICLE_STATE", "DOOR_OPEN", 409, False),
    ("VEHICLE_STATE", "IN_MOTION", 409, False),
    ("VEHICLE_STATE", "REMOTE_ACCESS_DISABLED", 409, False),
    ("VEHICLE_STATE", "TRUNK_OPEN", 409, False),
    ("VEHICLE_STATE", "UNKNOWN", 409, False),
    ("VEHICLE_STATE", "UNREACHABLE", 409, False),
    ("VEHICLE_STATE", "VEHICLE_OFFLINE_FOR_SERVICE", 409, False),
]


@pytest.mark.parametrize(("type_", "code", "status", "may_have_acted"), DOCUMENTED_ERRORS)
def test_only_answers_that_may_follow_the_car_acting_say_may_have_succeeded(
    type_: str, code: str | None, status: int, may_have_acted: bool
) -> None:
    """A command answer saying nothing reached the car never carries may_have_succeeded."""
    error = api_error_class(type_, code, status)(status=status, type=type_, code=code)
    translated = translate(error, command=True)
    if may_have_acted:
        assert isinstance(translated, errors.CommandOutcomeUnknown)
        assert translated.metadata["may_have_succeeded"] == "true"
    else:
        assert not isinstance(translated, errors.CommandOutcomeUnknown)
        assert "may_have_succeeded" not in getattr(translated, "metadata", {})


@pytest.mark.parametrize("command", [True, False])
def test_the_manufacturers_rate_limit_is_a_rate_limit_that_cools_the_car_down(
    command: bool,
) -> None:
    """UPSTREAM:RATE_LIMIT (502) is RateLimited on the car (a vehicle cooldown), not a 5xx."""
    error = sc.UpstreamError(status=502, type="UPSTREAM", code="RATE_LIMIT", retry_after_s=None)
    translated = translate(error, command=command)
    assert isinstance(translated, errors.RateLimited)
    assert translated.metadata["limit"] == "smartcar_oem"
    assert translated.retry_after_s == 60.0


def test_a_transport_failure_before_sending_is_not_unknown() -> None:
    """A command whose connection never opened did not reach the car."""
    error = sc.SmartcarTimeout("connect timed out", request_sent=False)
    assert not isinstance(translate(error, command=True), errors.CommandOutcomeUnknown)
