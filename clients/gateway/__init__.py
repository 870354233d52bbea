"""A typed Python client for the vehicle gateway, async and sync (see `client`, `calls`,
`errors`)."""

from clients.gateway import calls
from clients.gateway.client import (
    AsyncGatewayClient,
    CallerCredentials,
    ClientPolicy,
    GatewayClient,
)
from clients.gateway.errors import GatewayCallError

__all__ = [
    "AsyncGatewayClient",
    "CallerCredentials",
    "ClientPolicy",
    "GatewayCallError",
    "GatewayClient",
    "calls",
]
