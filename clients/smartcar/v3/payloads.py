"""Signals that arrive outside a ``/signals`` answer: a webhook's ``data.signals``.

A VEHICLE_STATE delivery carries its signals as ``[{code, name, group, body, meta,
status}]`` (fields at the top level, times in epoch milliseconds); ``parse_signals`` reads
them into the same ``VehicleSignals`` a ``/signals`` answer gives, so one mapping serves
both. A JSON:API document (``{"data": [...]}``) is read too.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from clients.smartcar._clock import utc_now
from clients.smartcar.units import UnitSystem
from clients.smartcar.v3._fields import vehicle_signals
from clients.smartcar.v3._signal_items import signal_items
from clients.smartcar.v3.signals import VehicleSignals

__all__ = ["parse_signals"]


def parse_signals(
    raw: object, *, received_at: datetime, unit_system: UnitSystem = UnitSystem.METRIC
) -> VehicleSignals:
    """Read a list of signal items (or a document holding one in ``data``).

    ``received_at`` is when the payload arrived (an aware datetime, from the caller's
    clock); ``unit_system`` is the unit of values sent without one. A value that is not a
    list of signals raises SmartcarProtocolError.
    """
    items = raw.get("data") if isinstance(raw, Mapping) else raw
    signals = signal_items(
        items,
        what="signals",
        http_status=200,
        headers={},
        now=utc_now(lambda: received_at),
        secrets=(),
    )
    return vehicle_signals(signals, unit_system=UnitSystem(unit_system))
