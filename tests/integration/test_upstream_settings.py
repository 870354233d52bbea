"""What the composition root carries for API V3 (not yet used by the gateway): the three V3
origins, pointed at the embedded simulator when it runs, and the client credentials with
every configured secret, which the embedded simulator accepts too."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from gateway.app import _upstream
from gateway.edge.clock import ManualClock
from gateway.settings import Settings
from tests.instants import START

PRODUCTION = (
    "https://vehicle.api.smartcar.com",
    "https://iam.smartcar.com",
    "https://management.api.smartcar.com",
)


async def test_the_embedded_simulator_serves_the_v3_origins_and_every_secret(
    tmp_path: Path,
) -> None:
    """Embedded: the V3 origins are the simulator; the credentials hold the generated secret
    and then VG_SMARTCAR_CLIENT_SECRETS, and the simulator grants a token for the extra one."""
    settings = Settings.from_env(
        {"VG_VAR_DIR": str(tmp_path / "var"), "VG_SMARTCAR_CLIENT_SECRETS": "cs-extra-1"}
    )
    async with AsyncExitStack() as stack:
        upstream = await _upstream(settings, stack, ManualClock(START))
        url = upstream.simulator_url
        assert url is not None
        v3 = upstream.v3_endpoints
        assert (v3.vehicle_origin, v3.iam_origin, v3.management_origin) == (url, url, url)
        credentials = upstream.application_credentials
        assert credentials.client_id == upstream.credentials.client_id
        secrets = [s.reveal() for s in credentials.client_secrets]
        assert secrets == [upstream.credentials.client_secret.reveal(), "cs-extra-1"]
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                v3.token_url,
                data={
                    "grant_type": "client_credentials",
                    "client_id": credentials.client_id,
                    "client_secret": "cs-extra-1",
                },
            )
        assert answer.status_code == 200, answer.text


async def test_another_smartcar_gets_production_v3_origins_unless_configured() -> None:
    """With SMARTCAR_API_ORIGIN set, unset V3 origins are Smartcar's production servers and
    a configured one is used as given."""
    env = {
        "SMARTCAR_API_ORIGIN": "http://127.0.0.1:1",
        "SMARTCAR_CLIENT_ID": "fleet",
        "SMARTCAR_CLIENT_SECRET": "cs-primary",
        "SMARTCAR_REDIRECT_URI": "https://fleet.example/callback",
    }
    async with AsyncExitStack() as stack:
        default = await _upstream(Settings.from_env(env), stack, ManualClock(START))
        iam = {**env, "SMARTCAR_IAM_ORIGIN": "http://127.0.0.1:2"}
        configured = await _upstream(Settings.from_env(iam), stack, ManualClock(START))
    v3 = default.v3_endpoints
    assert (v3.vehicle_origin, v3.iam_origin, v3.management_origin) == PRODUCTION
    assert configured.v3_endpoints.iam_origin == "http://127.0.0.1:2"
    assert [s.reveal() for s in default.application_credentials.client_secrets] == ["cs-primary"]
