"""Fixtures: a fast simulator on port 0 and an httpx client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from clients.simulator import RunningSimulator, SimulatorConfig, serve_simulator
from tests.instants import START_S
from tests.integration.simulator.flows import sim_client


def unlimited_config(**overrides: object) -> SimulatorConfig:
    """Return a fast configuration without rate limits (tests of limits set their own)."""
    settings: dict[str, object] = {
        "vehicle_rate_limit": None,
        "app_rate_limit": None,
        "start_at_s": START_S,
    }
    settings.update(overrides)
    return SimulatorConfig.fast(**settings)


@pytest.fixture
async def sim() -> AsyncIterator[RunningSimulator]:
    """Serve a fast simulator without rate limits for one test."""
    async with serve_simulator(unlimited_config()) as running:
        yield running


@pytest.fixture
async def client(sim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    """Return an httpx client for the `sim` fixture."""
    async with sim_client(sim.base_url) as http:
        yield http
