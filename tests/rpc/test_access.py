"""Caller authentication and per-method access over real sockets: mTLS with certificates
from a throwaway CA, bearer tokens over TLS and on loopback, development mode's limits."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.app import running_gateway
from gateway.cli import main as cli_main
from gateway.core.model import AuditQuery
from gateway.edge.clock import ManualClock
from gateway.settings import SettingsError
from tests.instants import START
from tests.pki import CertificateAuthority
from tests.rpc.rig import (
    error_info_of,
    gateway_against,
    gateway_settings,
    simulator,
)
from tests.rpc.secure_rig import (
    BILLING_TOKEN,
    ODOMETER_ONLY,
    OPERATOR_TOKEN,
    POLICY,
    RENTAL_TOKEN,
    secured,
)

pytestmark = pytest.mark.one_database


async def code_of(call: object) -> grpc.StatusCode:
    """Await a call and return the status code it failed with."""
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await call  # type: ignore[misc]
    return failure.value.code()


async def test_mtls_callers_get_their_roles_and_nothing_more(tmp_path: Path) -> None:
    """Over mTLS the certificate names the caller: rental works the flow (charging
    included); billing reads the odometer and is refused every other field and method,
    before any work is done."""
    async with secured(tmp_path, mtls=True) as gateway:
        rental = gateway.channel(gateway.ca.client("rental.fleet.internal"))
        billing = gateway.channel(gateway.ca.client("billing.fleet.internal"))
        async with rental, billing:
            as_rental = pb_grpc.VehicleGatewayStub(rental)
            as_billing = pb_grpc.VehicleGatewayStub(billing)
            issued = await as_rental.GetConnectUrl(pb.GetConnectUrlRequest(vehicle_id="car-1"))
            assert issued.state
            odometer = await as_billing.GetTelemetry(ODOMETER_ONLY)
            assert [r.field for r in odometer.readings] == [pb.TelemetryField.ODOMETER]
            everything = pb.GetTelemetryRequest(vehicle_id="car-1")
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await as_billing.GetTelemetry(everything)
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert "LOCATION" in (denied.value.details() or "")
            assert error_info_of(denied.value).metadata["caller"] == "billing-service"
            # Checked before any work: an unknown vehicle is PERMISSION_DENIED, not NOT_FOUND.
            unlock = pb.UnlockRequest(vehicle_id="no-such-car", request_id="r-1")
            assert await code_of(as_billing.Unlock(unlock)) is grpc.StatusCode.PERMISSION_DENIED
            charge = pb.StartChargeRequest(vehicle_id="no-such-car", request_id="r-2")
            assert await code_of(as_rental.StartCharge(charge)) is grpc.StatusCode.NOT_FOUND
            limit = pb.SetChargeLimitRequest(vehicle_id="no-such-car", limit_percent=80)
            for denied_call in (
                as_billing.StartCharge(charge),
                as_billing.StopCharge(pb.StopChargeRequest(vehicle_id="no-such-car")),
                as_billing.SetChargeLimit(limit),
            ):
                assert await code_of(denied_call) is grpc.StatusCode.PERMISSION_DENIED
            # Lock events show LOCK_STATUS, which billing may not read: refused by name.
            locks = pb.WatchVehicleEventsRequest(kinds=[pb.VEHICLE_EVENT_LOCK_STATE_CHANGED])
            stream = as_billing.WatchVehicleEvents(locks, timeout=10)
            with pytest.raises(grpc.aio.AioRpcError) as hidden:
                await stream.read()
            assert hidden.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert error_info_of(hidden.value).metadata["fields"] == "LOCK_STATUS"


async def test_mtls_refuses_unknown_and_missing_certificates(tmp_path: Path) -> None:
    """A certificate the CA signed for a name the policy lacks is UNAUTHENTICATED; no
    certificate, or one from another CA, does not get past the handshake."""
    async with secured(tmp_path, mtls=True) as gateway:
        stranger = gateway.channel(gateway.ca.client("stranger.fleet.internal"))
        async with stranger:
            call = pb_grpc.VehicleGatewayStub(stranger).GetVehicle(
                pb.GetVehicleRequest(vehicle_id="car-1"), timeout=5
            )
            assert await code_of(call) is grpc.StatusCode.UNAUTHENTICATED
        forged = CertificateAuthority("another CA").client("rental.fleet.internal")
        for channel in (gateway.channel(), gateway.channel(forged)):
            async with channel:
                call = pb_grpc.VehicleGatewayStub(channel).GetVehicle(
                    pb.GetVehicleRequest(vehicle_id="car-1"), timeout=5
                )
                assert await code_of(call) is grpc.StatusCode.UNAVAILABLE


async def test_bearer_tokens_over_tls_name_the_caller(tmp_path: Path) -> None:
    """Without client certificates, the bearer token names the caller; an unknown token or
    none is UNAUTHENTICATED."""
    async with secured(tmp_path, mtls=False) as gateway, gateway.channel() as channel:
        stub = pb_grpc.VehicleGatewayStub(channel)

        def bearer(token: str) -> tuple[tuple[str, str], ...]:
            return (("authorization", f"Bearer {token}"),)

        request = pb.GetConnectUrlRequest(vehicle_id="car-1")
        issued = await stub.GetConnectUrl(request, metadata=bearer(RENTAL_TOKEN))
        assert issued.url
        odometer = await stub.GetTelemetry(ODOMETER_ONLY, metadata=bearer(BILLING_TOKEN))
        assert len(odometer.readings) == 1
        call = stub.Lock(pb.LockRequest(vehicle_id="car-1"), metadata=bearer(BILLING_TOKEN))
        assert await code_of(call) is grpc.StatusCode.PERMISSION_DENIED
        call = stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"), metadata=bearer("nope"))
        assert await code_of(call) is grpc.StatusCode.UNAUTHENTICATED
        call = stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
        assert await code_of(call) is grpc.StatusCode.UNAUTHENTICATED


async def test_the_rental_service_and_operators_may_check_compatibility(tmp_path: Path) -> None:
    """CheckCompatibility answers the rental service and an operator (whose role lists it,
    and no command); billing is refused it before Smartcar is asked. The second check of
    the same car is answered from the kept report: Smartcar is asked once."""
    async with secured(tmp_path, mtls=False) as gateway, gateway.channel() as channel:
        stub = pb_grpc.VehicleGatewayStub(channel)
        check = pb.CheckCompatibilityRequest(vin="1FTFW1E50NFA00001", country="US")

        def bearer(token: str) -> tuple[tuple[str, str], ...]:
            return (("authorization", f"Bearer {token}"),)

        for token in (RENTAL_TOKEN, OPERATOR_TOKEN):
            answer = await stub.CheckCompatibility(check, metadata=bearer(token))
            assert answer.compatible
        refused = stub.CheckCompatibility(check, metadata=bearer(BILLING_TOKEN))
        assert await code_of(refused) is grpc.StatusCode.PERMISSION_DENIED
        unlock = stub.Unlock(pb.UnlockRequest(vehicle_id="car-1"), metadata=bearer(OPERATOR_TOKEN))
        assert await code_of(unlock) is grpc.StatusCode.PERMISSION_DENIED
        async with httpx.AsyncClient() as http:
            stats = (await http.get(gateway.simulator_url + "/sim/stats")).json()
        assert stats["requests"]["by_endpoint"]["compatibility"] == 1


async def test_health_and_reflection_follow_the_policy(tmp_path: Path) -> None:
    """Health is open to roles that list it; reflection only to the debug role."""
    async with secured(tmp_path, mtls=True) as gateway:
        engineer = gateway.channel(gateway.ca.client("engineer.fleet.internal"))
        billing = gateway.channel(gateway.ca.client("billing.fleet.internal"))
        async with engineer, billing:
            check = health_pb2.HealthCheckRequest()
            answer = await health_pb2_grpc.HealthStub(engineer).Check(check)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            call = health_pb2_grpc.HealthStub(billing).Check(check)
            assert await code_of(call) is grpc.StatusCode.PERMISSION_DENIED

            async def list_services(channel: grpc.aio.Channel) -> list[str]:
                stub = reflection_pb2_grpc.ServerReflectionStub(channel)
                request = reflection_pb2.ServerReflectionRequest(list_services="")
                async for response in stub.ServerReflectionInfo(iter([request])):
                    return [s.name for s in response.list_services_response.service]
                return []

            assert "vehiclegateway.v1.VehicleGateway" in await list_services(engineer)
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await list_services(billing)
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_a_bearer_token_in_clear_is_accepted_on_loopback_only(tmp_path: Path) -> None:
    """With a policy and no TLS, a loopback caller's bearer token still names it."""
    (tmp_path / "policy.toml").write_text(POLICY)
    settings = gateway_settings(tmp_path, VG_ACCESS_POLICY=str(tmp_path / "policy.toml"))
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        call = rig.stub.Unlock(
            pb.UnlockRequest(vehicle_id="car-1"),
            metadata=(("authorization", f"Bearer {BILLING_TOKEN}"),),
        )
        assert await code_of(call) is grpc.StatusCode.PERMISSION_DENIED
        anonymous = rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-1"))
        assert await code_of(anonymous) is grpc.StatusCode.UNAUTHENTICATED


