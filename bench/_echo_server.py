"""A bare grpc.aio server answering GetTelemetry with one fixed message: the yardstick the
gateway's own server is measured against (same protocol, same message, no work).

    python bench/_echo_server.py PORT HEX_OF_A_SERIALIZED_TELEMETRY
"""

from __future__ import annotations

import asyncio
import json
import sys

import grpc.aio

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc


class Echo(pb_grpc.VehicleGatewayServicer):
    """Answers GetTelemetry with the same message every time."""

    def __init__(self, answer: pb.Telemetry) -> None:
        self._answer = answer

    async def GetTelemetry(self, request: pb.GetTelemetryRequest, context: object) -> pb.Telemetry:
        """Return the fixed answer."""
        return self._answer


async def serve(port: int, answer: pb.Telemetry) -> None:
    """Serve until killed."""
    server = grpc.aio.server()
    pb_grpc.add_VehicleGatewayServicer_to_server(Echo(answer), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(json.dumps({"event": "echo_started", "port": port}), file=sys.stderr, flush=True)
    await server.wait_for_termination()


if __name__ == "__main__":
    telemetry = pb.Telemetry.FromString(bytes.fromhex(sys.argv[2]))
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(serve(int(sys.argv[1]), telemetry))
    else:
        uvloop.run(serve(int(sys.argv[1]), telemetry))
