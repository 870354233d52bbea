"""The container image's commands against a real `vehicle-gateway serve` process.

No container engine runs here, so each test starts the image's CMD with the image's ENV
(ports 0 instead of fixed ones, VG_VAR_DIR under tmp_path) and a policy as the README's
`docker run` mounts it, then runs the image's HEALTHCHECK command: it must pass with the
gRPC port plaintext with a policy, TLS, and mTLS.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.dockerfile import ROOT, environment, exec_form
from tests.pki import CertificateAuthority
from tests.rpc.secure_rig import write_files

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.sqlite_only  # the image's database: SQLite in its volume


def image_environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The image's ENV with the ports it fixes set to 0 and its volume under tmp_path, plus
    `settings` (what `docker run -e` adds); this checkout's code on the path."""
    image = environment()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMARTCAR_", "VG_"))}
    env.update({k: v for k, v in image.items() if k != "PATH"})
    host, _, _ = image["VG_HEALTH_LISTEN"].rpartition(":")
    env.update(
        {
            "VG_HEALTH_LISTEN": f"{host}:0",
            "VG_VAR_DIR": str(tmp_path / "var"),
            "VG_SIMULATOR_COMMAND_LATENCY_S": "0",
            "PYTHONPATH": str(ROOT),
            **settings,
        }
    )
    return env


def serve_command() -> list[str]:
    """The image's CMD, run from this virtualenv and bound to port 0 on loopback."""
    command = exec_form("CMD")
    assert command[:2] == ["vehicle-gateway", "serve"]
    listen = command.index("--listen") + 1
    assert command[listen] == "0.0.0.0:50051"
    return [str(BIN / command[0]), *command[1:listen], "127.0.0.1:0", *command[listen + 1 :]]


def health_check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the image's HEALTHCHECK command (with `args` appended) in `env`."""
    command = exec_form("HEALTHCHECK")
    assert command[0] == "python"
    return subprocess.run(
        [sys.executable, *command[1:], *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def _started(process: subprocess.Popen[str], deadline_s: float) -> dict[str, Any]:
    """Read log lines until the gateway reports it is serving; fail if it exits first."""
    assert process.stderr is not None
    end = time.monotonic() + deadline_s
    seen = []
    while time.monotonic() < end:
        line = process.stderr.readline()
        if not line:
            break
        seen.append(line)
        record = json.loads(line)
        if record.get("event") == "gateway_started":
            return dict(record)
    raise AssertionError("the gateway did not start:\n" + "".join(seen))


@contextmanager
def served(env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Run the image's CMD in `env` until the block ends (SIGTERM, then SIGKILL if it
    lingers); yield its start line."""
    process = subprocess.Popen(
        serve_command(), env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )
    try:
        yield _started(process, deadline_s=60)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()


@pytest.mark.parametrize("mode", ["plaintext+policy", "tls", "mtls"])
def test_the_image_health_check_passes_in_every_mode(tmp_path: Path, mode: str) -> None:
    """With the image's settings and a mounted policy the gateway starts and the image's
    HEALTHCHECK command exits 0, while the same probe pointed at the gRPC port itself fails
    (it has no credentials): the loopback health port is what makes the check pass."""
    files = write_files(tmp_path, CertificateAuthority())
    settings = {"VG_ACCESS_POLICY": files["VG_ACCESS_POLICY"]}
    if mode != "plaintext+policy":
        settings |= {"VG_TLS_CERT": files["VG_TLS_CERT"], "VG_TLS_KEY": files["VG_TLS_KEY"]}
    if mode == "mtls":
        settings["VG_TLS_CLIENT_CA"] = str(tmp_path / "ca.pem")
    env = image_environment(tmp_path, **settings)
    with served(env) as started:
        health_port = started["health_port"]
        assert isinstance(health_port, int)
        assert health_port != started["port"]
        probe_env = {**env, "VG_HEALTH_LISTEN": f"127.0.0.1:{health_port}"}
        passed = health_check(probe_env)
        assert passed.returncode == 0, passed.stderr
        refused = health_check(probe_env, f"127.0.0.1:{started['port']}")
        assert refused.returncode == 1


def test_the_image_refuses_to_start_without_a_policy_naming_it(tmp_path: Path) -> None:
    """Without VG_ACCESS_POLICY the image's CMD (0.0.0.0) exits 2 with one line naming
    the variable — what the README's `docker run` command supplies."""
    command = [str(BIN / "vehicle-gateway"), *exec_form("CMD")[1:]]
    done = subprocess.run(
        command, env=image_environment(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "VG_ACCESS_POLICY" in lines[0]


def test_the_gateway_keeps_its_state_owner_only(tmp_path: Path) -> None:
    """A served gateway's VG_VAR_DIR is 0700 and the database, its -wal and -shm and the
    development key are 0600 (they hold locations, VINs and the audit trail)."""
    files = write_files(tmp_path, CertificateAuthority())
    env = image_environment(tmp_path, VG_ACCESS_POLICY=files["VG_ACCESS_POLICY"])
    var = tmp_path / "var"
    with served(env):
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [var, *var.iterdir()]}
    assert {"gateway.db", "gateway.db-wal", "gateway.db-shm"} <= set(modes)
    assert modes.pop("var") == 0o700
    assert modes == dict.fromkeys(modes, 0o600)
