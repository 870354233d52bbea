"""A gateway on TLS (or mTLS) with an access policy, for rpc-tier tests of callers: a
throwaway CA, the policy file, and channels presenting certificates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import grpc.aio

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.app import RunningGateway, running_gateway
from gateway.core.access import token_digest
from gateway.edge.clock import ManualClock
from tests.instants import START
from tests.pki import CertificateAuthority, Issued
from tests.rpc.rig import gateway_settings, pointed_at, simulator

BILLING_TOKEN = "billing-token-for-tests-0123456789"
RENTAL_TOKEN = "rental-token-for-tests-0123456789"
OPERATOR_TOKEN = "operator-token-for-tests-0123456789"

POLICY = f"""
[roles.rental]
methods = ["GetConnectUrl", "Connect", "GetVehicle", "ListVehicles", "GetTelemetry",
           "Lock", "Unlock", "StartCharge", "StopCharge", "SetChargeLimit",
           "StartRental", "EndRental", "GetRental", "ListRentals", "Disconnect",
           "WatchVehicles", "WatchVehicleEvents", "CheckCompatibility",
           "grpc.health.v1.Health/*"]

[roles.operator]
methods = ["CheckCompatibility", "GetConnectUrl", "GetVehicle", "ListVehicles",
           "SetRequestAllowance", "WatchVehicleEvents"]

[roles.billing]
methods = ["GetTelemetry", "GetRental", "ListRentals", "WatchVehicleEvents"]
telemetry_fields = ["ODOMETER"]

[roles.debug]
methods = ["grpc.reflection.v1alpha.ServerReflection/*", "grpc.health.v1.Health/*"]

[[callers]]
name = "rental-service"
roles = ["rental"]
certificate_names = ["rental.fleet.internal"]
token_sha256 = ["{token_digest(RENTAL_TOKEN)}"]

[[callers]]
name = "billing-service"
roles = ["billing"]
certificate_names = ["billing.fleet.internal"]
token_sha256 = ["{token_digest(BILLING_TOKEN)}"]

[[callers]]
name = "fleet-operator"
roles = ["operator"]
token_sha256 = ["{token_digest(OPERATOR_TOKEN)}"]

[[callers]]
name = "engineer"
roles = ["debug"]
certificate_names = ["engineer.fleet.internal"]
"""

"""Where the gateways' clocks start."""

ODOMETER_ONLY = pb.GetTelemetryRequest(vehicle_id="car-1", fields=[pb.TelemetryField.ODOMETER])


@dataclass
class Secured:
    """A gateway on a TLS port, with its CA and where it listens."""

    ca: CertificateAuthority
    port: int
    simulator_url: str
    running: RunningGateway

    def channel(self, client: Issued | None = None) -> grpc.aio.Channel:
        """A TLS channel trusting the CA, presenting `client`'s certificate when given."""
        credentials = grpc.ssl_channel_credentials(
            self.ca.certificate,
            client.key if client else None,
            client.certificate if client else None,
        )
        return grpc.aio.secure_channel(f"localhost:{self.port}", credentials)


def write_files(
    tmp_path: Path, ca: CertificateAuthority, *, policy: str = POLICY
) -> dict[str, str]:
    """Write the policy, the server's certificate and key and the CA; return the VG_ env."""
    server = ca.server("localhost")
    files = {
        "policy.toml": policy.encode(),
        "server.pem": server.certificate,
        "server.key": server.key,
        "ca.pem": ca.certificate,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    return {
        "VG_ACCESS_POLICY": str(tmp_path / "policy.toml"),
        "VG_TLS_CERT": str(tmp_path / "server.pem"),
        "VG_TLS_KEY": str(tmp_path / "server.key"),
    }


@asynccontextmanager
async def secured(
    tmp_path: Path, *, mtls: bool, policy: str = POLICY, clock: ManualClock | None = None
) -> AsyncIterator[Secured]:
    """Run a gateway with the policy on TLS (mTLS when asked) against a simulator."""
    ca = CertificateAuthority()
    env = write_files(tmp_path, ca, policy=policy)
    if mtls:
        env["VG_TLS_CLIENT_CA"] = str(tmp_path / "ca.pem")
    settings = gateway_settings(tmp_path, **env)
    async with (
        simulator() as url,
        running_gateway(pointed_at(settings, url), clock=clock or ManualClock(START)) as running,
    ):
        yield Secured(ca=ca, port=running.port, simulator_url=url, running=running)
