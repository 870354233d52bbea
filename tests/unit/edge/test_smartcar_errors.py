"""Smartcar client errors as the core's errors: the token endpoint's transient failures."""

from __future__ import annotations

import pytest

from clients import smartcar as sc
from gateway.core import errors
from gateway.edge.smartcar_errors import translate


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
