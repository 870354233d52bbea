"""The README's grpcurl walkthrough, run against a real `vehicle-gateway serve` process.

It starts the CLI exactly as the README does (embedded simulator, SQLite under a temporary
VG_VAR_DIR, port 0), drives every step with grpcurl, and ends it with SIGTERM.
"""

from __future__ import annotations

import json
import os
import shutil
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

pytestmark = pytest.mark.one_database

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
        found = urllib.parse.parse_qs(query)
        code, owner = found["code"][0], found["user_id"][0]
        request = {
            "vehicle_id": vehicle_id,
            "code": code,
            "state": issued["state"],
            "user_id": owner,
        }
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


README = Path(__file__).resolve().parents[2] / "README.md"
WALKTHROUGH_HEADING = "## Walkthrough with grpcurl"


def readme_walkthrough() -> str:
    """Return the shell block of the README's walkthrough section, as written there."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index(WALKTHROUGH_HEADING) :]
    start = section.index("```sh\n") + len("```sh\n")
    return section[start : section.index("```\n", start)]


def test_the_readme_walkthrough_runs_as_written(served: Served) -> None:
    """The README's grpcurl block, run by bash against a live gateway (only its address and
    the grpcurl path replaced), connects, reads, locks, unlocks, is refused Disconnect during
    the rental, disconnects after it, and ends with the rental's readings (GetRental)."""
    script = readme_walkthrough()
    for written in ("A=127.0.0.1:50051", ".venv/bin/grpcurl"):
        assert written in script
    script = script.replace("A=127.0.0.1:50051", f"A={served.address}")
    script = script.replace(".venv/bin/grpcurl", str(GRPCURL))
    bash = shutil.which("bash")
    assert bash is not None
    done = subprocess.run(
        [bash, "-u", "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out  # the last step, GetRental, succeeded
    for step in (
        SERVICE,  # list
        "rpc GetTelemetry",  # describe
        '"status": "ACTIVE"',  # Connect
        '"smartcarApi": "SMARTCAR_API_V3"',  # …through API V3, the default
        '"distanceKm"',  # GetTelemetry
        '"fromCache": true',  # the second read
        '"code": 9',  # Disconnect during the rental: FAILED_PRECONDITION…
        "rentals/rental-1",  # …names the rental
        '"status": "DISCONNECTED"',  # Disconnect after it, ListVehicles
        '"status": "SERVING"',  # Health/Check
        '"startReading"',  # StartRental, GetRental…
        '"source": "READING_SOURCE_',  # …each value with where it came from
        '"endReading"',  # EndRental, GetRental
        '"finalReadingState": "FINAL_READING_',  # GetRental: pending, or recorded
    ):
        assert step in out, step
    assert out.count('"state": "SUCCEEDED"') == 2  # Lock, Unlock
    answers = done.stdout
    assert answers.count('"rentalId": "rental-1"') == 3  # StartRental, EndRental, GetRental
    assert answers.rindex('"finalReadingState"') > answers.rindex('"status": "SERVING"')


def test_sigterm_drains_and_stops_cleanly_without_leaking_secrets(served: Served) -> None:
    """SIGTERM ends the process with status 0; no log line carries a token or code."""
    issued = served.call("GetConnectUrl", {"vehicle_id": "car-1"})
    redirect = httpx.get(issued["url"], follow_redirects=False, timeout=10)
    found = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)
    code, owner = found["code"][0], found["user_id"][0]
    connect = {"vehicle_id": "car-1", "code": code, "state": issued["state"], "user_id": owner}
    served.call("Connect", connect)
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=30) == 0
    assert served.process.stderr is not None
    logs = served.process.stderr.read()
    events = [json.loads(line).get("event") for line in logs.splitlines() if line.strip()]
    assert "gateway_stopped" in events
    assert code not in logs
