"""The gRPC server: the gateway service, health, reflection, and a graceful shutdown.

    health = HealthServicer()
    server, port = await create_server(api, listen="127.0.0.1:0", health=health)
    await server.start()
    await serve_until_stopped(server, health, grace_s=10)   # returns after SIGTERM/SIGINT

`create_server` only assembles and binds; it does not start the server nor touch signals, so
tests drive `GracefulShutdown.shutdown()` directly. Shutting down flips every health status
to NOT_SERVING first (load balancers stop routing), then stops the server with a grace
period in which in-flight calls finish and new ones are refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Iterator, Sequence

import grpc
import grpc.aio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.core.inbound import GatewayAPI
from gateway.edge.grpc.decoding import MAX_RECEIVE_MESSAGE_BYTES
from gateway.edge.grpc.interceptors import CallFraming, EdgeHooks, FramedServer
from gateway.edge.grpc.reflection import enable_reflection
from gateway.edge.grpc.servicer import VehicleGatewayServicer

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["VehicleGateway"].full_name
"""`vehiclegateway.v1.VehicleGateway`: the name served, reported by health and reflection."""

DEFAULT_LISTEN = "127.0.0.1:50051"

HealthServicer = health.aio.HealthServicer

_log = logging.getLogger(__name__)


async def create_server(
    api: GatewayAPI,
    *,
    listen: str = DEFAULT_LISTEN,
    health_servicer: HealthServicer | None = None,
    hooks: EdgeHooks | None = None,
    credentials: grpc.ServerCredentials | None = None,
    outer: Sequence[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, int]:
    """Build the server (gateway, health, reflection) bound to `listen`; return it and its port.

    Port 0 picks a free port, returned here. Pass `health_servicer` to keep a handle on the
    health statuses (needed by `GracefulShutdown`); both the overall status "" and the
    service's own are set SERVING. `hooks` admit callers (default: development mode,
    everyone allowed), audit actions on cars and measure calls; `credentials` make the
    port TLS (or mTLS). `outer` interceptors run around the call frame (tracing's,
    when on: the frame then runs inside the call's span). The server is not started.
    """
    server = grpc.aio.server(
        # The call frame is put on each handler as it is registered (`FramedServer`
        # below): grpc runs an interceptor per call only for `outer` ones.
        interceptors=list(outer) or None,
        options=[
            # grpc turns SO_REUSEPORT on by default: a second gateway on a busy port would
            # bind silently and share its traffic. Fail instead.
            ("grpc.so_reuseport", 0),
            # Explicit, so a new grpc default cannot move it: grpc refuses larger messages
            # before Python sees them; smaller ones are bounded by gateway.edge.grpc.decoding.
            ("grpc.max_receive_message_length", MAX_RECEIVE_MESSAGE_BYTES),
        ],
    )
    # Every service is registered framed (`FramedServer`): no interceptor runs per call.
    framed = FramedServer(server, CallFraming(hooks)).registrar()
    pb_grpc.add_VehicleGatewayServicer_to_server(VehicleGatewayServicer(api), framed)
    if health_servicer is None:
        health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, framed)
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    enable_reflection(framed, (SERVICE_NAME, health.SERVICE_NAME))
    if credentials is None:
        port = server.add_insecure_port(listen)
    else:
        port = server.add_secure_port(listen, credentials)
    if port == 0:
        raise OSError(f"could not bind the gRPC server to {listen}")
    return server, port


async def create_health_server(
    health_servicer: HealthServicer,
    *,
    listen: str,
    hooks: EdgeHooks | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Build a plaintext server answering only grpc.health.v1.Health, from the same
    statuses as the main port; return it (not started) and its port.

    It is for probes on the same host (a container's HEALTHCHECK), which then need neither
    the callers' credentials nor TLS; the composition root allows it on loopback only.
    """
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(
        health_servicer, FramedServer(server, CallFraming(hooks)).registrar()
    )
    port = server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"could not bind the health server to {listen}")
    return server, port


class ServingStatus:
    """This replica's own verdict on its health: once it finds it cannot serve (stored
    tokens under a key it lacks), every health status turns NOT_SERVING for good (the key
    comes only with a restart), so load balancers drain it; said once in the log."""

    def __init__(self, health_servicer: HealthServicer) -> None:
        self._health = health_servicer
        self.reason: str | None = None

    async def not_serving(self, reason: str) -> None:
        """Report NOT_SERVING for the server and the gateway service from now on."""
        if self.reason is None:
            _log.error(
                "reporting NOT_SERVING: %s",
                reason,
                extra={"event": "replica_not_serving"},
            )
            self.reason = reason
        for name in ("", SERVICE_NAME):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)


class GracefulShutdown:
    """Stop a server the graceful way, once: NOT_SERVING, drain for `grace_s`, stop."""

    def __init__(
        self, server: grpc.aio.Server, health_servicer: HealthServicer, *, grace_s: float
    ) -> None:
        self._server = server
        self._health = health_servicer
        self._grace_s = grace_s
        self._task: asyncio.Task[None] | None = None

    @property
    def started(self) -> bool:
        """Tell whether the shutdown has begun."""
        return self._task is not None

    async def shutdown(self) -> None:
        """Shut down (or join the shutdown already under way) and wait until it is done."""
        await asyncio.shield(self.request())

    def request(self, reason: str = "requested") -> asyncio.Task[None]:
        """Start the shutdown unless it has started, without waiting; return its task."""
        if self._task is None:
            _log.info("shutting down: %s", reason, extra={"grace_s": self._grace_s})
            self._task = asyncio.ensure_future(self._shutdown())
        return self._task

    @contextlib.contextmanager
    def on_signals(
        self, signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT)
    ) -> Iterator[None]:
        """Within the block, shut down on any of `signals` (the running loop's handlers)."""
        loop = asyncio.get_running_loop()
        for sig in signals:
            loop.add_signal_handler(sig, self.request, sig.name)
        try:
            yield
        finally:
            for sig in signals:
                loop.remove_signal_handler(sig)

    async def _shutdown(self) -> None:
        """Flip health to NOT_SERVING for every service, then drain and stop."""
        await self._health.enter_graceful_shutdown()
        await self._server.stop(self._grace_s)
        _log.info("gRPC server stopped")


async def serve_until_stopped(
    server: grpc.aio.Server,
    health_servicer: HealthServicer,
    *,
    grace_s: float,
    signals: Sequence[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """Serve until SIGTERM/SIGINT (or any other stop), then shut down gracefully."""
    shutdown = GracefulShutdown(server, health_servicer, grace_s=grace_s)
    with shutdown.on_signals(signals):
        await server.wait_for_termination()
    if shutdown.started:
        await shutdown.shutdown()
