"""Fixtures: the V3 clients wired to the fake Smartcar (``fake`` and ``http`` come from
the parent conftest)."""

from __future__ import annotations

import httpx
import pytest

from clients.smartcar.v3 import (
    SmartcarConnectionsV3,
    SmartcarIAM,
    SmartcarManagementV3,
    SmartcarVehiclesV3,
)
from tests.unit.smartcar.fakes import fixed_clock
from tests.unit.smartcar.v3.fakes import CREDENTIALS, ENDPOINTS


@pytest.fixture
def iam(http: httpx.AsyncClient) -> SmartcarIAM:
    """The IAM client (form-encoded requests) on the fake."""
    return SmartcarIAM(http=http, credentials=CREDENTIALS, endpoints=ENDPOINTS, clock=fixed_clock)


@pytest.fixture
def vehicles(http: httpx.AsyncClient) -> SmartcarVehiclesV3:
    """The Vehicle API V3 client on the fake."""
    return SmartcarVehiclesV3(http=http, endpoints=ENDPOINTS, clock=fixed_clock)


@pytest.fixture
def connections(http: httpx.AsyncClient) -> SmartcarConnectionsV3:
    """The connections client on the fake."""
    return SmartcarConnectionsV3(http=http, endpoints=ENDPOINTS, clock=fixed_clock)


@pytest.fixture
def management(http: httpx.AsyncClient) -> SmartcarManagementV3:
    """The Management API V3 client on the fake."""
    return SmartcarManagementV3(http=http, endpoints=ENDPOINTS, clock=fixed_clock)
