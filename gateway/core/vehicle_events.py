"""Vehicle events: what the rental service hears about its cars (WatchVehicleEvents).

An event is written in the SAME unit of work as the change it reports (an outbox): it
exists if and only if that change committed, whichever replica made it, and every replica's
`gateway.core.event_feed.EventFeed` streams it from the database in id order.

    kind                        written by                               detail
    LOCK_STATE_CHANGED          a stored lock state that changed          LockChange
                                (`reading_events`: command, poll, read,
                                rental reading, webhook)
    DOORS_OPEN_AT_RENTAL_END    a rental's end reading showing a door,     OpenAtEnd
                                window, trunk or sunroof open
                                (`rental_records.record_end`)
    VEHICLE_ERROR               a VEHICLE_ERROR webhook, per error         VehicleErrorReport
                                (`webhooks`), active or resolved
    LOW_FUEL, LOW_CHARGE        a stored fuel or battery level crossing    LowLevel
                                below its threshold (`reading_events`)
    CONNECTION_STATUS_CHANGED   every status change (`status.save`)        StatusChange
    BUDGET_WARNING              a car's month reaching the warning share   BudgetWarningDetail
                                of its allowance (`budget`)
    FINAL_READING_RECORDED,     an ended rental's final reading settled    FinalReadingDetail
    FINAL_READING_GIVEN_UP      (`rental_records`)

`at` is when the gateway wrote the event, by the writer's clock (the feed judges holes in
the ids by it); when the car recorded what an event reports is in its detail. `rental_id`
is the rental an event concerns: the one that ended for DOORS_OPEN_AT_RENTAL_END and the
final readings, else the rental holding the car when the event was written, if any.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from gateway.core.model import ConnectionStatus, FinalReadingState, RentalRecord, TelemetryField

if TYPE_CHECKING:  # the ports name these values: imported for annotations only
    from gateway.core.ports import UnitOfWork


class VehicleEventKind(StrEnum):
    """What an event reports (see the module docstring)."""

    LOCK_STATE_CHANGED = "LOCK_STATE_CHANGED"
    DOORS_OPEN_AT_RENTAL_END = "DOORS_OPEN_AT_RENTAL_END"
    VEHICLE_ERROR = "VEHICLE_ERROR"
    LOW_FUEL = "LOW_FUEL"
    LOW_CHARGE = "LOW_CHARGE"
    CONNECTION_STATUS_CHANGED = "CONNECTION_STATUS_CHANGED"
    BUDGET_WARNING = "BUDGET_WARNING"
    FINAL_READING_RECORDED = "FINAL_READING_RECORDED"
    FINAL_READING_GIVEN_UP = "FINAL_READING_GIVEN_UP"


KIND_FIELDS: dict[VehicleEventKind, TelemetryField] = {
    VehicleEventKind.LOCK_STATE_CHANGED: TelemetryField.LOCK_STATUS,
    VehicleEventKind.DOORS_OPEN_AT_RENTAL_END: TelemetryField.LOCK_STATUS,
    VehicleEventKind.LOW_FUEL: TelemetryField.FUEL,
    VehicleEventKind.LOW_CHARGE: TelemetryField.BATTERY,
}
"""The telemetry field an event of each kind reveals: a caller that may not read the field
may not see the event (kinds left out reveal none)."""


def visible_kinds(readable: frozenset[TelemetryField]) -> frozenset[VehicleEventKind]:
    """Return the kinds of event a caller that may read `readable` may see."""
    return frozenset(
        k for k in VehicleEventKind if k not in KIND_FIELDS or KIND_FIELDS[k] in readable
    )


class ReadingOrigin(StrEnum):
    """Where the reading behind an event came from."""

    COMMAND = "command"
    """A Lock or Unlock Smartcar confirmed: the state the car was told to take."""
    POLL = "poll"
    """A background read: the scheduler's poll, or a read settling a command's outcome."""
    READ = "read"
    """A caller's GetTelemetry that asked Smartcar."""
    RENTAL_READING = "rental_reading"
    """A rental's start or end reading that asked Smartcar."""
    WEBHOOK = "webhook"
    """A VEHICLE_STATE event Smartcar pushed."""


class ClosureKind(StrEnum):
    """A part of the car that opens."""

    DOOR = "DOOR"
    WINDOW = "WINDOW"
    TRUNK = "TRUNK"
    """The rear trunk or the front one (`Closure.name` rear, front)."""
    SUNROOF = "SUNROOF"


@dataclass(frozen=True, slots=True)
class Closure:
    """One part that opens: its kind and which one (`front_left`, `rear`, …)."""

    kind: ClosureKind
    name: str

    def __str__(self) -> str:
        return f"{self.kind.value.lower()} {self.name}"


