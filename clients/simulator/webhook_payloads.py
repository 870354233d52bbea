"""The bodies of Smartcar's webhook events (payload version 4.0, the API V3 webhooks), built
from a simulated vehicle's state.

Shapes follow Smartcar's event reference (version 4.0):

    {"eventId", "eventType": "VEHICLE_STATE" | "VEHICLE_ERROR" | "VERIFY", "vehicleId",
     "data": {"user": {"id"}, "vehicle": {"id", "make", "model", "year", "mode",
                                          "powertrainType"},
              "triggers": [{"code", "name", "group"}],                    # VEHICLE_STATE
              "signals": [{"code", "name", "group", "body", "status", "meta"}],
              "errors": [{"type", "code", "state", "description", …}]},  # VEHICLE_ERROR
     "triggers": [{"type": "SIGNAL_UPDATED", "signal": {"code", "name", "group"}}
                  | {"type": "FIRST_DELIVERY"}],                           # VEHICLE_STATE
     "meta": {"version": "4.0", "deliveryId", "deliveredAt", "webhookId", "webhookName",
              "signalCount"?, "mode"}}

Smartcar's pages put the triggers at the top level (as live payloads do) and a third-party
reading of the spec puts them in `data`: both are sent. The documented top-level
`vehicleId` is sent too, although live payloads name the vehicle only in `data.vehicle.id`.

`meta` is added per delivery attempt (each attempt has its own `deliveryId`), the rest is
fixed when the event happens. A signal's `meta` carries `oemUpdatedAt` (when the car
recorded it: the same report time `SC-Data-Age` gives for the v2 endpoint; 0 for the VIN,
which has none) and `retrievedAt` (simulated now; also sent as `fetchedAt`, the name the
event overview uses), in epoch milliseconds. Signals the car cannot report (fuel on an EV,
battery on an ICE car) are present with `status: {"value": "ERROR", "error": {"type":
"COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}}` and no body, as Smartcar sends them.

Every VEHICLE_STATE carries every signal of the catalogue (see `signals`), in metric units.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from clients.simulator import signals as catalogue
from clients.simulator import v3_payloads
from clients.simulator.clock import format_iso_ms
from clients.simulator.readings import Units
from clients.simulator.vehicles import VehicleState

VERSION = "4.0"
FIRST_DELIVERY = "FIRST_DELIVERY"
SIGNAL_UPDATED = "SIGNAL_UPDATED"
NOT_CAPABLE = {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}


def signal_ref(code: str) -> dict[str, str]:
    """Return `{code, name, group}` for a code (unknown codes: group and name from the code)."""
    spec = catalogue.SIGNALS_BY_CODE.get(code)
    if spec is not None:
        return spec.ref()
    group, _, name = code.partition("-")
    return {"code": code, "name": name, "group": group}


def _ms(epoch_s: float) -> int:
    return round(epoch_s * 1000)


def signals(
    state: VehicleState,
    *,
    now_s: float,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    recorded_s: float | None = None,
) -> list[dict[str, Any]]:
    """Return every signal of the vehicle as of `now_s`.

    `overrides` replaces (or adds) signal bodies by code; `recorded_s` replaces every
    signal's `oemUpdatedAt` (to replay old data, e.g. for out-of-order deliveries).
    """
    out = [_signal(state, spec, now_s=now_s, recorded_s=recorded_s) for spec in catalogue.SIGNALS]
    for code, body in (overrides or {}).items():
        signal = {
            **signal_ref(code),
            "body": dict(body),
            "status": {"value": "SUCCESS"},
            "meta": _meta(_ms(recorded_s or now_s), now_s),
        }
        out = [s for s in out if s["code"] != code]
        out.append(signal)
    return out


def _signal(
    state: VehicleState, spec: catalogue.SignalSpec, *, now_s: float, recorded_s: float | None
) -> dict[str, Any]:
    """One signal of `state`: its body as last reported, or why the car has none."""
    if not spec.capable(state):
        return {**spec.ref(), "status": {"value": "ERROR", "error": dict(NOT_CAPABLE)}}
    reading = catalogue.read(state, spec, now_s=now_s, units=Units.METRIC)
    at_s = reading.recorded_s
    return {
        **spec.ref(),
        "body": reading.body,
        "status": {"value": "SUCCESS"},
        "meta": _meta(0 if at_s is None else _ms(recorded_s or at_s), now_s),
    }


def _meta(oem_updated_ms: int, now_s: float) -> dict[str, int]:
    """Return a signal's `meta`: `retrievedAt` (the documented name) and `fetchedAt` (the
    event overview's) both carry when Smartcar fetched it."""
    fetched_ms = _ms(now_s)
    return {"oemUpdatedAt": oem_updated_ms, "retrievedAt": fetched_ms, "fetchedAt": fetched_ms}


