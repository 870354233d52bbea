"""Fixtures: the fake Smartcar on ``httpx.MockTransport`` and clients wired to it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from clients.smartcar import (
    SmartcarAuth,
    SmartcarCompatibility,
    SmartcarManagement,
    SmartcarVehicles,
)
from tests.unit.smartcar.fakes import (
    CREDENTIALS,
    ENDPOINTS,
    MANAGEMENT_TOKEN,
    FakeSmartcar,
    fixed_clock,
)


@pytest.fixture
def fake() -> FakeSmartcar:
    """A fresh scripted Smartcar."""
    return FakeSmartcar()


@pytest.fixture
async def http(fake: FakeSmartcar) -> AsyncIterator[httpx.AsyncClient]:
    """An AsyncClient whose only transport is the fake."""
    async with httpx.AsyncClient(transport=httpx.MockTransport(fake)) as client:
        yield client


@pytest.fixture
def vehicles(http: httpx.AsyncClient) -> SmartcarVehicles:
    """The Vehicle API client on the fake."""
    return SmartcarVehicles(http=http, endpoints=ENDPOINTS, clock=fixed_clock)


@pytest.fixture
def auth(http: httpx.AsyncClient) -> SmartcarAuth:
    """The OAuth client on the fake."""
    return SmartcarAuth(http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=fixed_clock)


@pytest.fixture
def management(http: httpx.AsyncClient) -> SmartcarManagement:
    """The management API client on the fake."""
    return SmartcarManagement(
        http=http, endpoints=ENDPOINTS, management_token=MANAGEMENT_TOKEN, clock=fixed_clock
    )


@pytest.fixture
def compatibility(http: httpx.AsyncClient) -> SmartcarCompatibility:
    """The Compatibility API client on the fake."""
    return SmartcarCompatibility(
        http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=fixed_clock
    )
