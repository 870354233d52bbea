"""WatchVehicleEvents on the wire: its request validated, each `VehicleEvent` as a message.

The rest of the contract's converters are in `gateway.edge.grpc.convert` (whose rules this
module keeps: every violation named by its field path, a repeated field counted before its
values are looked at, enum members mapped by name and checked one to one by a test). Event
kinds and the event enums carry a prefix on the wire (`VEHICLE_EVENT_LOCK_STATE_CHANGED`):
proto enum values share one namespace.

What a caller may see follows its roles' `telemetry_fields`, as for the rental RPCs: an
event revealing a field it may not read is not streamed to it (`shown_kinds`; asking for
such a kind by name is refused at admission, `gateway.edge.grpc.access`), and a final
reading shows only the differences of fields it may read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core import validation
from gateway.core.errors import AccessDenied, FieldViolation, Refusal
from gateway.core.model import ConnectionStatus, FinalReadingState, TelemetryField
from gateway.core.vehicle_events import (
    BudgetWarningDetail,
    ClosureKind,
    ErrorState,
    FinalReadingDetail,
    LockChange,
    LowLevel,
    OpenAtEnd,
    ReadingOrigin,
    StatusChange,
    VehicleErrorReport,
    VehicleEvent,
    VehicleEventKind,
    visible_kinds,
)
from gateway.edge.grpc.convert import timestamp

EVENT_KINDS: dict[pb.VehicleEventKind.ValueType, VehicleEventKind] = {
    pb.VehicleEventKind.Value(f"VEHICLE_EVENT_{kind.name}"): kind for kind in VehicleEventKind
}
_KIND_TO_PB = {kind: value for value, kind in EVENT_KINDS.items()}
_ORIGIN_TO_PB = {o: pb.ReadingOrigin.Value(f"READING_ORIGIN_{o.name}") for o in ReadingOrigin}
_CLOSURE_TO_PB = {k: pb.ClosureKind.Value(f"CLOSURE_{k.name}") for k in ClosureKind}
_ERROR_STATE_TO_PB = {s: pb.VehicleErrorState.Value(f"VEHICLE_ERROR_{s.name}") for s in ErrorState}
_STATUS_TO_PB = {s: pb.ConnectionStatus.Value(s.name) for s in ConnectionStatus}
_FINAL_TO_PB = {s: pb.FinalReadingState.Value(f"FINAL_READING_{s.name}") for s in FinalReadingState}


@dataclass(frozen=True, slots=True)
class EventWatchQuery:
    """WatchVehicleEvents arguments, validated; empty sets mean every vehicle, every kind."""

    vehicle_ids: frozenset[str]
    kinds: frozenset[VehicleEventKind]
    after_id: int | None


def event_watch_query(request: pb.WatchVehicleEventsRequest) -> EventWatchQuery:
    """Validate a WatchVehicleEvents request: how many ids and kinds, each id, each kind
    known, and a non-negative cursor."""
    too_many_ids = validation.count(
        "vehicle_ids", len(request.vehicle_ids), limit=validation.MAX_WATCH_VEHICLE_IDS
    )
    too_many_kinds = validation.count("kinds", len(request.kinds), limit=validation.MAX_EVENT_KINDS)
    violations = [too_many_ids, too_many_kinds]
    if too_many_ids is None:
        violations.extend(
            validation.identifier(f"vehicle_ids[{i}]", vid)
            for i, vid in enumerate(request.vehicle_ids)
        )
    kinds: frozenset[VehicleEventKind] = frozenset()
    if too_many_kinds is None:
        kinds, unknown = _kinds("kinds", request.kinds)
        violations.extend(unknown)
    after_id = request.after_id if request.HasField("after_id") else None
    if after_id is not None and after_id < 0:
        violations.append(FieldViolation("after_id", "must not be negative"))
    validation.ensure(violations)
    return EventWatchQuery(
        vehicle_ids=frozenset(request.vehicle_ids), kinds=kinds, after_id=after_id
    )


def requested_kinds(request: pb.WatchVehicleEventsRequest) -> frozenset[VehicleEventKind]:
    """The known kinds a request names, read no further than a valid request may go (for
    the access check, which runs before validation)."""
    first = request.kinds[: validation.MAX_EVENT_KINDS + 1]
    return frozenset(EVENT_KINDS[v] for v in first if v in EVENT_KINDS)


def shown_kinds(
    kinds: frozenset[VehicleEventKind], readable: frozenset[TelemetryField]
) -> frozenset[VehicleEventKind]:
    """The kinds to stream to a caller that asked for `kinds` (empty: all) and may read
    `readable`: those asked for that it may see, never empty (empty would mean every
    kind); AccessDenied when it may see none of them (the guard refuses such a request
    first, where one is wired)."""
    shown = (kinds or frozenset(VehicleEventKind)) & visible_kinds(readable)
    if not shown:
        named = ", ".join(sorted(kind.value for kind in kinds))
        raise AccessDenied(
            f"the caller may see none of the events asked for ({named})",
            refusal=Refusal.FIELDS_DENIED,
        )
    return shown


def _kinds(
    path: str, values: Sequence[pb.VehicleEventKind.ValueType]
) -> tuple[frozenset[VehicleEventKind], list[FieldViolation]]:
    """Map requested kinds to domain kinds, naming each unknown one by its index."""
    kinds: set[VehicleEventKind] = set()
    violations: list[FieldViolation] = []
    for index, value in enumerate(values):
        kind = EVENT_KINDS.get(value)
        if kind is None:
            violations.append(
                FieldViolation(f"{path}[{index}]", "must be a known vehicle event kind")
            )
        else:
            kinds.add(kind)
    return frozenset(kinds), violations


def vehicle_event_message(
    event: VehicleEvent, *, visible: frozenset[TelemetryField] = frozenset(TelemetryField)
) -> pb.VehicleEvent:
    """Build one WatchVehicleEvents message; a final reading shows only the differences of
    `visible` fields."""
    message = pb.VehicleEvent(
        id=event.id or 0,
        vehicle_id=event.vehicle_id,
        kind=_KIND_TO_PB[event.kind],
        at=timestamp(event.at),
        rental_id=event.rental_id or "",
        description=event.description,
    )
    detail = event.detail
    match detail:
        case LockChange():
            message.lock_state.CopyFrom(
                pb.LockStateChange(
                    locked=detail.locked,
                    origin=_ORIGIN_TO_PB[detail.origin],
                    recorded_at=timestamp(detail.recorded_at),
                    request_id=detail.request_id or "",
                )
            )
        case OpenAtEnd():
            message.open_at_end.CopyFrom(_open_message(detail))
        case VehicleErrorReport():
            message.vehicle_error.CopyFrom(_error_message(detail))
        case LowLevel():
            message.low_level.CopyFrom(
                pb.LowLevel(
                    percent=detail.percent,
                    threshold_percent=detail.threshold_percent,
                    origin=_ORIGIN_TO_PB[detail.origin],
                    recorded_at=timestamp(detail.recorded_at),
                )
            )
        case StatusChange():
            message.status_change.CopyFrom(
                pb.ConnectionStatusChange(
                    from_status=_STATUS_TO_PB[detail.from_status],
                    to_status=_STATUS_TO_PB[detail.to_status],
                    reason=detail.reason or "",
                )
            )
        case BudgetWarningDetail():
            message.budget_warning.CopyFrom(
                pb.BudgetWarning(
                    month=detail.month,
                    requests_this_month=detail.requests_this_month,
                    monthly_allowance=detail.monthly_allowance,
                    warning_percent=detail.warning_percent,
                )
            )
        case FinalReadingDetail():
            message.final_reading.CopyFrom(_final_message(detail, visible))
    return message


def _open_message(detail: OpenAtEnd) -> pb.OpenAtRentalEnd:
    return pb.OpenAtRentalEnd(
        open=[pb.Closure(kind=_CLOSURE_TO_PB[c.kind], name=c.name) for c in detail.open],
        locked=detail.locked,
        recorded_at=timestamp(detail.recorded_at),
    )


def _error_message(detail: VehicleErrorReport) -> pb.VehicleErrorReport:
    return pb.VehicleErrorReport(
        type=detail.type or "",
        code=detail.code or "",
        description=detail.description or "",
        state=_ERROR_STATE_TO_PB[detail.state],
        resolution_type=detail.resolution_type or "",
        resolution_url=detail.resolution_url or "",
    )


def _final_message(
    detail: FinalReadingDetail, visible: frozenset[TelemetryField]
) -> pb.RentalFinalReading:
    message = pb.RentalFinalReading(
        state=_FINAL_TO_PB[detail.state],
        ended_at=timestamp(detail.ended_at),
        reason=detail.reason or "",
    )
    for field, name, value in (
        (TelemetryField.ODOMETER, "distance_km", detail.distance_km),
        (TelemetryField.FUEL, "fuel_percent_change", detail.fuel_percent_change),
        (TelemetryField.BATTERY, "battery_percent_change", detail.battery_percent_change),
    ):
        if value is not None and field in visible:
            setattr(message, name, value)
    return message
