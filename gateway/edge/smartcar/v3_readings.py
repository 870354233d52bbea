"""An API V3 `/signals` answer as the core's `BatchReading`: one result per field asked for.

    signals = await vehicles.signals(token, vehicle_id, user_id=user_id)   # one billed call
    batch = batch_reading(signals, fields, received_at=clock.now())

The V3 client reads the answer into `VehicleSignals`, one typed reading per field in the
units the v2 adapter answers in (km, percent 0-100, litres, kPa), whatever unit Smartcar
spelled. For each field asked for:

- a value (`SignalValue`) is AVAILABLE, with `recorded_at` the signal's `oemUpdatedAt`:
  when the car recorded it. V3 answers Smartcar's stored view, which may be hours old
  while its `retrievedAt` "always looks fresh" (smartcar-v3-notes §7), so `recorded_at`
  is never the fetch time; a value without `oemUpdatedAt` has none (None) rather than a
  made-up one. The age the core reports is then the car's;
- a failure (`SignalFailure`: a per-signal ERROR or UNAVAILABLE inside the 200, or a body
  the client could not read) is NOT_CAPABLE for COMPATIBILITY, PERMISSION_MISSING for
  PERMISSION and UNAVAILABLE otherwise, carrying Smartcar's type, code and description
  (`failures.availability_of`, `failures.failure_of`), as a failed batch item on v2; a
  failure Smartcar names no error for carries its status in the description;
- doors are named as the core names them (`front_left`, …, `row2_column0` beyond two
  rows, as the webhook decoder names them), not as the client does (`frontLeft`);
- nothing (Smartcar holds no signal for the field: an empty store before the car is
  subscribed to a webhook, paging Smartcar advertises but the client does not follow as
  every call is billed) gives no result, which the core answers UNAVAILABLE "missing from
  Smartcar's answer", as a batch item missing on v2.

Sleep. A sleeping car is still read on V3: the values are its last report (their
`recorded_at` says how old) and `connectivitystatus-isasleep` is true. The core learns of
sleep from a VEHICLE_STATE:ASLEEP failure in any result of a batch (`telemetry._fetch`:
it then leaves the car alone for the sleep backoff, `gateway.core.sleep`, and later
answers its last readings marked VEHICLE_STATE:ASLEEP). So when the car says it is asleep,
every result with a value also carries that failure (`ASLEEP`): the value is still
recorded, with its age, and the car is not polled again while it sleeps. A V3 read does
not wake the car, but each costs a billed request for values that cannot change until the
car reports again. A whole answer of 409 VEHICLE_STATE:ASLEEP
raises instead (`failures.translate`: `VehicleAsleep`), as on v2. A field whose signal
failed keeps its own, more specific failure.

Freshness. Whether a value is older than a caller's `max_age` is the core's decision (it
alone knows the request); this translation reports the car's time faithfully. The core
judges freshness by when it fetched a value (`telemetry`), which on V3 can be hours after
the car recorded it: judging V3 values by `recorded_at` is the core's part of issue 13's
"freshness stays honest", not made here.

Plausibility. The client already refuses latitudes, longitudes and percentages outside
their ranges and non-finite numbers (the field fails with its `SmartcarProtocolError`).
Here the gateway's own bounds apply too (`values.checked_result`, the same as on v2).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from clients.smartcar.v3 import (
    SignalCode,
    SignalFailure,
    SignalField,
    SignalReading,
    SignalValue,
    VehicleSignals,
)
from gateway.core.model import (
    Availability,
    BatchReading,
    FieldResult,
    LockStatus,
    TelemetryField,
    UpstreamFailure,
)
from gateway.edge.smartcar.failures import availability_of, failure_of
from gateway.edge.smartcar.values import checked_result, telemetry_value

SIGNAL_FIELDS: Mapping[TelemetryField, SignalField] = {
    field: SignalField(field.value) for field in TelemetryField
}
"""The V3 client's reading for each telemetry field (they share their names)."""

ASLEEP_TYPE, ASLEEP_CODE = "VEHICLE_STATE", "ASLEEP"
"""Smartcar's labels for a sleeping car, which the core reads as sleep."""


def batch_reading(
    signals: VehicleSignals, fields: frozenset[TelemetryField], *, received_at: datetime
) -> BatchReading:
    """Return a result for each of `fields` Smartcar sent signals for (see the module
    docstring); `received_at` is when the answer arrived, by the gateway's clock."""
    asleep = _asleep_failure(signals)
    results: dict[TelemetryField, FieldResult] = {}
    for field in sorted(fields):
        reading = signals.reading(SIGNAL_FIELDS[field])
        if reading is None:
            continue
        result = _result(field, reading, signals.request_id, received_at=received_at)
        if asleep is not None and result.availability is Availability.AVAILABLE:
            result = dataclasses.replace(result, failure=asleep)
        results[field] = result
    return BatchReading(results=results)


def _asleep_failure(signals: VehicleSignals) -> UpstreamFailure | None:
    """Return the sleep mark when the car says it is asleep, else None."""
    connectivity = signals.connectivity
    if not isinstance(connectivity, SignalValue) or connectivity.value.is_asleep is not True:
        return None
    return UpstreamFailure(
        type=ASLEEP_TYPE,
        code=ASLEEP_CODE,
        request_id=signals.request_id,
        description=f"{SignalCode.IS_ASLEEP} is true: the values are the car's last report",
    )


def _result(
    field: TelemetryField,
    reading: SignalReading[object],
    request_id: str | None,
    *,
    received_at: datetime,
) -> FieldResult:
    """Return one field's result from its reading."""
    if isinstance(reading, SignalFailure):
        return _failed(field, reading, request_id)
    value = telemetry_value(reading.value)
    if value is None:  # the client types every field it reads; this guards the mapping
        failure = UpstreamFailure(
            request_id=request_id, description=f"unexpected value for {reading.code}"
        )
        return FieldResult(field=field, availability=Availability.UNAVAILABLE, failure=failure)
    if isinstance(value, LockStatus):
        value = _named_doors(value)
    return checked_result(
        field,
        value,
        recorded_at=reading.oem_updated_at,
        received_at=received_at,
        time_name="oemUpdatedAt",
        source=str(reading.code),
        request_id=request_id,
    )


def _named_doors(value: LockStatus) -> LockStatus:
    """Return the lock status with the core's door names (`frontLeft` -> `front_left`)."""
    doors = tuple(dataclasses.replace(d, door=_snake_case(d.door)) for d in value.doors)
    return dataclasses.replace(value, doors=doors)


def _snake_case(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _failed(field: TelemetryField, reading: SignalFailure, request_id: str | None) -> FieldResult:
    """Return the result of a field whose signal failed."""
    if reading.error is not None:
        return FieldResult(
            field=field,
            availability=availability_of(reading.error),
            failure=failure_of(reading.error),
        )
    failure = UpstreamFailure(
        request_id=request_id,
        description=f"{reading.code}: status {reading.status.value}, no error named",
    )
    return FieldResult(field=field, availability=Availability.UNAVAILABLE, failure=failure)
