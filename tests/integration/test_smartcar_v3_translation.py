"""The V3 translation against the simulator over real HTTP: a car connected through
simulated Connect, an application token from `/oauth2/token`, its `/v3/.../signals` read
by the V3 client and translated, compared with the v2 adapter's batch of the same car; a
sleeping car, another user's car, a command, and webhook deliveries decoded."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from clients import smartcar as sc
from clients.simulator import serve_simulator
from clients.smartcar.v3 import (
    ApplicationCredentials,
    SmartcarConnectionsV3,
    SmartcarIAM,
    SmartcarVehiclesV3,
    V3Endpoints,
    VehicleSignals,
)
from gateway.core import errors
from gateway.core.model import (
    Availability,
    BatchReading,
    Command,
    LockAction,
    LockStatus,
    Odometer,
    SmartcarAccess,
    TelemetryField,
)
from gateway.core.reports import ErrorReport, ReportedError, StateReport
from gateway.core.secret import Secret
from gateway.edge.clock import ManualClock
from gateway.edge.smartcar.adapter import SmartcarV2
from gateway.edge.smartcar.events import event_from, smartcar_user_id
from gateway.edge.smartcar.failures import translate
from gateway.edge.smartcar.v3_adapter import SmartcarRouter, SmartcarV3
from gateway.edge.smartcar.v3_commands import ensure_confirmed
from gateway.edge.smartcar.v3_events import SmartcarV3Events
from gateway.edge.smartcar.v3_readings import batch_reading
from tests.instants import START
from tests.integration.simulator.conftest import unlimited_config
from tests.integration.simulator.flows import CLIENT, REDIRECT_URI, advance, sim_client, vin_of
from tests.integration.simulator.test_v3_management import rig_with
from tests.integration.simulator.v3_flows import V3Car, connect_v3

ALL = frozenset(TelemetryField)
V2_SCOPES = (
    "read_vehicle_info read_vin read_location read_odometer read_battery read_fuel "
    "read_security control_security read_engine_oil"
)


@dataclass
class Rig:
    """A simulator, the V3 client with an application token, and the v2 adapter."""

    http: httpx.AsyncClient
    vehicles: SmartcarVehiclesV3
    token: sc.Secret
    v2: SmartcarV2
    auth: sc.SmartcarAuth

    async def connect(self, powertrain: str, **extra: str) -> V3Car:
        """Connect the first catalogue car of `powertrain` through simulated Connect."""
        vin = await vin_of(self.http, powertrain=powertrain)
        return await connect_v3(
            self.http, token=self.token.reveal(), single_select_vin=vin, **extra
        )

    async def signals(self, car: V3Car) -> VehicleSignals:
        """Read the car's signals with the V3 client (application token + sc-user-id)."""
        return await self.vehicles.signals(self.token, car.vehicle_id, user_id=car.user_id)

    async def v2_batch(self, car: V3Car) -> BatchReading:
        """Exchange the redirect's code and read every field through the v2 adapter."""
        pair = await self.auth.exchange_code(car.code)
        access = SmartcarAccess.v2(Secret(pair.access_token.reveal()))
        return await self.v2.read(access, car.vehicle_id, ALL)


@asynccontextmanager
async def rig() -> AsyncIterator[Rig]:
    """Serve a simulator and wire both clients to it; the V3 token comes from its IAM."""
    config = unlimited_config(client_id=CLIENT[0], client_secret=CLIENT[1])
    async with serve_simulator(config) as sim, sim_client(sim.base_url) as http:
        origin = sim.base_url
        endpoints = V3Endpoints(vehicle_origin=origin, iam_origin=origin, management_origin=origin)
        credentials = ApplicationCredentials(
            client_id=CLIENT[0], client_secrets=(sc.Secret(CLIENT[1]),)
        )
        iam = SmartcarIAM(http=http, credentials=credentials, endpoints=endpoints)
        grant = await iam.request_token()
        v2_endpoints = sc.SmartcarEndpoints.for_base_url(origin)
        v2_credentials = sc.ClientCredentials(
            client_id=CLIENT[0], client_secret=sc.Secret(CLIENT[1]), redirect_uri=REDIRECT_URI
        )
        auth = sc.SmartcarAuth(http=http, credentials=v2_credentials, endpoints=v2_endpoints)
        yield Rig(
            http=http,
            vehicles=SmartcarVehiclesV3(http=http, endpoints=endpoints),
            token=grant.token.access_token,
            v2=SmartcarV2(
                auth=auth,
                vehicles=sc.SmartcarVehicles(http=http, endpoints=v2_endpoints),
                clock=ManualClock(START),  # the simulator's clock starts there too
            ),
            auth=auth,
        )


def with_core_door_names(value: object) -> object:
    """Return a v2 value with its doors named as the core names them (the v2 adapter
    passes on the client's `frontLeft`; V3 and the webhook decoder say `front_left`), and
    only its doors: v2.0's windows, trunks and sunroof have no V3 reading yet."""
    if not isinstance(value, LockStatus):
        return value
    names = {"frontLeft": "front_left", "frontRight": "front_right"}
    names |= {"backLeft": "back_left", "backRight": "back_right"}
    doors = tuple(dataclasses.replace(d, door=names.get(d.door, d.door)) for d in value.doors)
    return LockStatus(is_locked=value.is_locked, doors=doors)


