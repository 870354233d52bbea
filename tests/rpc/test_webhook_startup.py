"""A real gateway starts although an earlier run left a webhook event it cannot fully apply."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from clients.simulator import SimulatorConfig
from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core.model import ConnectionStatus, TelemetryField, Vehicle, WebhookEvent
from gateway.edge.clock import ManualClock
from storage.crypto import TokenCipher, load_keyring
from storage.database import create_engine, migrate
from storage.uow import unit_of_work_factory
from tests.rpc.rig import gateway_against, gateway_settings, simulator

START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def left_event(event_id: str, stamp: float) -> WebhookEvent:
    """Return a pending VEHICLE_STATE event for `sc-9` whose odometer is stamped `stamp`."""
    locked = {
        "code": "closure-islocked",
        "body": {"value": True},
        "meta": {"oemUpdatedAt": 1_773_140_000_000},
    }
    odometer = {
        "code": "odometer-traveleddistance",
        "body": {"unit": "km", "value": 10.0},
        "meta": {"oemUpdatedAt": stamp},
    }
    payload = {
        "eventId": event_id,
        "eventType": "VEHICLE_STATE",
        "data": {"vehicle": {"id": "sc-9"}, "signals": [odometer, locked]},
    }
    return WebhookEvent(
        event_id=event_id,
        event_type="VEHICLE_STATE",
        smartcar_vehicle_id="sc-9",
        received_at=START,
        payload=payload,
    )


async def test_events_with_absurd_timestamps_left_pending_do_not_block_start(
    tmp_path: Path,
) -> None:
    """Events stored pending with `oemUpdatedAt` 1e20 or in µs (the next start crashed in
    drain_pending) are settled at start-up: the gateway serves, each event is applied
    without its odometer and with the reason on its row."""
    settings = gateway_settings(
        tmp_path,
        VG_WEBHOOK_LISTEN="127.0.0.1:0",
        SMARTCAR_MANAGEMENT_TOKEN=SimulatorConfig().management_token or "",
    )
    engine = create_engine(settings.resolved_database_url)
    await migrate(engine)
    uow = unit_of_work_factory(engine, TokenCipher(load_keyring(None, var_dir=settings.var_dir)))
    async with uow() as unit:
        await unit.vehicles.add(
            Vehicle(id="car-9", status=ConnectionStatus.ACTIVE, smartcar_vehicle_id="sc-9")
        )
        assert await unit.webhook_events.add(left_event("evt-huge", 1e20))
        assert await unit.webhook_events.add(left_event("evt-micro", 1_773_140_000_000_000))
        await unit.commit()
    try:
        async with simulator() as url, gateway_against(settings, url, ManualClock(START)) as rig:
            assert rig.running.webhook_port is not None
            vehicle = await rig.stub.GetVehicle(pb.GetVehicleRequest(vehicle_id="car-9"))
            assert vehicle.vehicle_id == "car-9"
        async with uow() as unit:
            assert await unit.webhook_events.pending(limit=10) == []
            settled = [await unit.webhook_events.get(i) for i in ("evt-huge", "evt-micro")]
            readings = await unit.telemetry.latest("car-9")
    finally:
        await engine.dispose()
    for event in settled:
        assert event is not None
        assert event.applied_at is not None
        assert "odometer: odometer-traveleddistance meta.oemUpdatedAt" in (event.error or "")
    assert set(readings) == {TelemetryField.LOCK_STATUS}
