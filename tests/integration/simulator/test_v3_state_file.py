"""What API V3 adds to the state file survives a restart; files written before it still load."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from clients.simulator import serve_simulator
from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import CLIENT, connect, sim_client
from tests.integration.simulator.test_webhooks import SCALE, Callback, serving
from tests.integration.simulator.v3_flows import CHARGE_SCOPES, app_token, connect_powertrain_v3

CONFIG = unlimited_config(client_id=CLIENT[0], client_secret=CLIENT[1], webhook_retry_scale=SCALE)


@asynccontextmanager
async def run(state_file: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Serve the simulator once over `state_file` and yield a client for it."""
    async with (
        serve_simulator(CONFIG, state_file=state_file) as sim,
        sim_client(sim.base_url) as http,
    ):
        yield http


async def test_tokens_secrets_webhooks_subscriptions_and_charging_survive_a_restart(
    tmp_path: Path,
) -> None:
    """After a restart: the application token still reads (with the connection's charge
    permission), an added secret still gets tokens, the webhook and its subscription are
    still there and deliver, and the charge limit is kept."""
    path = tmp_path / "simulator.json"
    callback = Callback()
    async with serving(callback) as url:
        async with run(path) as http:
            car = await connect_powertrain_v3(http, "BEV", scope=CHARGE_SCOPES)
            await http.post("/sim/secrets", json={"secret": "second-secret"})
            hook = (
                await http.post("/sim/webhooks", json={"callback_url": url, "vehicle_ids": []})
            ).json()
            attributes = {
                "webhookId": hook["webhookId"],
                "userId": car.user_id,
                "vehicleId": car.vehicle_id,
            }
            auth = {"Authorization": f"Bearer {car.app_token}"}
            created = await http.post(
                "/v3/subscriptions", json={"data": {"attributes": attributes}}, headers=auth
            )
            assert created.status_code == 202, created.text
            await callback.wait_for(1)
            limit = await http.post(
                f"{car.base}/commands/charge/set-limit",
                json={"data": {"attributes": {"percent": 70}}},
                headers=car.headers,
            )
            assert limit.status_code == 200, limit.text
        stored = json.loads(path.read_text())
        assert stored["iam"]["secrets"]["secrets"] == [CLIENT[1], "second-secret"]

        async with run(path) as http:
            limits = await http.get(f"{car.base}/signals/charge-chargelimits", headers=car.headers)
            assert limits.status_code == 200, limits.text
            assert limits.json()["attributes"]["body"]["activeLimit"] == 70
            assert await app_token(http, "second-secret")
            listed = await http.get("/v3/subscriptions", headers=auth)
            assert [s["relationships"]["vehicle"]["data"]["id"] for s in listed.json()["data"]] == [
                car.vehicle_id
            ]
            await http.post(f"{car.base}/commands/security/unlock", headers=car.headers)
            [_, unlocked] = await callback.wait_for(2)
            assert unlocked.payload["data"]["vehicle"]["id"] == car.vehicle_id


def _as_before_v3(data: dict[str, Any]) -> dict[str, Any]:
    """Strip a state of everything API V3 added to the file."""
    for key in ("iam", "webhooks", "subscriptions"):
        del data[key]
    for connection in data["accounts"]["connections"]:
        del connection["scopes"]
        del connection["updated_at_s"]
    for state in data["garage"]["states"].values():
        for key in ("asleep_since_s", "plugged_in", "charging", "charge_limit", "charge_changed_s"):
            del state[key]
    return data


async def test_a_file_written_before_v3_still_loads(tmp_path: Path) -> None:
    """A state without the V3 keys loads: v2 tokens keep working, connections get the
    default permissions, and V3 reads them with a new application token."""
    path = tmp_path / "simulator.json"
    async with run(path) as http:
        session = await connect(http)
    path.write_text(json.dumps(_as_before_v3(json.loads(path.read_text()))))

    async with run(path) as http:
        odometer = await http.get(
            f"/v2.0/vehicles/{session.vehicle_id}/odometer", headers=session.headers
        )
        assert odometer.status_code == 200, odometer.text
        vehicles = (await http.get("/sim/vehicles")).json()["vehicles"]
        user_id = next(v["owner_user_id"] for v in vehicles if v["id"] == session.vehicle_id)
        headers = {"Authorization": f"Bearer {await app_token(http)}", "sc-user-id": user_id}
        signals = await http.get(f"/v3/vehicles/{session.vehicle_id}/signals", headers=headers)
        assert signals.status_code == 200, signals.text
        statuses = {i["attributes"]["status"]["value"] for i in signals.json()["data"]}
        assert "SUCCESS" in statuses
