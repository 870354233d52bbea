"""The internal client library against a real gateway on TLS with bearer tokens: typed
exceptions from the rich status, retries only where safe, the sync client too."""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path

import httpx
import pytest

from clients.gateway import AsyncGatewayClient, CallerCredentials, GatewayClient, calls
from clients.gateway import errors as client_errors
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.model import AuditQuery
from tests.rpc.secure_rig import BILLING_TOKEN, RENTAL_TOKEN, Secured, secured

pytestmark = pytest.mark.one_database


def credentials(gateway: Secured, token: str) -> CallerCredentials:
    """Bearer `token` over TLS, trusting the test CA."""
    return CallerCredentials(bearer_token=token, root_certificates=gateway.ca.certificate)


async def connect(client: AsyncGatewayClient, http: httpx.AsyncClient, vehicle_id: str) -> None:
    """GetConnectUrl, follow the simulated Connect, Connect."""
    issued = await client.call(calls.get_connect_url(vehicle_id))
    redirect = await http.get(issued.url)
    code = urllib.parse.parse_qs(urllib.parse.urlsplit(redirect.headers["location"]).query)["code"]
    await client.call(calls.connect(vehicle_id, code=code[0], state=issued.state))


async def arm(http: httpx.AsyncClient, gateway: Secured, **fault: object) -> None:
    """Arm a simulator fault."""
    response = await http.post(gateway.simulator_url + "/sim/faults", json=fault)
    assert response.status_code == 201, response.text


async def test_errors_arrive_typed_with_their_details(tmp_path: Path) -> None:
    """Unknown vehicle, bad field, rental hold, role and identity failures each raise their
    own exception carrying the detail a caller acts on."""
    async with (
        secured(tmp_path, mtls=False) as gateway,
        httpx.AsyncClient(timeout=10) as http,
        AsyncGatewayClient(
            f"localhost:{gateway.port}", credentials=credentials(gateway, RENTAL_TOKEN)
        ) as rental,
        AsyncGatewayClient(
            f"localhost:{gateway.port}", credentials=credentials(gateway, BILLING_TOKEN)
        ) as billing,
        AsyncGatewayClient(
            f"localhost:{gateway.port}", credentials=credentials(gateway, "not-a-token")
        ) as stranger,
    ):
        with pytest.raises(client_errors.NotFound) as missing:
            await rental.call(calls.get_vehicle("no-such-car"))
        assert missing.value.reason == "VEHICLE_NOT_FOUND"
        assert missing.value.request_id
        with pytest.raises(client_errors.InvalidArgument) as invalid:
            await rental.call(calls.get_vehicle("not ok!"))
        assert "vehicle_id" in invalid.value.violations
        await connect(rental, http, "car-1")
        await rental.call(calls.start_rental("car-1", rental_id="r-9"))
        with pytest.raises(client_errors.RentalActive) as held:
            await rental.call(calls.disconnect("car-1"))
        assert held.value.rental_id == "r-9"
        assert held.value.violations[0][1] == "rentals/r-9"
        with pytest.raises(client_errors.PermissionDenied):
            await billing.call(calls.unlock("car-1"))
        rented = await billing.call(calls.get_rental("r-9"))
        assert rented.start_reading.HasField("odometer")
        listed = await billing.call(calls.list_rentals(vehicle_id="car-1"))
        assert [r.rental_id for r in listed.rentals] == ["r-9"]
        with pytest.raises(client_errors.NotFound) as no_rental:
            await billing.call(calls.get_rental("r-404"))
        assert no_rental.value.reason == "RENTAL_NOT_FOUND"
        await rental.call(calls.get_connect_url("car-2"))
        with pytest.raises(client_errors.VehicleNotRentable) as not_rentable:
            await rental.call(calls.start_rental("car-2", rental_id="r-10"))
        assert not_rentable.value.violations[0][:2] == ("CONNECTION_STATUS", "vehicles/car-2")
        with pytest.raises(client_errors.Unauthenticated):
            await stranger.call(calls.get_vehicle("car-1"))


