"""A simulator with a state file is the same Smartcar after a restart; one without forgets."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from clients.simulator import SimulatorConfig, StateFile, StateFileError, serve_simulator
from clients.simulator.world import World
from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import advance, connect, refresh, sim_client

CONFIG = unlimited_config(client_id="fleet-app", client_secret="fleet-secret")


@asynccontextmanager
async def run(state_file: Path | None) -> AsyncIterator[httpx.AsyncClient]:
    """Serve the simulator once (with or without a state file) and yield a client for it."""
    async with (
        serve_simulator(CONFIG, state_file=state_file) as sim,
        sim_client(sim.base_url) as http,
    ):
        yield http


async def test_tokens_connections_vehicles_and_the_clock_survive_a_restart(
    tmp_path: Path,
) -> None:
    """After a restart over the same file, the access token still reads, the lock stays as
    it was, the clock keeps its offset, and the refresh token refreshes once."""
    path = tmp_path / "var" / "simulator.json"
    async with run(path) as http:
        session = await connect(http)
        url = f"/v2.0/vehicles/{session.vehicle_id}/security"
        locked = await http.post(url, json={"action": "LOCK"}, headers=session.headers)
        assert locked.status_code == 200, locked.text
        offset = (await advance(http, 600))["offset_s"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

    async with run(path) as http:
        status = await http.get(url, headers=session.headers)
        assert status.status_code == 200, status.text
        assert status.json()["isLocked"] is True
        assert (await advance(http, 0))["offset_s"] == offset
        renewed = await refresh(http, session.refresh_token)
        assert renewed.status_code == 200, renewed.text
        new_pair = renewed.json()
    async with run(path) as http:
        odometer = f"/v2.0/vehicles/{session.vehicle_id}/odometer"
        reading = await http.get(
            odometer, headers={"Authorization": "Bearer " + new_pair["access_token"]}
        )
        assert reading.status_code == 200, reading.text
        await advance(http, 120)  # past the one-minute reuse grace of the first refresh token
        reused = await refresh(http, session.refresh_token)
        assert reused.json()["error"] == "invalid_grant"


async def test_without_a_state_file_a_restarted_simulator_knows_no_token() -> None:
    """Tests and the standalone simulator stay in memory: a token from before a restart is
    refused after it."""
    async with run(None) as http:
        session = await connect(http)
    async with run(None) as http:
        listed = await http.get("/v2.0/vehicles", headers=session.headers)
        assert listed.status_code == 401


async def test_an_unreadable_state_file_is_refused_naming_it(tmp_path: Path) -> None:
    """A file that is not a simulator state stops the start with a message naming the file
    and what to do; it is left as it was."""
    path = tmp_path / "simulator.json"
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(StateFileError, match=r"simulator\.json.*delete the file"):
        async with run(path):
            pass
    assert json.loads(path.read_text()) == {"format": 99}


def test_the_stored_client_is_read_back_without_showing_its_secret(tmp_path: Path) -> None:
    """`StateFile.client` returns the client the stored simulator served; its repr hides
    the secret and the management token."""
    path = tmp_path / "simulator.json"
    assert StateFile(path).client() is None
    config = SimulatorConfig.fast(client_id="app-1", client_secret="s3cret", management_token="m4")
    StateFile(path).save(World(config))
    stored = StateFile(path).client()
    assert stored is not None
    assert (stored.client_id, stored.client_secret, stored.management_token) == (
        "app-1",
        "s3cret",
        "m4",
    )
    assert "s3cret" not in repr(stored)
    assert "m4" not in repr(stored)


async def test_a_state_that_cannot_be_written_is_logged_and_the_answer_still_leaves(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """When the file cannot be replaced, the simulator still answers (it already acted on
    the request) and logs why the state was not saved."""
    path = tmp_path / "simulator.json"
    async with run(path) as http:
        path.unlink()
        path.mkdir()  # a directory where the file goes: the rename fails
        session = await connect(http)
        assert session.vehicle_ids
    assert "simulator state not saved" in caplog.text
    assert "cannot write it" in caplog.text