async def test_development_mode_is_loopback_only_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Without a policy the gateway refuses a non-loopback address, and on loopback it
    warns at start-up that every caller may do anything."""
    exposed = gateway_settings(tmp_path, VG_LISTEN="0.0.0.0:0")
    with pytest.raises(SettingsError, match="VG_ACCESS_POLICY"):
        async with running_gateway(exposed, clock=ManualClock(START)):
            pass
    caplog.set_level(logging.WARNING)
    async with (
        simulator() as url,
        gateway_against(gateway_settings(tmp_path), url, ManualClock(START)),
    ):
        pass
    assert any("DEVELOPMENT MODE" in r.getMessage() for r in caplog.records)


async def test_a_broken_policy_stops_start_up_naming_the_entry(tmp_path: Path) -> None:
    """A policy with an undefined role is refused at start-up with the entry's path."""
    (tmp_path / "policy.toml").write_text('[[callers]]\nname = "x"\nroles = ["ghost"]\n')
    settings = gateway_settings(tmp_path, VG_ACCESS_POLICY=str(tmp_path / "policy.toml"))
    with pytest.raises(SettingsError, match=r"callers\[0\]\.roles: no role 'ghost'"):
        async with running_gateway(settings, clock=ManualClock(START)):
            pass


class Bearer(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Adds `authorization: Bearer <token>` to every unary call of a channel."""

    def __init__(self, token: str) -> None:
        self._metadata = (("authorization", f"Bearer {token}"),)

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        """Call on with the token added to the metadata."""
        metadata = tuple(details.metadata or ()) + self._metadata
        return await continuation(details._replace(metadata=metadata), request)


async def test_every_action_on_a_car_is_audited_and_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Connect, Unlock and Lock by the rental service are in the trail with caller, request
    id, outcome and duration; reads are not, nor an Unlock refused at admission (counted
    and logged instead); the CLI lists them newest first with filters."""
    (tmp_path / "policy.toml").write_text(POLICY)
    env = {"VG_ACCESS_POLICY": str(tmp_path / "policy.toml")}
    settings = gateway_settings(tmp_path, **env)
    async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
        target = f"127.0.0.1:{rig.running.port}"
        rental = grpc.aio.insecure_channel(target, interceptors=[Bearer(RENTAL_TOKEN)])
        billing = grpc.aio.insecure_channel(target, interceptors=[Bearer(BILLING_TOKEN)])
        async with rental, billing:
            rig.stub = pb_grpc.VehicleGatewayStub(rental)
            await rig.connect("car-1")
            await rig.stub.Unlock(
                pb.UnlockRequest(vehicle_id="car-1", request_id="u-1"),
                metadata=(("x-request-id", "unlock-call-1"),),
            )
            await rig.stub.Lock(pb.LockRequest(vehicle_id="car-1", request_id="l-1"))
            await pb_grpc.VehicleGatewayStub(billing).GetTelemetry(
                pb.GetTelemetryRequest(vehicle_id="car-1", fields=[pb.TelemetryField.ODOMETER])
            )
            refused = pb_grpc.VehicleGatewayStub(billing).Unlock(
                pb.UnlockRequest(vehicle_id="car-1", request_id="u-2")
            )
            assert await code_of(refused) is grpc.StatusCode.PERMISSION_DENIED
        trail = await rig.running.gateway.audit.find(AuditQuery(vehicle_id="car-1"))
    assert [(e.caller, e.method, e.outcome) for e in trail] == [
        ("rental-service", "Lock", "OK"),
        ("rental-service", "Unlock", "OK"),
        ("rental-service", "Connect", "OK"),
    ]
    assert trail[1].request_id == "unlock-call-1"
    assert all(e.duration_ms >= 0 for e in trail)

    monkeypatch.setenv("VG_VAR_DIR", str(tmp_path / "var"))
    arguments = ["audit", "--vehicle", "car-1", "--caller", "rental-service"]
    assert await asyncio.to_thread(cli_main, arguments) == 0  # the CLI runs its own loop
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["method"], e["outcome"]) for e in listed] == [
        ("Lock", "OK"),
        ("Unlock", "OK"),
        ("Connect", "OK"),
    ]


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, int, bool]]:
    """Return the refusal log lines so far: (who, reason, count, first of its window)."""
    return [
        (r.who, r.reason, r.count, "more calls" not in r.getMessage())  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "event", None) == "calls_refused"
    ]