class ErrorState(StrEnum):
    """Whether a reported vehicle error still holds."""

    ACTIVE = "ACTIVE"
    RESOLVED = "RESOLVED"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockChange:
    """The car's stored lock state changed: to `locked`, from a reading of `origin` the car
    recorded at `recorded_at` (the command's request id when a command changed it)."""

    locked: bool
    origin: ReadingOrigin
    recorded_at: datetime | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OpenAtEnd:
    """What the rental's end reading showed open (never empty), whether the car was locked,
    and when the car recorded it."""

    open: tuple[Closure, ...]
    locked: bool
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleErrorReport:
    """One error Smartcar reported for the car (VEHICLE_ERROR), as it reported it: type,
    code, description, whether it is active or resolved, and what resolves it (Smartcar's
    resolution type and, when it gives one, the URL to send the owner to)."""

    type: str | None
    code: str | None
    description: str | None
    state: ErrorState
    resolution_type: str | None = None
    resolution_url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LowLevel:
    """A stored fuel or charge level went below its threshold (LOW_FUEL, LOW_CHARGE)."""

    percent: float
    threshold_percent: float
    origin: ReadingOrigin
    recorded_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChange:
    """The connection status changed, and why."""

    from_status: ConnectionStatus
    to_status: ConnectionStatus
    reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetWarningDetail:
    """A car's month reached `warning_percent` of its allowance (once per car and month)."""

    month: str
    requests_this_month: int
    monthly_allowance: int
    warning_percent: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalReadingDetail:
    """An ended rental's final reading was settled: recorded (every field the car can
    report holds a value recorded after the end) or given up (`reason`), with what billing
    reads of it."""

    state: FinalReadingState
    ended_at: datetime
    distance_km: float | None = None
    fuel_percent_change: float | None = None
    battery_percent_change: float | None = None
    reason: str | None = None


EventDetail = (
    LockChange
    | OpenAtEnd
    | VehicleErrorReport
    | LowLevel
    | StatusChange
    | BudgetWarningDetail
    | FinalReadingDetail
)
"""The typed detail of an event; its class follows from the kind (`DETAIL_TYPES`)."""