def answered_at(signals: VehicleSignals) -> datetime:
    """When Smartcar (the simulator's clock) answered: the latest `retrievedAt`."""
    return max(s.retrieved_at for s in signals.signals if s.retrieved_at is not None)


@pytest.mark.parametrize("powertrain", ["ICE", "BEV", "PHEV"])
async def test_v3_signals_translate_to_the_v2_batch_of_the_same_car(powertrain: str) -> None:
    """Every field read through V3 and translated has the availability, the value (in km,
    percent, litres, kPa) and the recorded time the v2 adapter's batch gives the same car
    (a scope left out: PERMISSION_MISSING on both; an EV's fuel: NOT_CAPABLE on both)."""
    async with rig() as running:
        car = await running.connect(powertrain, scope=V2_SCOPES)
        signals = await running.signals(car)
        v3 = batch_reading(signals, ALL, received_at=answered_at(signals)).results
        v2 = (await running.v2_batch(car)).results
    assert set(v3) == set(v2) == ALL
    for field in TelemetryField:
        assert v3[field].availability is v2[field].availability, field
        assert v3[field].value == with_core_door_names(v2[field].value), field
        assert v3[field].recorded_at == v2[field].recorded_at, field
    assert v3[TelemetryField.TIRE_PRESSURE].availability is Availability.PERMISSION_MISSING
    capable = {f for f in ALL if v3[f].availability is Availability.AVAILABLE}
    assert {TelemetryField.ODOMETER, TelemetryField.LOCATION, TelemetryField.LOCK_STATUS} <= capable
    not_capable = {f for f in ALL if v3[f].availability is Availability.NOT_CAPABLE}
    expected = {
        "ICE": {TelemetryField.BATTERY},
        "BEV": {TelemetryField.FUEL, TelemetryField.ENGINE_OIL},
        "PHEV": set(),
    }
    assert not_capable == expected[powertrain]


async def test_a_sleeping_car_answers_its_last_report_marked_asleep() -> None:
    """Fifty minutes into its sleep the car's values are still read, dated when it
    reported them (not when Smartcar answered), each marked VEHICLE_STATE:ASLEEP."""
    async with rig() as running:
        car = await running.connect("ICE")
        slept = await running.http.post(
            f"/sim/vehicles/{car.vehicle_id}/sleep", json={"asleep": True}
        )
        assert slept.status_code == 200, slept.text
        await advance(running.http, 3000)  # inside the application token's hour
        signals = await running.signals(car)
    answered = answered_at(signals)
    results = batch_reading(signals, ALL, received_at=answered).results
    odometer = results[TelemetryField.ODOMETER]
    assert odometer.availability is Availability.AVAILABLE
    assert isinstance(odometer.value, Odometer)
    assert odometer.recorded_at is not None
    assert odometer.recorded_at < answered - timedelta(minutes=45)
    assert odometer.failure is not None
    assert (odometer.failure.type, odometer.failure.code) == ("VEHICLE_STATE", "ASLEEP")
    battery = results[TelemetryField.BATTERY]
    assert battery.availability is Availability.NOT_CAPABLE


async def test_another_users_car_is_refused_as_an_authorization_mismatch() -> None:
    """A signals read naming a user with no connection to the car is the simulator's 403
    ACCESS_DENIED, which translates to AuthorizationMismatch."""
    async with rig() as running:
        car = await running.connect("ICE")
        with pytest.raises(sc.AccessDenied) as refused:
            await running.vehicles.signals(running.token, car.vehicle_id, user_id="someone-else")
    translated = translate(refused.value)
    assert isinstance(translated, errors.AuthorizationMismatch)
    assert running.token.reveal() not in translated.message


async def test_a_v3_lock_is_confirmed_and_then_read_back_locked() -> None:
    """A lock through V3 is confirmed (`ensure_confirmed` returns); the signals then show
    the car locked."""
    async with rig() as running:
        car = await running.connect("BEV")
        await running.vehicles.unlock(running.token, car.vehicle_id, user_id=car.user_id)
        execution = await running.vehicles.lock(running.token, car.vehicle_id, user_id=car.user_id)
        ensure_confirmed(execution)
        signals = await running.signals(car)
    lock = batch_reading(
        signals, frozenset({TelemetryField.LOCK_STATUS}), received_at=answered_at(signals)
    ).results[TelemetryField.LOCK_STATUS]
    assert isinstance(lock.value, LockStatus)
    assert lock.value.is_locked