async def test_reads_and_commands_are_retried_only_where_safe(tmp_path: Path) -> None:
    """A read refused once with UNAVAILABLE is retried and answers; a lock whose answer was
    lost is retried with its one request_id and never sent twice; Connect is never
    repeated."""
    async with (
        secured(tmp_path, mtls=False) as gateway,
        httpx.AsyncClient(timeout=10) as http,
        AsyncGatewayClient(
            f"localhost:{gateway.port}", credentials=credentials(gateway, RENTAL_TOKEN)
        ) as client,
    ):
        await connect(client, http, "car-1")
        await arm(http, gateway, kind="server_error", path="batch", count=1)
        telemetry = await client.call(
            calls.get_telemetry("car-1", fields=[pb.TelemetryField.ODOMETER], max_age_s=0)
        )
        assert telemetry.readings[0].HasField("odometer")

        before = (await http.get(gateway.simulator_url + "/sim/stats")).json()
        await arm(http, gateway, kind="reset", path="security", count=1)
        with pytest.raises(client_errors.CommandOutcomeUnknown):
            await client.call(calls.lock("car-1", request_id="l-1"))
        after = (await http.get(gateway.simulator_url + "/sim/stats")).json()
        sent = after["requests"]["by_endpoint"].get("security", 0) - before["requests"][
            "by_endpoint"
        ].get("security", 0)
        assert sent == 1  # three attempts, one command: the gateway replayed the outcome

        trail = await gateway.running.gateway.audit.find(AuditQuery(method="Lock"))
        assert len(trail) == 3  # three attempts of one call...
        assert len({e.request_id for e in trail}) == 1  # ...sharing one request id

        issued = await client.call(calls.get_connect_url("car-2"))
        await arm(http, gateway, kind="server_error", path="token", count=1)
        with pytest.raises(client_errors.Unavailable):
            await client.call(calls.connect("car-2", code="whatever", state=issued.state))
        connects = await gateway.running.gateway.audit.find(
            AuditQuery(method="Connect", vehicle_id="car-2")
        )
        assert len(connects) == 1


async def test_the_sync_client_speaks_the_same(tmp_path: Path) -> None:
    """The sync client gets answers and typed errors over the same TLS port."""
    async with secured(tmp_path, mtls=False) as gateway:

        def use() -> tuple[str, str]:
            with GatewayClient(
                f"localhost:{gateway.port}", credentials=credentials(gateway, RENTAL_TOKEN)
            ) as client:
                issued = client.call(calls.get_connect_url("car-1"))
                try:
                    client.call(calls.get_vehicle("ghost"))
                except client_errors.NotFound as missing:
                    return issued.state, missing.reason
                raise AssertionError("no NotFound")

        state, reason = await asyncio.to_thread(use)
    assert state
    assert reason == "VEHICLE_NOT_FOUND"


async def test_a_failed_connect_and_a_compatibility_check_through_the_client(
    tmp_path: Path,
) -> None:
    """The client reports a Connect redirect's error and gets ConnectFailed naming
    Smartcar's error; it asks CheckCompatibility, a read it may repeat."""
    async with (
        secured(tmp_path, mtls=False) as gateway,
        AsyncGatewayClient(
            f"localhost:{gateway.port}", credentials=credentials(gateway, RENTAL_TOKEN)
        ) as client,
    ):
        issued = await client.call(calls.get_connect_url("car-1"))
        report = calls.connect_failed(
            "car-1", state=issued.state, error="no_vehicles", error_description="No vehicles"
        )
        with pytest.raises(client_errors.ConnectFailed) as failed:
            await client.call(report)
        assert (failed.value.reason, failed.value.connect_error) == (
            "CONNECT_NO_VEHICLES",
            "no_vehicles",
        )
        check = calls.check_compatibility("1FTFW1E50NFA00001", country="US")
        assert check.safe
        answer = await client.call(check)
    assert answer.compatible