def vehicle_json(state: VehicleState) -> dict[str, Any]:
    """Return `data.vehicle`."""
    return {"id": state.id, **v3_payloads.vehicle_attributes(state)}


def vehicle_state(
    state: VehicleState,
    *,
    user_id: str | None,
    now_s: float,
    triggers: Iterable[str],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    recorded_s: float | None = None,
    signal_meta: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Return a VEHICLE_STATE event (without its per-delivery `meta`); `signal_meta` sets
    keys of some signals' `meta` by code (a faulty OEM timestamp, say)."""
    trigger_refs = [signal_ref(code) for code in triggers]
    top_triggers = [{"type": SIGNAL_UPDATED, "signal": ref} for ref in trigger_refs]
    carried = signals(state, now_s=now_s, overrides=overrides, recorded_s=recorded_s)
    for signal in carried:
        if signal["code"] in (signal_meta or {}) and "meta" in signal:
            signal["meta"] = {**signal["meta"], **(signal_meta or {})[signal["code"]]}
    return {
        "eventId": str(uuid.uuid4()),
        "eventType": "VEHICLE_STATE",
        "vehicleId": state.id,
        "data": {
            "user": {"id": user_id},
            "vehicle": vehicle_json(state),
            "triggers": trigger_refs or [{"code": FIRST_DELIVERY}],
            "signals": carried,
        },
        "triggers": top_triggers or [{"type": FIRST_DELIVERY}],
    }


def vehicle_error(
    state: VehicleState, *, user_id: str | None, error: Mapping[str, Any]
) -> dict[str, Any]:
    """Return a VEHICLE_ERROR event carrying one error (without its per-delivery `meta`)."""
    return {
        "eventId": str(uuid.uuid4()),
        "eventType": "VEHICLE_ERROR",
        "vehicleId": state.id,
        "data": {
            "user": {"id": user_id},
            "vehicle": vehicle_json(state),
            "errors": [{"state": "ERROR", **error}],
        },
    }


def verify(challenge: str) -> dict[str, Any]:
    """Return a VERIFY event (without its per-delivery `meta`)."""
    return {"eventId": str(uuid.uuid4()), "eventType": "VERIFY", "data": {"challenge": challenge}}


def with_meta(
    event: Mapping[str, Any], *, webhook_id: str, webhook_name: str, now_s: float
) -> dict[str, Any]:
    """Return the event as one delivery attempt sends it: with a fresh `deliveryId`.

    VERIFY's `deliveredAt` is an ISO string, the vehicle events' epoch milliseconds, as
    Smartcar's examples show them.
    """
    is_verify = event["eventType"] == "VERIFY"
    meta: dict[str, Any] = {
        "version": VERSION,
        "deliveryId": str(uuid.uuid4()),
        "deliveredAt": format_iso_ms(now_s) if is_verify else _ms(now_s),
        "webhookId": webhook_id,
        "webhookName": webhook_name,
    }
    if not is_verify:
        meta["mode"] = "LIVE"
    if event["eventType"] == "VEHICLE_STATE":
        meta["signalCount"] = len(event["data"]["signals"])
    return {**event, "meta": meta}