DETAIL_TYPES: dict[VehicleEventKind, type[EventDetail]] = {
    VehicleEventKind.LOCK_STATE_CHANGED: LockChange,
    VehicleEventKind.DOORS_OPEN_AT_RENTAL_END: OpenAtEnd,
    VehicleEventKind.VEHICLE_ERROR: VehicleErrorReport,
    VehicleEventKind.LOW_FUEL: LowLevel,
    VehicleEventKind.LOW_CHARGE: LowLevel,
    VehicleEventKind.CONNECTION_STATUS_CHANGED: StatusChange,
    VehicleEventKind.BUDGET_WARNING: BudgetWarningDetail,
    VehicleEventKind.FINAL_READING_RECORDED: FinalReadingDetail,
    VehicleEventKind.FINAL_READING_GIVEN_UP: FinalReadingDetail,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleEvent:
    """One event about a vehicle: what happened (`kind`, `detail`), said in words
    (`description`), when the gateway wrote it, the rental it concerns, and its id."""

    vehicle_id: str
    kind: VehicleEventKind
    at: datetime
    description: str
    detail: EventDetail
    rental_id: str | None = None
    id: int | None = None
    """Assigned by storage, increasing: streams resume after the last id they saw."""

    def __post_init__(self) -> None:
        if not isinstance(self.detail, DETAIL_TYPES[self.kind]):
            raise TypeError(f"a {self.kind} event needs a {DETAIL_TYPES[self.kind].__name__}")


async def record(uow: UnitOfWork, event: VehicleEvent) -> None:
    """Write `event` in the caller's unit of work, so it commits (or not) with the change it
    reports; an event naming no rental gets the rental holding the car now, if any."""
    if event.rental_id is None:
        active = await uow.rentals.active(event.vehicle_id)
        if active is not None:
            event = dataclasses.replace(event, rental_id=active.rental_id)
    await uow.events.add(event)


# --- the events, each with its words ----------------------------------------------------------


def lock_changed(vehicle_id: str, change: LockChange, *, at: datetime) -> VehicleEvent:
    """The car's stored lock state changed."""
    state = "locked" if change.locked else "unlocked"
    how = {
        ReadingOrigin.COMMAND: f"by command {change.request_id}" if change.request_id else "",
        ReadingOrigin.POLL: "as a poll read it",
        ReadingOrigin.READ: "as a read asked of Smartcar showed",
        ReadingOrigin.RENTAL_READING: "as a rental reading showed",
        ReadingOrigin.WEBHOOK: "as the car reported through Smartcar's webhook",
    }[change.origin]
    return VehicleEvent(
        vehicle_id=vehicle_id,
        kind=VehicleEventKind.LOCK_STATE_CHANGED,
        at=at,
        description=f"vehicle {vehicle_id} {state}" + (f" {how}" if how else ""),
        detail=change,
    )


def doors_open_at_end(
    vehicle_id: str, rental_id: str, detail: OpenAtEnd, *, at: datetime
) -> VehicleEvent:
    """The rental's end reading shows something open."""
    shown = ", ".join(str(closure) for closure in detail.open)
    return VehicleEvent(
        vehicle_id=vehicle_id,
        kind=VehicleEventKind.DOORS_OPEN_AT_RENTAL_END,
        at=at,
        description=f"rental {rental_id} ended with vehicle {vehicle_id} open: {shown}",
        detail=detail,
        rental_id=rental_id,
    )


def vehicle_error(vehicle_id: str, report: VehicleErrorReport, *, at: datetime) -> VehicleEvent:
    """Smartcar reported an error of the car, or that one is resolved."""
    label = ":".join(part for part in (report.type, report.code) if part) or "UNKNOWN"
    said = f"{label}: {report.description}" if report.description else label
    prefix = "resolved: " if report.state is ErrorState.RESOLVED else ""
    return VehicleEvent(
        vehicle_id=vehicle_id,
        kind=VehicleEventKind.VEHICLE_ERROR,
        at=at,
        description=f"vehicle {vehicle_id}: {prefix}{said}",
        detail=report,
    )


def low_level(
    vehicle_id: str, kind: VehicleEventKind, detail: LowLevel, *, at: datetime
) -> VehicleEvent:
    """A stored fuel (LOW_FUEL) or charge (LOW_CHARGE) level went below its threshold."""
    what = "fuel" if kind is VehicleEventKind.LOW_FUEL else "charge"
    return VehicleEvent(
        vehicle_id=vehicle_id,
        kind=kind,
        at=at,
        description=(
            f"vehicle {vehicle_id} {what} at {detail.percent:g} %, "
            f"below {detail.threshold_percent:g} %"
        ),
        detail=detail,
    )


def status_changed(vehicle_id: str, change: StatusChange, *, at: datetime) -> VehicleEvent:
    """The connection status changed."""
    moved = f"{change.from_status.value} -> {change.to_status.value}"
    return VehicleEvent(
        vehicle_id=vehicle_id,
        kind=VehicleEventKind.CONNECTION_STATUS_CHANGED,
        at=at,
        description=f"vehicle {vehicle_id} {moved}"
        + (f": {change.reason}" if change.reason else ""),
        detail=change,
    )


def budget_warning(vehicle_id: str, detail: BudgetWarningDetail, *, at: datetime) -> VehicleEvent:
    """A car's month reached the warning share of its allowance."""
    return VehicleEvent(
        vehicle_id=vehicle_id,
        kind=VehicleEventKind.BUDGET_WARNING,
        at=at,
        description=(
            f"vehicle {vehicle_id} used {detail.requests_this_month} of its "
            f"{detail.monthly_allowance} billed requests in {detail.month} "
            f"({detail.warning_percent} % warning)"
        ),
        detail=detail,
    )


def final_reading(record: RentalRecord, *, at: datetime) -> VehicleEvent:
    """An ended rental's final reading was recorded or given up (`record.final` says which)."""
    rental, final = record.rental, record.final
    if final is None or final.state is FinalReadingState.PENDING or rental.ended_at is None:
        raise ValueError(f"rental {rental.rental_id} has no settled final reading")
    detail = FinalReadingDetail(
        state=final.state,
        ended_at=rental.ended_at,
        distance_km=record.distance_km,
        fuel_percent_change=record.fuel_percent_change,
        battery_percent_change=record.battery_percent_change,
        reason=final.reason,
    )
    recorded = final.state is FinalReadingState.RECORDED
    description = f"final reading of rental {rental.rental_id} " + (
        "recorded" if recorded else f"given up: {final.reason or 'no reason given'}"
    )
    if recorded and detail.distance_km is not None:
        description += f": {detail.distance_km:g} km driven"
    return VehicleEvent(
        vehicle_id=rental.vehicle_id,
        kind=(
            VehicleEventKind.FINAL_READING_RECORDED
            if recorded
            else VehicleEventKind.FINAL_READING_GIVEN_UP
        ),
        at=at,
        description=description,
        detail=detail,
        rental_id=rental.rental_id,
    )
