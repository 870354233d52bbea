"""V3Endpoints read the fixed variable names; ApplicationCredentials hold several secrets."""

from __future__ import annotations

from typing import Any

import pytest

from clients.smartcar import Secret
from clients.smartcar.v3 import ApplicationCredentials, V3Endpoints


def test_endpoints_default_to_production() -> None:
    """Without configuration: vehicle.api, iam and management.api at smartcar.com."""
    endpoints = V3Endpoints()
    assert endpoints.vehicle_origin == "https://vehicle.api.smartcar.com"
    assert endpoints.iam_origin == "https://iam.smartcar.com"
    assert endpoints.management_origin == "https://management.api.smartcar.com"
    assert endpoints.token_url == "https://iam.smartcar.com/oauth2/token"


def test_endpoints_from_env_read_the_fixed_names() -> None:
    """SMARTCAR_VEHICLE_API_V3_ORIGIN, SMARTCAR_IAM_ORIGIN, SMARTCAR_MANAGEMENT_API_V3_ORIGIN."""
    endpoints = V3Endpoints.from_env(
        {
            "SMARTCAR_VEHICLE_API_V3_ORIGIN": "http://127.0.0.1:8770/",
            "SMARTCAR_IAM_ORIGIN": "http://127.0.0.1:8771",
            "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": "http://127.0.0.1:8772",
            "SMARTCAR_API_ORIGIN": "http://ignored.test",
        }
    )
    assert endpoints == V3Endpoints(
        vehicle_origin="http://127.0.0.1:8770",
        iam_origin="http://127.0.0.1:8771",
        management_origin="http://127.0.0.1:8772",
    )
    assert endpoints.token_url == "http://127.0.0.1:8771/oauth2/token"


def test_endpoints_from_env_keep_production_for_empty_variables() -> None:
    """An empty variable counts as unset."""
    assert V3Endpoints.from_env({"SMARTCAR_IAM_ORIGIN": ""}) == V3Endpoints()


def test_an_iam_origin_with_the_token_path_is_not_doubled() -> None:
    """A full token URL configured as the IAM origin still gives one /oauth2/token."""
    endpoints = V3Endpoints(iam_origin="https://iam.example.test/oauth2/token/")
    assert endpoints.token_url == "https://iam.example.test/oauth2/token"


def test_for_base_url_points_all_three_at_one_server() -> None:
    """One simulator serves the vehicle API, IAM and management API."""
    endpoints = V3Endpoints.for_base_url("http://localhost:9000/")
    assert {endpoints.vehicle_origin, endpoints.iam_origin, endpoints.management_origin} == {
        "http://localhost:9000"
    }


@pytest.mark.parametrize("url", ["localhost:9000", "ftp://x", "https://", "http://x/?q=1", ""])
def test_endpoints_reject_anything_but_absolute_http_urls(url: str) -> None:
    """A malformed origin is a ValueError naming it."""
    with pytest.raises(ValueError, match="management_origin"):
        V3Endpoints(management_origin=url)


def test_credentials_keep_the_secrets_in_order_and_hidden() -> None:
    """Several secrets are kept in order; the repr shows none of them."""
    credentials = ApplicationCredentials(
        client_id="client_1", client_secrets=[Secret("s-one-1234"), Secret("s-two-5678")]
    )
    assert credentials.client_secrets == (Secret("s-one-1234"), Secret("s-two-5678"))
    assert "s-one-1234" not in repr(credentials)
    assert "s-two-5678" not in repr(credentials)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"client_id": ""}, "client_id"),
        ({"client_secrets": ()}, "at least one"),
        ({"client_secrets": Secret("one")}, "sequence"),
        ({"client_secrets": "plain"}, "sequence"),
        ({"client_secrets": ("plain",)}, "Secret"),
        ({"client_secrets": (Secret(""),)}, "non-empty"),
        ({"client_secrets": (Secret("same"), Secret("same"))}, "repeat"),
    ],
)
def test_credentials_refuse_bad_input(kwargs: dict[str, Any], match: str) -> None:
    """A missing id, no secret, a bare or plain secret, or a repeated one is a ValueError."""
    arguments: dict[str, Any] = {"client_id": "client_1", "client_secrets": (Secret("x"),)}
    with pytest.raises(ValueError, match=match):
        ApplicationCredentials(**{**arguments, **kwargs})
