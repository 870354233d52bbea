"""A gRPC health probe for container health checks: exit 0 only when the server is SERVING.

    python -m gateway.edge.grpc.healthcheck [ADDRESS] [--service NAME] [--timeout-s SECONDS]

It asks `grpc.health.v1.Health/Check` at ADDRESS about the overall status ("") or
`--service`, so the Dockerfile needs no extra binary. ADDRESS defaults to VG_HEALTH_LISTEN,
the gateway's loopback plaintext health port (which the image sets), so the probe needs no
credentials and works whether the gRPC port is plaintext with a policy, TLS or mTLS;
without it, 127.0.0.1:50051 (development mode).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2

DEFAULT_ADDRESS = "127.0.0.1:50051"
HEALTH_LISTEN = "VG_HEALTH_LISTEN"
_CHECK = "/grpc.health.v1.Health/Check"


def check(address: str, *, service: str = "", timeout_s: float = 3.0) -> str:
    """Return the serving status name the server reports for `service` at `address`."""
    with grpc.insecure_channel(address) as channel:
        ask = channel.unary_unary(
            _CHECK,
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        reply = ask(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)


def default_address(env: Mapping[str, str]) -> str:
    """Return where to probe: the health port VG_HEALTH_LISTEN names (loopback: the
    gateway refuses any other), else the gRPC port of development mode."""
    return env.get(HEALTH_LISTEN) or DEFAULT_ADDRESS


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Probe the server; exit 0 when SERVING, 1 otherwise (the reason on stderr)."""
    parser = argparse.ArgumentParser(prog="python -m gateway.edge.grpc.healthcheck")
    parser.add_argument(
        "address",
        nargs="?",
        default=default_address(os.environ if env is None else env),
        help=f"HOST:PORT (default: ${HEALTH_LISTEN}, else {DEFAULT_ADDRESS})",
    )
    parser.add_argument("--service", default="", help='service name ("" = the whole server)')
    parser.add_argument("--timeout-s", type=float, default=3.0)
    args = parser.parse_args(argv)
    try:
        status = check(args.address, service=args.service, timeout_s=args.timeout_s)
    except grpc.RpcError as exc:
        sys.stderr.write(f"health check failed: {exc.code().name}\n")
        return 1
    if status != "SERVING":
        sys.stderr.write(f"not serving: {status}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
