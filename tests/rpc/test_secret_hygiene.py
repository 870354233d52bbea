"""No secret leaks: after the whole flow (connect, reads, commands, token rotations and a
renewal, a rental, failures, disconnect), the raw values of every code and token Smartcar
issued, the client secret, the management token and the encryption key appear in no log
line, no byte of the database files and no RPC answer (messages, errors, metadata)."""

from __future__ import annotations

import base64
import dataclasses
import io
import urllib.parse
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest

from clients.simulator import SimulatorConfig, serve_simulator
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.app import running_gateway
from gateway.edge.clock import ManualClock
from tests.instants import START, START_S
from tests.rpc.rig import CLIENT_ID, CLIENT_SECRET, gateway_settings, pointed_at

MANAGEMENT_TOKEN = "management-token-for-the-leak-scan"
TOKEN_KEY = "k1:" + base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")


class Answers:
    """Everything the gateway sent back, as text and bytes."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def keep(self, message: Any) -> Any:
        """Keep a response message (its wire bytes and its text form)."""
        self.parts += [message.SerializeToString(), str(message).encode()]
        return message

    async def error(self, call: Any) -> grpc.StatusCode:
        """Await a call that must fail; keep its details and trailing metadata."""
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await call
        error = failure.value
        self.parts.append((error.details() or "").encode())
        for _, value in error.trailing_metadata() or ():
            self.parts.append(value if isinstance(value, bytes) else str(value).encode())
        return error.code()


def leaks(secrets: list[str], haystacks: dict[str, bytes]) -> list[str]:
    """Return `where: which secret` for every secret found in any haystack."""
    return [
        f"{where}: {secret[:6]}…"
        for where, data in haystacks.items()
        for secret in secrets
        if secret.encode() in data
    ]


def test_the_scan_finds_what_it_looks_for() -> None:
    """The scanner is not blind: a planted secret is reported where it is."""
    assert leaks(["s3cret-value"], {"log": b"...s3cret-value...", "db": b"none"}) == [
        "log: s3cret…"
    ]


@pytest.mark.sqlite_only
async def test_the_whole_flow_leaves_no_secret_anywhere(
    tmp_path: Path, captured_logs: io.StringIO
) -> None:
    """Logs, database files and every answer are free of every raw secret value."""
    config = SimulatorConfig.fast(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        management_token=MANAGEMENT_TOKEN,
        start_at_s=START_S,
    )
    answers = Answers()
    clock = ManualClock(START)
    async with serve_simulator(config) as sim:
        clock.advance((sim.world.clock.now() - clock.now()).total_seconds())
        env = {"VG_TOKEN_KEYS": TOKEN_KEY, "VG_WEBHOOK_LISTEN": "127.0.0.1:0"}
        settings = pointed_at(gateway_settings(tmp_path, **env), sim.base_url)
        smartcar = {**settings.smartcar, "SMARTCAR_MANAGEMENT_TOKEN": MANAGEMENT_TOKEN}
        settings = dataclasses.replace(settings, smartcar=smartcar)
        async with (
            running_gateway(settings, clock=clock) as running,
            grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
            httpx.AsyncClient(timeout=10) as http,
        ):
            stub = pb_grpc.VehicleGatewayStub(channel)

            async def advance(seconds: float) -> None:
                clock.advance(seconds)
                sim.world.clock.advance(seconds)

            for vehicle_id in ("car-1", "car-2"):
                issued = answers.keep(
                    await stub.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id=vehicle_id))
                )
                redirect = await http.get(issued.url)
                query = urllib.parse.urlsplit(redirect.headers["location"]).query
                code = urllib.parse.parse_qs(query)["code"][0]
                user_id = urllib.parse.parse_qs(query)["user_id"][0]
                connect = pb.ConnectRequest(
                    vehicle_id=vehicle_id, code=code, state=issued.state, user_id=user_id
                )
                answers.keep(await stub.Connect(connect))
                # The same code again: refused, and the refusal must not echo it.
                assert await answers.error(stub.Connect(connect)) is not grpc.StatusCode.OK
            read = pb.GetTelemetryRequest(vehicle_id="car-1")
            answers.keep(await stub.GetTelemetry(read))
            answers.keep(await stub.Unlock(pb.UnlockRequest(vehicle_id="car-1", request_id="u1")))
            await advance(3 * 3600)  # access tokens expire: the next calls rotate them
            answers.keep(await stub.GetTelemetry(read))
            answers.keep(await stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="l1")))
            await advance(46 * 86400)  # refresh tokens due for renewal
            await running.gateway.renewal.run_once()
            rental = pb.StartRentalRequest(vehicle_id="car-2", rental_id="r1")
            answers.keep(await stub.StartRental(rental))
            answers.keep(await stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-2")))
            answers.keep(await stub.ListVehicles(pb.ListVehiclesRequest()))
            await answers.error(stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-2")))
            answers.keep(
                await stub.EndRental(pb.EndRentalRequest(vehicle_id="car-2", rental_id="r1"))
            )
            answers.keep(await stub.Disconnect(pb.DisconnectRequest(vehicle_id="car-2")))
            await answers.error(stub.GetTelemetry(pb.GetTelemetryRequest(vehicle_id="car-2")))
            grants = sim.world.stats_json()["token_grants"]
        secrets = [*sim.world.accounts.issued_secrets(), CLIENT_SECRET, MANAGEMENT_TOKEN]
    secrets.append(TOKEN_KEY.split(":", 1)[1])
    # Not vacuous: codes were exchanged and tokens rotated and renewed.
    assert grants["authorization_code"] == 2
    assert grants["refresh_token"] >= 3
    assert len(secrets) >= 12
    database = b"".join(p.read_bytes() for p in (tmp_path / "var").glob("gateway.db*"))
    assert b"smartcar_grants" in database
    found = leaks(
        secrets,
        {
            "logs": captured_logs.getvalue().encode(),
            "database": database,
            "answers": b"\n".join(answers.parts),
        },
    )
    assert found == []
    assert "rpc" in captured_logs.getvalue()  # the logs were captured at all