async def test_mtls_names_a_caller_by_a_dns_san_only(tmp_path: Path) -> None:
    """A certificate carrying a caller's name only as its subject CN, an email SAN or a URI
    SAN (the policy does not enable URI SANs) is UNAUTHENTICATED; as a DNS SAN it names
    the caller."""
    name = "rental.fleet.internal"
    async with secured(tmp_path, mtls=True) as gateway:
        ca = gateway.ca
        impostors = {
            "subject CN": ca.client(name, dns=[]),
            "email SAN": ca.client("someone", dns=[], emails=[name]),
            "URI SAN": ca.client("someone", dns=[], uris=[name]),
        }
        request = pb.GetConnectUrlRequest(vehicle_id="car-1")
        for what, issued in impostors.items():
            async with gateway.channel(issued) as channel:
                call = pb_grpc.VehicleGatewayStub(channel).GetConnectUrl(request, timeout=5)
                assert await code_of(call) is grpc.StatusCode.UNAUTHENTICATED, what
        async with gateway.channel(ca.client("someone", dns=[name])) as channel:
            answer = await pb_grpc.VehicleGatewayStub(channel).GetConnectUrl(request, timeout=5)
            assert answer.state


async def test_a_certificate_naming_two_callers_is_refused_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A certificate whose DNS SANs are two callers' is UNAUTHENTICATED, not taken as the
    first caller of the policy, and the refusal is logged with the names it carried."""
    caplog.set_level(logging.WARNING)
    names = ["rental.fleet.internal", "billing.fleet.internal"]
    async with secured(tmp_path, mtls=True) as gateway:
        both = gateway.ca.client("rental.fleet.internal", dns=names)
        async with gateway.channel(both) as channel:
            call = pb_grpc.VehicleGatewayStub(channel).GetConnectUrl(
                pb.GetConnectUrlRequest(vehicle_id="car-1"), timeout=5
            )
            assert await code_of(call) is grpc.StatusCode.UNAUTHENTICATED
    assert refusal_lines(caplog) == [(",".join(names), "certificate_ambiguous", 1, True)]


async def test_uri_sans_name_callers_when_the_policy_enables_them(tmp_path: Path) -> None:
    """With `[certificates] uri_sans = true` a URI SAN (a SPIFFE id) names its caller."""
    spiffe = "spiffe://fleet.internal/rental"
    policy = (
        "[certificates]\nuri_sans = true\n"
        + POLICY
        + '\n[[callers]]\nname = "workload"\nroles = ["rental"]\n'
        + f'certificate_names = ["{spiffe}"]\n'
    )
    async with secured(tmp_path, mtls=True, policy=policy) as gateway:
        workload = gateway.ca.client("workload", dns=[], uris=[spiffe])
        async with gateway.channel(workload) as channel:
            answer = await pb_grpc.VehicleGatewayStub(channel).GetConnectUrl(
                pb.GetConnectUrlRequest(vehicle_id="car-1"), timeout=5
            )
            assert answer.state


async def test_refused_calls_are_counted_and_logged_rate_limited_never_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """300 Unlocks refused at admission (no credentials, an unknown token, billing denied)
    write no audit row and no INFO line each: the metric counts them by method and reason,
    and the log has one line per peer and reason until a minute has passed on the
    gateway's clock, then one line with the count; the token is in neither."""
    guessed = "guessed-token-0123456789abcdef"
    (tmp_path / "policy.toml").write_text(POLICY)
    settings = gateway_settings(
        tmp_path,
        VG_ACCESS_POLICY=str(tmp_path / "policy.toml"),
        VG_METRICS_LISTEN="127.0.0.1:0",
    )
    caplog.set_level(logging.INFO)
    clock = ManualClock(START)
    unlock = pb.UnlockRequest(vehicle_id="car-1", request_id="u-1")
    async with simulator() as url, gateway_against(settings, url, clock) as rig:
        for _ in range(100):
            assert await code_of(rig.stub.Unlock(unlock)) is grpc.StatusCode.UNAUTHENTICATED
            call = rig.stub.Unlock(unlock, metadata=(("authorization", f"Bearer {guessed}"),))
            assert await code_of(call) is grpc.StatusCode.UNAUTHENTICATED
            call = rig.stub.Unlock(unlock, metadata=(("authorization", f"Bearer {BILLING_TOKEN}"),))
            assert await code_of(call) is grpc.StatusCode.PERMISSION_DENIED
        assert await rig.running.gateway.audit.find(AuditQuery()) == []
        peer = "ipv4:127.0.0.1"
        assert refusal_lines(caplog) == [
            (peer, "no_credentials", 1, True),
            (peer, "token_unknown", 1, True),
            ("billing-service", "method_denied", 1, True),
        ]
        clock.advance(60)
        assert await code_of(rig.stub.Unlock(unlock)) is grpc.StatusCode.UNAUTHENTICATED
        assert refusal_lines(caplog)[3:] == [
            (peer, "no_credentials", 99, False),
            (peer, "token_unknown", 99, False),
            ("billing-service", "method_denied", 99, False),
            (peer, "no_credentials", 1, True),
        ]
        async with httpx.AsyncClient() as http:
            scraped = await http.get(f"http://127.0.0.1:{rig.running.metrics_port}/metrics")
    method = "/vehiclegateway.v1.VehicleGateway/Unlock"
    for reason, count in (("no_credentials", 101), ("token_unknown", 100), ("method_denied", 100)):
        series = f'vehicle_gateway_refused_calls_total{{method="{method}",reason="{reason}"}}'
        assert f"{series} {count}.0" in scraped.text
    rpc_lines = [r for r in caplog.records if r.getMessage().startswith("rpc ")]
    assert all(r.levelno < logging.INFO for r in rpc_lines)
    assert guessed not in caplog.text
    assert guessed not in scraped.text
