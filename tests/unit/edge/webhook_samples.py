"""Smartcar v4 webhook bodies for tests, shaped like Smartcar's event reference."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any


def millis(moment: datetime) -> int:
    """Return a time as Smartcar's epoch milliseconds."""
    return round(moment.timestamp() * 1000)


def signal(code: str, body: Mapping[str, Any], *, at: datetime) -> dict[str, Any]:
    """Return one successful signal recorded by the car at `at`."""
    group, _, name = code.partition("-")
    return {
        "code": code,
        "name": name,
        "group": group,
        "body": dict(body),
        "status": {"value": "SUCCESS"},
        "meta": {"oemUpdatedAt": millis(at), "fetchedAt": millis(at)},
    }


def failed_signal(code: str, *, error_type: str, error_code: str) -> dict[str, Any]:
    """Return a signal the car could not report."""
    group, _, name = code.partition("-")
    error = {"type": error_type, "code": error_code}
    return {
        "code": code,
        "name": name,
        "group": group,
        "status": {"value": "ERROR", "error": error},
    }


def _meta() -> dict[str, Any]:
    return {
        "version": "4.0",
        "deliveryId": "delivery-1",
        "deliveredAt": 1761896351529,
        "webhookId": "webhook-1",
        "webhookName": "Fleet",
        "mode": "LIVE",
    }


def _vehicle(smartcar_id: str) -> dict[str, Any]:
    return {"id": smartcar_id, "make": "TESLA", "model": "Model 3", "year": 2020}


def state_event(
    event_id: str, smartcar_id: str, signals: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Return a VEHICLE_STATE event carrying `signals`."""
    return {
        "eventId": event_id,
        "eventType": "VEHICLE_STATE",
        "vehicleId": smartcar_id,
        "data": {
            "user": {"id": "user-1"},
            "vehicle": _vehicle(smartcar_id),
            "triggers": [{"code": "FIRST_DELIVERY"}],
            "signals": [dict(s) for s in signals],
        },
        "meta": {**_meta(), "signalCount": len(signals)},
    }


def error_event(
    event_id: str, smartcar_id: str, *, error_type: str, code: str, state: str = "ERROR"
) -> dict[str, Any]:
    """Return a VEHICLE_ERROR event with one error."""
    error = {
        "type": error_type,
        "code": code,
        "state": state,
        "description": f"{code.lower()} (test)",
        "resolution": {"type": "RETRY_LATER"},
        "signals": [{"code": "location-preciselocation", "name": "PreciseLocation"}],
    }
    return {
        "eventId": event_id,
        "eventType": "VEHICLE_ERROR",
        "vehicleId": smartcar_id,
        "data": {"user": {"id": "user-1"}, "vehicle": _vehicle(smartcar_id), "errors": [error]},
        "meta": _meta(),
    }


def verify_event(challenge: str) -> dict[str, Any]:
    """Return a VERIFY event."""
    meta = {k: v for k, v in _meta().items() if k != "mode"}
    meta["deliveredAt"] = "2025-07-31T19:38:42.332Z"
    return {
        "eventId": "verify-1",
        "eventType": "VERIFY",
        "data": {"challenge": challenge},
        "meta": meta,
    }