async def test_the_simulators_webhook_deliveries_decode_to_reports() -> None:
    """A subscribed car's FIRST_DELIVERY becomes a state report whose readings match the
    car's translated signals; a VEHICLE_ERROR becomes an error report; both name the
    car's user."""
    async with rig_with() as webhook:
        assert (await webhook.subscribe()).status_code == 202
        [first] = await webhook.callback.wait_for(1)
        signals = await SmartcarVehiclesV3(
            http=webhook.http,
            endpoints=V3Endpoints(
                vehicle_origin=str(webhook.http.base_url).rstrip("/"),
                iam_origin=str(webhook.http.base_url).rstrip("/"),
                management_origin=str(webhook.http.base_url).rstrip("/"),
            ),
        ).signals(
            sc.Secret(webhook.car.app_token), webhook.car.vehicle_id, user_id=webhook.car.user_id
        )
        error: dict[str, Any] = {
            "vehicle_id": webhook.car.vehicle_id,
            "type": "VEHICLE_ERROR",
            "error": {"type": "VEHICLE_STATE", "code": "UNREACHABLE"},
        }
        hook = webhook.hook["webhookId"]
        sent = await webhook.http.post(f"/sim/webhooks/{hook}/events", json=error)
        assert sent.status_code == 202, sent.text
        [_, failed] = await webhook.callback.wait_for(2)
    arrived = answered_at(signals)
    state = event_from(first.payload, received_at=arrived)
    assert state.smartcar_vehicle_id == webhook.car.vehicle_id
    assert smartcar_user_id(state.payload) == webhook.car.user_id
    report = SmartcarV3Events().decode(state)
    assert isinstance(report, StateReport)
    assert (report.rejections, report.asleep) == ((), False)
    delivered = {reading.field: reading for reading in report.readings}
    read = batch_reading(signals, ALL, received_at=arrived).results
    for field, reading in delivered.items():
        assert reading.value == read[field].value, field
        assert reading.recorded_at == read[field].recorded_at, field
    assert {TelemetryField.ODOMETER, TelemetryField.LOCK_STATUS} <= set(delivered)
    errored = event_from(failed.payload, received_at=arrived)
    assert smartcar_user_id(errored.payload) == webhook.car.user_id
    decoded = SmartcarV3Events().decode(errored)
    assert isinstance(decoded, ErrorReport)
    [reported] = decoded.errors
    assert reported.label == "VEHICLE_STATE:UNREACHABLE"
    assert not reported.resolved
    assert isinstance(reported, ReportedError)


def v3_adapter(running: Rig) -> SmartcarV3:
    """The V3 adapter on the rig's simulator, dating answers by the simulator's clock."""
    origin = str(running.http.base_url).rstrip("/")
    endpoints = V3Endpoints(vehicle_origin=origin, iam_origin=origin, management_origin=origin)
    return SmartcarV3(
        vehicles=running.vehicles,
        connections=SmartcarConnectionsV3(http=running.http, endpoints=endpoints),
        clock=ManualClock(START),
    )


async def test_the_v3_adapter_serves_the_ports_vehicle_calls_from_the_simulator() -> None:
    """Through SmartcarV3 with the application token and the user id: the user's cars,
    the car's identity and VIN, its permissions, one read, a lock, and a disconnect that
    removes the connection and then the user."""
    async with rig() as running:
        car = await running.connect("ICE", scope=V2_SCOPES)
        adapter = v3_adapter(running)
        access = SmartcarAccess.v3(Secret(running.token.reveal()), user_id=car.user_id)
        assert await adapter.vehicle_ids(access) == [car.vehicle_id]
        info = await adapter.vehicle_info(access, car.vehicle_id)
        assert info.vin == await vin_of(running.http, powertrain="ICE")
        assert info.make
        granted = await adapter.permissions(access, car.vehicle_id)
        assert {"read_odometer", "control_security"} <= granted
        assert "read_tires" not in granted
        batch = await adapter.read(access, car.vehicle_id, frozenset({TelemetryField.ODOMETER}))
        assert batch.results[TelemetryField.ODOMETER].availability is Availability.AVAILABLE
        await adapter.command(access, car.vehicle_id, Command(action=LockAction.LOCK))
        await adapter.disconnect(access, car.vehicle_id)
        assert await adapter.vehicle_ids(access) == []
        with pytest.raises(errors.GatewayError):
            await adapter.read(access, car.vehicle_id, frozenset({TelemetryField.ODOMETER}))


async def test_the_router_sends_each_access_to_its_api() -> None:
    """SmartcarRouter: a V3 access reaches the V3 adapter, a v2 access the v2 one."""
    async with rig() as running:
        car = await running.connect("ICE", scope=V2_SCOPES)
        router = SmartcarRouter(v2=running.v2, v3=v3_adapter(running))
        v3 = SmartcarAccess.v3(Secret(running.token.reveal()), user_id=car.user_id)
        pair = await running.auth.exchange_code(car.code)
        v2 = SmartcarAccess.v2(Secret(pair.access_token.reveal()))
        odometer = frozenset({TelemetryField.ODOMETER})
        for access in (v3, v2):
            batch = await router.read(access, car.vehicle_id, odometer)
            assert batch.results[TelemetryField.ODOMETER].availability is Availability.AVAILABLE
        with pytest.raises(ValueError, match="V3"):
            await SmartcarRouter(v2=running.v2).read(v3, car.vehicle_id, odometer)
