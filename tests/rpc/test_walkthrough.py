"""The README's grpcurl walkthrough, run against a real `vehicle-gateway serve` process.

It starts the CLI exactly as the README does (embedded simulator, SQLite under a temporary
VG_VAR_DIR, port 0), drives every step with grpcurl, and ends it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

BIN = Path(sys.executable).parent
GRPCURL = BIN / "grpcurl"
SERVICE = "vehiclegateway.v1.VehicleGateway"


class Served:
    """A running `vehicle-gateway serve` and what it logged."""

    def __init__(self, process: subprocess.Popen[str], port: int, simulator_url: str) -> None:
        self.process = process
        self.address = f"127.0.0.1:{port}"
        self.simulator_url = simulator_url

    def grpcurl(
        self, *args: str, data: dict[str, Any] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run grpcurl against the gateway (plaintext, with reflection)."""
        command = [str(GRPCURL), "-plaintext", "-format-error"]
        if data is not None:
            command += ["-d", json.dumps(data)]
        return subprocess.run(
            [*command, self.address, *args], capture_output=True, text=True, timeout=30, check=False
        )

    def call(self, method: str, data: dict[str, Any]) -> dict[str, Any]:
        """Call one RPC and return its JSON answer; fail on an error status."""
        done = self.grpcurl(f"{SERVICE}/{method}", data=data)
        assert done.returncode == 0, done.stdout + done.stderr
        return dict(json.loads(done.stdout))

    def connect(self, vehicle_id: str) -> tuple[dict[str, Any], str]:
        """GetConnectUrl, follow the simulated Connect redirect, Connect; return the
        vehicle and the code used."""
        issued = self.call("GetConnectUrl", {"vehicle_id": vehicle_id})
        redirect = httpx.get(issued["url"], follow_redirects=False, timeout=10)
        query = urllib.parse.urlsplit(redirect.headers["location"]).query
        code = urllib.parse.parse_qs(query)["code"][0]
        request = {"vehicle_id": vehicle_id, "code": code, "state": issued["state"]}
        return self.call("Connect", request), code


def _started(process: subprocess.Popen[str], deadline_s: float) -> dict[str, Any]:
    """Read log lines until the gateway reports it is serving."""
    assert process.stderr is not None
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        line = process.stderr.readline()
        if not line:
            break
        record = json.loads(line)
        if record.get("event") == "gateway_started":
            return dict(record)
    raise AssertionError("the gateway did not report gateway_started in time")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    """Start `vehicle-gateway serve --listen 127.0.0.1:0` with the embedded defaults."""
    if not GRPCURL.exists():
        pytest.skip("grpcurl is not installed in this environment")
    env = {
        **os.environ,
        "VG_VAR_DIR": str(tmp_path / "var"),
        "VG_SIMULATOR_COMMAND_LATENCY_S": "0",
    }
    env = {k: v for k, v in env.items() if not k.startswith("SMARTCAR_")}
    process = subprocess.Popen(
        [str(BIN / "vehicle-gateway"), "serve", "--listen", "127.0.0.1:0"],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    try:
        started = _started(process, deadline_s=30)
        yield Served(process, started["port"], started["simulator_url"])
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


def test_the_readme_walkthrough_drives_the_whole_flow(served: Served) -> None:
    """list, describe, connect, read, lock, unlock, rent, refused and allowed Disconnect."""
    listed = served.grpcurl("list")
    assert SERVICE in listed.stdout.split()
    described = served.grpcurl("describe", SERVICE)
    assert "rpc GetTelemetry" in described.stdout

    issued = served.call("GetConnectUrl", {"vehicle_id": "car-1"})
    redirect = httpx.get(issued["url"], follow_redirects=False, timeout=10)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)["code"][
        0
    ]
    vehicle = served.call(
        "Connect", {"vehicle_id": "car-1", "code": code, "state": issued["state"]}
    )
    assert vehicle["status"] == "ACTIVE"

    telemetry = served.call("GetTelemetry", {"vehicle_id": "car-1", "fields": ["ODOMETER"]})
    assert telemetry["readings"][0]["odometer"]["distanceKm"] > 0
    for method, request_id in (("Lock", "l-1"), ("Unlock", "u-1")):
        result = served.call(method, {"vehicle_id": "car-1", "request_id": request_id})
        assert result["state"] == "SUCCEEDED"
    served.call("StartRental", {"vehicle_id": "car-1", "rental_id": "r-1"})

    refused = served.grpcurl(f"{SERVICE}/Disconnect", data={"vehicle_id": "car-1"})
    assert refused.returncode != 0
    status = json.loads(refused.stderr)
    assert status["code"] == 9  # FAILED_PRECONDITION
    assert "rentals/r-1" in json.dumps(status["details"])

    served.call("EndRental", {"vehicle_id": "car-1", "rental_id": "r-1"})
    assert served.call("Disconnect", {"vehicle_id": "car-1"})["status"] == "DISCONNECTED"


def test_sigterm_drains_and_stops_cleanly_without_leaking_secrets(served: Served) -> None:
    """SIGTERM ends the process with status 0; no log line carries a token or code."""
    issued = served.call("GetConnectUrl", {"vehicle_id": "car-1"})
    redirect = httpx.get(issued["url"], follow_redirects=False, timeout=10)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)["code"][
        0
    ]
    served.call("Connect", {"vehicle_id": "car-1", "code": code, "state": issued["state"]})
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    assert served.process.stderr is not None
    logs = served.process.stderr.read()
    events = [json.loads(line).get("event") for line in logs.splitlines() if line.strip()]
    assert "gateway_stopped" in events
    assert code not in logs
