"""SmartcarEndpoints and ClientCredentials read the official SDK's environment names."""

from __future__ import annotations

import pytest

from clients.smartcar import ClientCredentials, Secret, SmartcarEndpoints


def test_endpoints_default_to_production() -> None:
    """Without configuration the endpoints are Smartcar's production servers."""
    endpoints = SmartcarEndpoints()
    assert endpoints.api_origin == "https://api.smartcar.com"
    assert endpoints.auth_url == "https://auth.smartcar.com/oauth/token"
    assert endpoints.connect_origin == "https://connect.smartcar.com"
    assert endpoints.management_origin == "https://management.smartcar.com"


def test_endpoints_from_env_read_the_sdk_variables() -> None:
    """Each SMARTCAR_*_ORIGIN variable sets its endpoint; trailing slashes are dropped."""
    endpoints = SmartcarEndpoints.from_env(
        {
            "SMARTCAR_API_ORIGIN": "http://127.0.0.1:8770/",
            "SMARTCAR_AUTH_ORIGIN": "http://127.0.0.1:8770/oauth/token",
            "SMARTCAR_CONNECT_ORIGIN": "http://127.0.0.1:8771",
            "SMARTCAR_MANAGEMENT_API_ORIGIN": "http://127.0.0.1:8772",
        }
    )
    assert endpoints == SmartcarEndpoints(
        api_origin="http://127.0.0.1:8770",
        auth_url="http://127.0.0.1:8770/oauth/token",
        connect_origin="http://127.0.0.1:8771",
        management_origin="http://127.0.0.1:8772",
    )


def test_endpoints_from_env_keep_production_for_unset_or_empty_variables() -> None:
    """An empty variable counts as unset."""
    endpoints = SmartcarEndpoints.from_env({"SMARTCAR_API_ORIGIN": "", "OTHER": "x"})
    assert endpoints == SmartcarEndpoints()


def test_endpoints_for_base_url_point_everything_at_one_server() -> None:
    """One simulator serves the API, Connect, management and the token URL."""
    endpoints = SmartcarEndpoints.for_base_url("http://localhost:9000/")
    assert endpoints.api_origin == "http://localhost:9000"
    assert endpoints.connect_origin == "http://localhost:9000"
    assert endpoints.management_origin == "http://localhost:9000"
    assert endpoints.auth_url == "http://localhost:9000/oauth/token"


@pytest.mark.parametrize("url", ["localhost:9000", "ftp://x", "https://", "http://x/?q=1", ""])
def test_endpoints_reject_anything_but_absolute_http_urls(url: str) -> None:
    """A URL without http(s) scheme and host, or with a query, is a ValueError naming it."""
    with pytest.raises(ValueError, match="api_origin"):
        SmartcarEndpoints(api_origin=url)


def test_credentials_from_env() -> None:
    """SMARTCAR_CLIENT_ID/SECRET/REDIRECT_URI build the credentials; the secret is wrapped."""
    credentials = ClientCredentials.from_env(
        {
            "SMARTCAR_CLIENT_ID": "id",
            "SMARTCAR_CLIENT_SECRET": "shh-very-secret",
            "SMARTCAR_REDIRECT_URI": "https://fleet.test/cb",
        }
    )
    assert credentials.client_secret == Secret("shh-very-secret")
    assert "shh-very-secret" not in repr(credentials)


def test_credentials_from_env_name_every_missing_variable() -> None:
    """Missing variables are all named in the error."""
    with pytest.raises(ValueError, match="SMARTCAR_CLIENT_SECRET, SMARTCAR_REDIRECT_URI"):
        ClientCredentials.from_env({"SMARTCAR_CLIENT_ID": "id"})


def test_credentials_require_a_secret_object() -> None:
    """A plain-string client secret is refused."""
    with pytest.raises(ValueError, match="client_secret"):
        ClientCredentials(client_id="id", client_secret="plain", redirect_uri="x")  # type: ignore[arg-type]
