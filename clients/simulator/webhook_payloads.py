"""The bodies of Smartcar's v4 webhook events, built from a simulated vehicle's state.

Shapes follow Smartcar's event reference (version 4.0):

    {"eventId", "eventType": "VEHICLE_STATE" | "VEHICLE_ERROR" | "VERIFY", "vehicleId",
     "data": {"user": {"id"}, "vehicle": {"id", "make", "model", "year"},
              "triggers": [{"code", "name", "group"}],                    # VEHICLE_STATE
              "signals": [{"code", "name", "group", "body", "status", "meta"}],
              "errors": [{"type", "code", "state", "description", …}]},  # VEHICLE_ERROR
     "meta": {"version": "4.0", "deliveryId", "deliveredAt", "webhookId", "webhookName",
              "signalCount"?, "mode"}}

`meta` is added per delivery attempt (each attempt has its own `deliveryId`), the rest is
fixed when the event happens. A signal's `meta` carries `oemUpdatedAt` (when the car
recorded it: the same report time `SC-Data-Age` gives for the v2 endpoint) and `fetchedAt`
(simulated now), both in epoch milliseconds. Signals the car cannot report (fuel on an EV,
battery on an ICE car) are present with `status: {"value": "ERROR", "error": {"type":
"COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}}` and no body, as Smartcar sends them.

Signals, by code (metric values; percentages 0-100):
`location-preciselocation` {latitude, longitude, locationType}, `odometer-traveleddistance`
{unit: kilometers, value}, `tractionbattery-stateofcharge` {unit: percent, value},
`tractionbattery-range` {unit: kilometers, value}, `internalcombustionengine-fuellevel`
{unit: percent, value}, `internalcombustionengine-amountremaining` {unit: liters, value},
`internalcombustionengine-range` {unit: kilometers, value},
`internalcombustionengine-oillife` {unit: percent, value}, `closure-islocked` {value},
`closure-doors` {values: [{row, column, isOpen, isLocked}], rowCount, columnCount},
`connectivitystatus-isasleep` {value}.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from clients.simulator.clock import format_iso_ms
from clients.simulator.readings import READ_ENDPOINTS, Units, recorded_at
from clients.simulator.vehicles import VehicleState

VERSION = "4.0"
FIRST_DELIVERY = "FIRST_DELIVERY"
NOT_CAPABLE = {"type": "COMPATIBILITY", "code": "VEHICLE_NOT_CAPABLE"}

Body = Callable[[VehicleState, dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class SignalSpec:
    """One v4 signal: its names, and the v2 endpoint whose reading it is made from."""

    code: str
    name: str
    group: str
    endpoint: str | None
    """The v2 read endpoint it derives from (None: the vehicle's own state, always current)."""
    body: Body

    def ref(self) -> dict[str, str]:
        """Return the `{code, name, group}` triple naming this signal."""
        return {"code": self.code, "name": self.name, "group": self.group}


_DOOR_POSITIONS = {
    "frontLeft": (0, 0),
    "frontRight": (0, 1),
    "backLeft": (1, 0),
    "backRight": (1, 1),
}


def _doors(state: VehicleState, reading: dict[str, Any]) -> dict[str, Any]:
    """`closure-doors` from the v2 security reading."""
    values = [
        {
            "row": _DOOR_POSITIONS[door["type"]][0],
            "column": _DOOR_POSITIONS[door["type"]][1],
            "isOpen": door["status"] == "OPEN",
            "isLocked": reading["isLocked"],
        }
        for door in reading["doors"]
    ]
    return {"values": values, "rowCount": 2, "columnCount": 2}


def _percent(key: str) -> Body:
    """A percent signal from a v2 fraction (0-1)."""
    return lambda _state, reading: {"unit": "percent", "value": round(reading[key] * 100, 1)}


def _measure(key: str, unit: str) -> Body:
    """A `{unit, value}` signal from a metric v2 field."""
    return lambda _state, reading: {"unit": unit, "value": reading[key]}


SIGNALS: tuple[SignalSpec, ...] = (
    SignalSpec(
        code="location-preciselocation",
        name="PreciseLocation",
        group="Location",
        endpoint="location",
        body=lambda _state, r: {
            "latitude": r["latitude"],
            "longitude": r["longitude"],
            "locationType": "CURRENT",
        },
    ),
    SignalSpec(
        code="odometer-traveleddistance",
        name="TraveledDistance",
        group="Odometer",
        endpoint="odometer",
        body=_measure("distance", "kilometers"),
    ),
    SignalSpec(
        code="tractionbattery-stateofcharge",
        name="StateOfCharge",
        group="TractionBattery",
        endpoint="battery",
        body=_percent("percentRemaining"),
    ),
    SignalSpec(
        code="tractionbattery-range",
        name="Range",
        group="TractionBattery",
        endpoint="battery",
        body=_measure("range", "kilometers"),
    ),
    SignalSpec(
        code="internalcombustionengine-fuellevel",
        name="FuelLevel",
        group="InternalCombustionEngine",
        endpoint="fuel",
        body=_percent("percentRemaining"),
    ),
    SignalSpec(
        code="internalcombustionengine-amountremaining",
        name="AmountRemaining",
        group="InternalCombustionEngine",
        endpoint="fuel",
        body=_measure("amountRemaining", "liters"),
    ),
    SignalSpec(
        code="internalcombustionengine-range",
        name="Range",
        group="InternalCombustionEngine",
        endpoint="fuel",
        body=_measure("range", "kilometers"),
    ),
    SignalSpec(
        code="internalcombustionengine-oillife",
        name="OilLife",
        group="InternalCombustionEngine",
        endpoint="engine/oil",
        body=_percent("lifeRemaining"),
    ),
    SignalSpec(
        code="closure-islocked",
        name="IsLocked",
        group="Closure",
        endpoint="security",
        body=lambda _state, r: {"value": r["isLocked"]},
    ),
    SignalSpec(
        code="closure-doors", name="Doors", group="Closure", endpoint="security", body=_doors
    ),
    SignalSpec(
        code="connectivitystatus-isasleep",
        name="IsAsleep",
        group="ConnectivityStatus",
        endpoint=None,
        body=lambda state, _r: {"value": state.asleep},
    ),
)
SIGNALS_BY_CODE = {spec.code: spec for spec in SIGNALS}


def signal_ref(code: str) -> dict[str, str]:
    """Return `{code, name, group}` for a code (unknown codes: group and name from the code)."""
    spec = SIGNALS_BY_CODE.get(code)
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
    out = [_signal(state, spec, now_s=now_s, recorded_s=recorded_s) for spec in SIGNALS]
    for code, body in (overrides or {}).items():
        signal = {
            **signal_ref(code),
            "body": dict(body),
            "status": {"value": "SUCCESS"},
            "meta": {"oemUpdatedAt": _ms(recorded_s or now_s), "fetchedAt": _ms(now_s)},
        }
        out = [s for s in out if s["code"] != code]
        out.append(signal)
    return out


def _signal(
    state: VehicleState, spec: SignalSpec, *, now_s: float, recorded_s: float | None
) -> dict[str, Any]:
    """One signal of `state`: its body as last reported, or why the car has none."""
    if spec.endpoint is None:
        body = spec.body(state, {})
        at_s = now_s
    else:
        endpoint = READ_ENDPOINTS[spec.endpoint]
        if not endpoint.capable(state):
            return {**spec.ref(), "status": {"value": "ERROR", "error": dict(NOT_CAPABLE)}}
        at_s = recorded_at(state, endpoint, now_s)
        body = spec.body(state, endpoint.reader(state, at_s, Units.METRIC))
    return {
        **spec.ref(),
        "body": body,
        "status": {"value": "SUCCESS"},
        "meta": {"oemUpdatedAt": _ms(recorded_s or at_s), "fetchedAt": _ms(now_s)},
    }


def vehicle_json(state: VehicleState) -> dict[str, Any]:
    """Return `data.vehicle`."""
    spec = state.spec
    return {"id": spec.id, "make": spec.make, "model": spec.model, "year": spec.year}


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
    trigger_refs = [signal_ref(code) for code in triggers] or [{"code": FIRST_DELIVERY}]
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
            "triggers": trigger_refs,
            "signals": carried,
        },
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
