"""Ways to run the simulator: the CLI sub-command and the background thread."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

from clients.simulator import SimulatorConfig, SimulatorThread
from clients.simulator.cli import config_from_args, run
from gateway.cli import build_parser
from tests.instants import START_S

CLI = Path(sys.executable).with_name("vehicle-gateway")
START_DEADLINE_S = 15.0


def read_json_line(stream: IO[bytes], *, deadline: float) -> dict[str, object]:
    """Read one line from `stream` before `deadline` (monotonic) and parse it as JSON."""
    remaining = deadline - time.monotonic()
    ready, _, _ = select.select([stream], [], [], max(0.0, remaining))
    assert ready, "the simulator logged nothing before the deadline"
    line = stream.readline()
    assert line, "the simulator exited before logging"
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_cli_serves_on_a_chosen_port_and_stops_on_sigterm() -> None:
    """`vehicle-gateway simulator --port 0` logs its URL, serves, and exits 0 on SIGTERM."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTCAR_")}
    with subprocess.Popen(
        [str(CLI), "simulator", "--port", "0"], stderr=subprocess.PIPE, env=env
    ) as process:
        try:
            assert process.stderr is not None
            started = read_json_line(process.stderr, deadline=time.monotonic() + START_DEADLINE_S)
            assert started["event"] == "simulator_started"
            assert isinstance(started["port"], int)
            assert started["port"] > 0
            response = httpx.get(f"{started['url']}/sim/stats", timeout=5.0)
            assert response.status_code == 200
            assert "requests" in response.json()
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0
        finally:
            if process.poll() is None:
                process.kill()


def test_cli_reads_client_credentials_from_the_environment() -> None:
    """The sub-command takes SMARTCAR_CLIENT_ID/SECRET from the environment and its flags."""
    args = build_parser().parse_args(
        ["simulator", "--seed", "3", "--vehicles", "5", "--command-latency-s", "0.5"]
    )
    config = config_from_args(
        args, {"SMARTCAR_CLIENT_ID": "cid", "SMARTCAR_CLIENT_SECRET": "secret"}
    )
    assert (config.client_id, config.client_secret) == ("cid", "secret")
    assert (config.seed, config.vehicles, config.command_latency_s) == (3, 5, 0.5)
    assert args.port == 8770
    anyone = config_from_args(build_parser().parse_args(["simulator", "--no-limits"]), {})
    assert anyone.client_id is None
    assert anyone.vehicle_rate_limit is None
    assert anyone.monthly_request_limit is None


def test_cli_refuses_invalid_settings() -> None:
    """Invalid settings end the sub-command with status 2 before anything listens."""
    args = build_parser().parse_args(["simulator", "--command-latency-s", "-1"])
    assert run(args) == 2


def test_simulator_thread_serves_synchronous_callers() -> None:
    """`SimulatorThread` serves from a background loop and stops on exit."""
    with SimulatorThread(SimulatorConfig.fast(start_at_s=START_S)) as sim:
        response = httpx.get(f"{sim.base_url}/sim/clock", timeout=5.0)
        assert response.status_code == 200
        base_url = sim.base_url
    try:
        httpx.get(f"{base_url}/sim/clock", timeout=1.0)
    except httpx.TransportError:
        return
    raise AssertionError("the simulator still answers after the thread stopped")
