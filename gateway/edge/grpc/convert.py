"""Converters between the protobuf contract and the domain: the only module that knows both.

Requests become small frozen values after `gateway.core.validation` has checked every field
(all violations are collected and raised together as one `InvalidArgument`, each naming its
field path: `vehicle_id`, `fields[1]`, `max_age`, `page_size`). A repeated field is counted
before its values are looked at: an oversized one is refused as a whole. Domain values become
response messages. Enum members map by name, so the tables below are bijections a test checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core import validation
from gateway.core.errors import FieldViolation
from gateway.core.model import (
    Availability,
    Battery,
    Capability,
    Charge,
    ChargeAction,
    ChargingState,
    CommandAction,
    CommandResult,
    CommandState,
    CompatibilityReport,
    ConnectFailure,
    ConnectionStatus,
    ConnectUrl,
    EngineOil,
    FieldReading,
    FinalReadingState,
    Fuel,
    LastCommand,
    Location,
    LockAction,
    LockStatus,
    Odometer,
    ReadingSource,
    Rental,
    RentalPage,
    RentalRecord,
    SmartcarApi,
    SourcedReading,
    StatusTransition,
    Telemetry,
    TelemetryField,
    TelemetryValue,
    TirePressure,
    VehiclePage,
    VehiclePanel,
)
from gateway.core.rental_readings import RENTAL_FIELDS

TELEMETRY_FIELDS: dict[pb.TelemetryField.ValueType, TelemetryField] = {
    pb.TelemetryField.Value(f.name): f for f in TelemetryField
}
CONNECTION_STATUSES: dict[pb.ConnectionStatus.ValueType, ConnectionStatus] = {
    pb.ConnectionStatus.Value(s.name): s for s in ConnectionStatus
}
_STATUS_TO_PB = {s: v for v, s in CONNECTION_STATUSES.items()}
_FIELD_TO_PB = {f: v for v, f in TELEMETRY_FIELDS.items()}
_AVAILABILITY_TO_PB = {a: pb.Availability.Value(a.name) for a in Availability}
_ACTION_TO_PB = {a: pb.LockAction.Value(a.name) for a in LockAction}
_CHARGE_ACTION_TO_PB = {a: pb.ChargeAction.Value(a.name) for a in ChargeAction}
_CHARGING_STATE_TO_PB = {s: pb.ChargingState.Value(s.name) for s in ChargingState}
_COMMAND_STATE_TO_PB = {s: pb.CommandState.Value(s.name) for s in CommandState}
_API_TO_PB = {api: pb.SmartcarApi.Value(f"SMARTCAR_API_{api.name}") for api in SmartcarApi}
_CAPABILITY_TO_PB = {
    Capability.CAPABLE: pb.PERMISSION_CAPABLE,
    Capability.NOT_CAPABLE: pb.PERMISSION_NOT_CAPABLE,
    Capability.UNKNOWN: pb.PERMISSION_CAPABILITY_UNKNOWN,
}
_SOURCE_TO_PB = {s: pb.ReadingSource.Value(f"READING_SOURCE_{s.name}") for s in ReadingSource}
_FINAL_TO_PB = {s: pb.FinalReadingState.Value(f"FINAL_READING_{s.name}") for s in FinalReadingState}
_RENTAL_READING_MEMBERS = {f: f.value for f in RENTAL_FIELDS}
"""The member of a RentalReading message holding each field (named after the field)."""

# google.protobuf.Duration's documented range: about 10,000 years either way.
_MAX_DURATION_SECONDS = 315_576_000_000
# google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
_MIN_TIMESTAMP_SECONDS = -62_135_596_800
_MAX_TIMESTAMP_SECONDS = 253_402_300_799
_NANOS_PER_SECOND = 1_000_000_000


# --- requests -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectUrlQuery:
    """A validated GetConnectUrl request."""

    vehicle_id: str
    vin: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectArgs:
    """A validated Connect request."""

    vehicle_id: str
    code: str
    state: str
    user_id: str
    failure: ConnectFailure | None = None
    """The redirect's `error` and `error_description`, when connecting failed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatibilityQuery:
    """A validated CheckCompatibility request: VIN and country, upper case."""

    vin: str
    country: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryQuery:
    """A validated GetTelemetry request; empty `fields` means all, `max_age` None the default."""

    vehicle_id: str
    fields: frozenset[TelemetryField]
    max_age: timedelta | None
    held_when_limited: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandArgs:
    """A validated command request (Lock, Unlock, StartCharge, StopCharge, SetChargeLimit);
    empty `request_id` lets the gateway pick one; `charge_limit_percent` is SetChargeLimit's."""

    vehicle_id: str
    action: CommandAction
    request_id: str
    charge_limit_percent: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalArgs:
    """A validated StartRental or EndRental request."""

    vehicle_id: str
    rental_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AllowanceArgs:
    """A validated SetRequestAllowance request; `monthly_allowance` None: the fleet's."""

    vehicle_id: str
    monthly_allowance: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalListQuery:
    """A validated ListRentals request: filters (None: none), page size and token."""

    vehicle_id: str | None
    ended_after: datetime | None
    ended_before: datetime | None
    page_size: int
    page_token: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleListQuery:
    """A validated ListVehicles request; `status` None means every status."""

    status: ConnectionStatus | None
    page_size: int
    page_token: str


def connect_url_query(request: pb.GetConnectUrlRequest) -> ConnectUrlQuery:
    """Validate a GetConnectUrl request."""
    validation.ensure(
        [
            validation.identifier("vehicle_id", request.vehicle_id),
            validation.vin("vin", request.vin),
        ]
    )
    return ConnectUrlQuery(vehicle_id=request.vehicle_id, vin=request.vin.upper() or None)


def connect_args(request: pb.ConnectRequest) -> ConnectArgs:
    """Validate a Connect request: `code` (v2), `user_id` (V3) or both, each well formed;
    which one is needed depends on the API new connections use (the core checks that).
    Or the `error` (and `error_description`) of a failed redirect instead of both."""
    failed = bool(request.error)
    neither = not request.code and not request.user_id and not failed
    validation.ensure(
        [
            validation.identifier("vehicle_id", request.vehicle_id),
            validation.opaque("code", request.code, max_length=validation.MAX_CODE_LENGTH)
            if request.code or neither
            else None,
            validation.opaque("state", request.state, max_length=validation.MAX_STATE_LENGTH),
            validation.opaque("user_id", request.user_id, max_length=validation.MAX_ID_LENGTH)
            if request.user_id
            else None,
            *_redirect_error(request),
        ]
    )
    failure = None
    if failed:
        failure = ConnectFailure(error=request.error, description=request.error_description)
    return ConnectArgs(
        vehicle_id=request.vehicle_id,
        code=request.code,
        state=request.state,
        user_id=request.user_id,
        failure=failure,
    )


def _redirect_error(request: pb.ConnectRequest) -> list[FieldViolation | None]:
    """Check a failed redirect's `error` and `error_description`: bounded and printable,
    the description only with an error, and neither beside a code or user id."""
    description = validation.free_text(
        "error_description",
        request.error_description,
        max_length=validation.MAX_CONNECT_ERROR_DESCRIPTION_LENGTH,
    )
    if not request.error:
        if request.error_description:
            return [FieldViolation("error_description", "is only accepted with error")]
        return []
    if request.code or request.user_id:
        clash = FieldViolation(
            "error", "must not come with code or user_id: a redirect carries one or the other"
        )
        return [clash, description]
    error = validation.opaque(
        "error", request.error, max_length=validation.MAX_CONNECT_ERROR_LENGTH
    )
    return [error, description]


def compatibility_query(request: pb.CheckCompatibilityRequest) -> CompatibilityQuery:
    """Validate a CheckCompatibility request: a VIN and an ISO 3166-1 alpha-2 country."""
    validation.ensure(
        [
            validation.required_vin("vin", request.vin),
            validation.country("country", request.country),
        ]
    )
    return CompatibilityQuery(vin=request.vin.upper(), country=request.country.upper())


def telemetry_query(request: pb.GetTelemetryRequest) -> TelemetryQuery:
    """Validate a GetTelemetry request: known fields, and a max_age within bounds.

    What a request asks for besides its vehicle is kept once validated (readers repeat the
    same few requests for every car, a dashboard every minute): a request asking the same
    gets the kept fields and max_age, and only its vehicle id is checked. Only valid
    requests are kept."""
    has_max_age = request.HasField("max_age")
    key = (
        tuple(request.fields),
        request.max_age.seconds if has_max_age else None,
        request.max_age.nanos if has_max_age else None,
        request.held_when_rate_limited,
    )
    kept = _QUERIES.get(key)
    if kept is None or validation.identifier("vehicle_id", request.vehicle_id) is not None:
        query = _checked_telemetry_query(request)
        if len(_QUERIES) >= _QUERIES_KEPT:
            del _QUERIES[next(iter(_QUERIES))]
        _QUERIES[key] = query
        return query
    return TelemetryQuery(
        vehicle_id=request.vehicle_id,
        fields=kept.fields,
        max_age=kept.max_age,
        held_when_limited=kept.held_when_limited,
    )


_QUERIES: dict[tuple[tuple[int, ...], int | None, int | None, bool], TelemetryQuery] = {}
"""A valid query per request, keyed by every field of the request but the vehicle id."""

_QUERIES_KEPT = 256
"""Kept at most; past it the oldest kept is dropped."""


def _checked_telemetry_query(request: pb.GetTelemetryRequest) -> TelemetryQuery:
    """Validate a GetTelemetry request (see `telemetry_query`)."""
    too_many = validation.count(
        "fields", len(request.fields), limit=validation.MAX_TELEMETRY_FIELDS
    )
    fields: frozenset[TelemetryField] = frozenset()
    field_violations: list[FieldViolation | None] = [too_many]
    if too_many is None:
        fields, named = _telemetry_fields("fields", request.fields)
        field_violations.extend(named)
    max_age: timedelta | None = None
    age_violation: FieldViolation | None = None
    if request.HasField("max_age"):
        max_age, age_violation = _timedelta("max_age", request.max_age)
        if max_age is not None:
            age_violation = validation.max_age("max_age", max_age)
    validation.ensure(
        [validation.identifier("vehicle_id", request.vehicle_id), *field_violations, age_violation]
    )
    return TelemetryQuery(
        vehicle_id=request.vehicle_id,
        fields=fields,
        max_age=max_age,
        held_when_limited=request.held_when_rate_limited,
    )


def command_args(
    request: pb.LockRequest | pb.UnlockRequest | pb.StartChargeRequest | pb.StopChargeRequest,
    action: LockAction | ChargeAction,
) -> CommandArgs:
    """Validate a Lock, Unlock, StartCharge or StopCharge request; the request id is
    optional."""
    validation.ensure(
        [
            validation.identifier("vehicle_id", request.vehicle_id),
            validation.identifier("request_id", request.request_id, required=False),
        ]
    )
    return CommandArgs(vehicle_id=request.vehicle_id, action=action, request_id=request.request_id)


def charge_limit_args(request: pb.SetChargeLimitRequest) -> CommandArgs:
    """Validate a SetChargeLimit request: the request id is optional, the limit 50-100 %."""
    validation.ensure(
        [
            validation.identifier("vehicle_id", request.vehicle_id),
            validation.identifier("request_id", request.request_id, required=False),
            validation.charge_limit("limit_percent", request.limit_percent),
        ]
    )
    return CommandArgs(
        vehicle_id=request.vehicle_id,
        action=ChargeAction.SET_CHARGE_LIMIT,
        request_id=request.request_id,
        charge_limit_percent=request.limit_percent,
    )


def rental_args(request: pb.StartRentalRequest | pb.EndRentalRequest) -> RentalArgs:
    """Validate a StartRental or EndRental request."""
    validation.ensure(
        [
            validation.identifier("vehicle_id", request.vehicle_id),
            validation.identifier("rental_id", request.rental_id),
        ]
    )
    return RentalArgs(vehicle_id=request.vehicle_id, rental_id=request.rental_id)


def rental_id(request: pb.GetRentalRequest) -> str:
    """Validate a request that names only a rental, and return its id."""
    validation.ensure([validation.identifier("rental_id", request.rental_id)])
    return request.rental_id


def rental_list_query(request: pb.ListRentalsRequest) -> RentalListQuery:
    """Validate a ListRentals request: an optional vehicle id, valid end bounds in order,
    page size and token shape; page size 0 becomes the default."""
    ended_after, after_violation = _optional_time(request, "ended_after")
    ended_before, before_violation = _optional_time(request, "ended_before")
    order_violation = None
    if ended_after is not None and ended_before is not None and ended_before <= ended_after:
        order_violation = FieldViolation("ended_before", "must be later than ended_after")
    validation.ensure(
        [
            validation.identifier("vehicle_id", request.vehicle_id, required=False),
            after_violation,
            before_violation,
            order_violation,
            validation.page_size("page_size", request.page_size),
            validation.page_token("page_token", request.page_token),
        ]
    )
    return RentalListQuery(
        vehicle_id=request.vehicle_id or None,
        ended_after=ended_after,
        ended_before=ended_before,
        page_size=request.page_size or validation.DEFAULT_PAGE_SIZE,
        page_token=request.page_token,
    )


def vehicle_id(request: pb.GetVehicleRequest | pb.DisconnectRequest) -> str:
    """Validate a request that names only a vehicle, and return its id."""
    validation.ensure([validation.identifier("vehicle_id", request.vehicle_id)])
    return request.vehicle_id


def allowance_args(request: pb.SetRequestAllowanceRequest) -> AllowanceArgs:
    """Validate a SetRequestAllowance request; 0 means the fleet's allowance again."""
    validation.ensure(
        [
            validation.identifier("vehicle_id", request.vehicle_id),
            validation.monthly_allowance("monthly_allowance", request.monthly_allowance),
        ]
    )
    return AllowanceArgs(
        vehicle_id=request.vehicle_id, monthly_allowance=request.monthly_allowance or None
    )


@dataclass(frozen=True, slots=True)
class WatchQuery:
    """WatchVehicles arguments, validated."""

    vehicle_ids: frozenset[str]
    after_id: int | None


def watch_query(request: pb.WatchVehiclesRequest) -> WatchQuery:
    """Validate a WatchVehicles request: how many ids, each id, and a non-negative cursor."""
    too_many = validation.count(
        "vehicle_ids", len(request.vehicle_ids), limit=validation.MAX_WATCH_VEHICLE_IDS
    )
    violations = [too_many]
    if too_many is None:
        violations.extend(
            validation.identifier(f"vehicle_ids[{i}]", vid)
            for i, vid in enumerate(request.vehicle_ids)
        )
    after_id = request.after_id if request.HasField("after_id") else None
    if after_id is not None and after_id < 0:
        violations.append(FieldViolation("after_id", "must not be negative"))
    validation.ensure(violations)
    return WatchQuery(vehicle_ids=frozenset(request.vehicle_ids), after_id=after_id)


def vehicle_list_query(request: pb.ListVehiclesRequest) -> VehicleListQuery:
    """Validate a ListVehicles request; page size 0 becomes the default."""
    status: ConnectionStatus | None = None
    status_violation: FieldViolation | None = None
    if request.status != pb.CONNECTION_STATUS_UNSPECIFIED:
        status = CONNECTION_STATUSES.get(request.status)
        if status is None:
            status_violation = FieldViolation("status", "must be a known connection status")
    validation.ensure(
        [
            status_violation,
            validation.page_size("page_size", request.page_size),
            validation.page_token("page_token", request.page_token),
        ]
    )
    return VehicleListQuery(
        status=status,
        page_size=request.page_size or validation.DEFAULT_PAGE_SIZE,
        page_token=request.page_token,
    )


def _telemetry_fields(
    path: str, values: Sequence[pb.TelemetryField.ValueType]
) -> tuple[frozenset[TelemetryField], list[FieldViolation]]:
    """Map requested field enums to domain fields, naming each unknown one by its index."""
    fields: set[TelemetryField] = set()
    violations: list[FieldViolation] = []
    for index, value in enumerate(values):
        field = TELEMETRY_FIELDS.get(value)
        if field is None:
            violations.append(FieldViolation(f"{path}[{index}]", "must be a known telemetry field"))
        else:
            fields.add(field)
    return frozenset(fields), violations


def _optional_time(
    request: pb.ListRentalsRequest, path: str
) -> tuple[datetime | None, FieldViolation | None]:
    """Convert an optional Timestamp field, refusing one outside protobuf's valid range."""
    if not request.HasField(path):  # type: ignore[arg-type]
        return None, None
    stamp: Timestamp = getattr(request, path)
    if not (
        _MIN_TIMESTAMP_SECONDS <= stamp.seconds <= _MAX_TIMESTAMP_SECONDS
        and 0 <= stamp.nanos < _NANOS_PER_SECOND
    ):
        return None, FieldViolation(path, "must be a valid timestamp (years 1 to 9999)")
    return stamp.ToDatetime(tzinfo=UTC), None


def _timedelta(path: str, duration: Duration) -> tuple[timedelta | None, FieldViolation | None]:
    """Convert a Duration, refusing the ones protobuf itself calls invalid."""
    seconds, nanos = duration.seconds, duration.nanos
    if (
        abs(seconds) > _MAX_DURATION_SECONDS
        or abs(nanos) >= _NANOS_PER_SECOND
        or (seconds > 0 > nanos)
        or (seconds < 0 < nanos)
    ):
        return None, FieldViolation(path, "must be a valid duration")
    return timedelta(seconds=seconds, microseconds=nanos // 1000), None


# --- responses ------------------------------------------------------------------------------


def connect_url_message(value: ConnectUrl) -> pb.GetConnectUrlResponse:
    """Build the GetConnectUrl response."""
    return pb.GetConnectUrlResponse(
        url=value.url, state=value.state, expires_at=timestamp(value.expires_at)
    )


def vehicle_message(panel: VehiclePanel) -> pb.Vehicle:
    """Build a connection panel message (Connect, Disconnect, GetVehicle, ListVehicles)."""
    vehicle = panel.vehicle
    action = vehicle.owner_action
    return pb.Vehicle(
        vehicle_id=vehicle.id,
        status=_STATUS_TO_PB[vehicle.status],
        status_reason=vehicle.status_reason or "",
        status_changed_at=timestamp(vehicle.status_changed_at),
        smartcar_vehicle_id=vehicle.smartcar_vehicle_id or "",
        make=vehicle.make or "",
        model=vehicle.model or "",
        year=vehicle.year or 0,
        vin=vehicle.vin or "",
        granted_permissions=sorted(vehicle.permissions),
        missing_permissions=sorted(panel.missing_permissions),
        last_command=_last_command_message(vehicle.last_command),
        last_telemetry_at=timestamp(vehicle.last_telemetry_at),
        active_rental=rental_message(panel.active_rental) if panel.active_rental else None,
        requests_this_month=panel.requests_this_month,
        monthly_request_allowance=panel.monthly_request_allowance,
        asleep_until=timestamp(vehicle.asleep_until),
        failure_count=vehicle.failure_count,
        last_error=vehicle.last_error or "",
        smartcar_api=(
            _API_TO_PB[vehicle.api]
            if vehicle.smartcar_vehicle_id is not None
            else pb.SMARTCAR_API_UNSPECIFIED
        ),
        smartcar_user_id=vehicle.smartcar_user_id or "",
        request_reserve=panel.request_reserve,
        request_allowance_overridden=panel.request_allowance_overridden,
        request_budget_resets_at=timestamp(panel.request_budget_resets_at),
        status_error_code=action.error if action else "",
        resolution_type=(action.resolution_type or "") if action else "",
        resolution_url=(action.resolution_url or "") if action else "",
        resolution_doc_url=(action.doc_url or "") if action else "",
        suggested_user_message=(action.user_message or "") if action else "",
    )


def compatibility_message(report: CompatibilityReport) -> pb.CheckCompatibilityResponse:
    """Build the CheckCompatibility response."""
    return pb.CheckCompatibilityResponse(
        vin=report.vin,
        country=report.country,
        compatible=report.compatible,
        reason=report.reason or "",
        permissions=[
            pb.PermissionCompatibility(
                permission=p.permission,
                capability=_CAPABILITY_TO_PB[p.capability],
                reason=p.reason or "",
                required=p.required,
                endpoints=[
                    pb.EndpointCapability(
                        endpoint=e.endpoint, capable=e.capable, reason=e.reason or ""
                    )
                    for e in p.endpoints
                ],
            )
            for p in report.permissions
        ],
        unsupported_required_permissions=list(report.unsupported_required),
        checked_at=timestamp(report.checked_at),
    )


def status_change_message(change: StatusTransition) -> pb.StatusChange:
    """Build one WatchVehicles message."""
    return pb.StatusChange(
        id=change.id or 0,
        vehicle_id=change.vehicle_id,
        from_status=_STATUS_TO_PB[change.from_status],
        to_status=_STATUS_TO_PB[change.to_status],
        reason=change.reason or "",
        at=timestamp(change.at),
    )


def vehicle_page_message(page: VehiclePage) -> pb.ListVehiclesResponse:
    """Build the ListVehicles response."""
    return pb.ListVehiclesResponse(
        vehicles=[vehicle_message(panel) for panel in page.panels],
        next_page_token=page.next_page_token,
    )


def rental_message(rental: Rental) -> pb.Rental:
    """Build a rental hold's message (a panel's active rental: no readings)."""
    return pb.Rental(
        rental_id=rental.rental_id,
        vehicle_id=rental.vehicle_id,
        started_at=timestamp(rental.started_at),
        ended_at=timestamp(rental.ended_at),
    )


def rental_record_message(
    record: RentalRecord, *, visible: frozenset[TelemetryField] = frozenset(TelemetryField)
) -> pb.Rental:
    """Build a rental with its readings (StartRental, EndRental, GetRental, ListRentals),
    showing only the `visible` fields and the differences computed from them."""
    message = rental_message(record.rental)
    _fill_reading(message.start_reading, record.start, visible)
    _fill_reading(message.end_reading, record.end, visible)
    final = record.final
    if final is not None:
        message.final_reading_pending = record.final_reading_pending
        message.final_reading_state = _FINAL_TO_PB[final.state]
        message.final_reading_reason = final.reason or ""
        if final.settled_at is not None:
            message.final_reading_settled_at.FromDatetime(final.settled_at)
    for visible_field, name, value in (
        (TelemetryField.ODOMETER, "distance_km", record.distance_km),
        (TelemetryField.FUEL, "fuel_percent_change", record.fuel_percent_change),
        (TelemetryField.BATTERY, "battery_percent_change", record.battery_percent_change),
    ):
        if value is not None and visible_field in visible:
            setattr(message, name, value)
    return message


def rental_page_message(
    page: RentalPage, *, visible: frozenset[TelemetryField] = frozenset(TelemetryField)
) -> pb.ListRentalsResponse:
    """Build the ListRentals response."""
    return pb.ListRentalsResponse(
        rentals=[rental_record_message(record, visible=visible) for record in page.records],
        next_page_token=page.next_page_token,
    )


def _fill_reading(
    message: pb.RentalReading,
    readings: Mapping[TelemetryField, SourcedReading],
    visible: frozenset[TelemetryField],
) -> None:
    """Set each visible field a rental's reading holds. The message is present once a
    reading was taken, even with no field visible to the caller."""
    if readings:
        message.SetInParent()
    for reading_field, member in _RENTAL_READING_MEMBERS.items():
        sourced = readings.get(reading_field)
        if sourced is not None and reading_field in visible:
            getattr(message, member).CopyFrom(_sourced_message(sourced))


def _sourced_message(sourced: SourcedReading) -> pb.RentalFieldReading:
    """Build one field of a rental's reading, with its source and age."""
    message = pb.RentalFieldReading(
        reading=field_reading_message(sourced.reading),
        source=_SOURCE_TO_PB[sourced.source],
        taken_at=timestamp(sourced.taken_at),
    )
    recorded_at = sourced.reading.recorded_at
    if recorded_at is not None:
        message.age.FromTimedelta(max(sourced.taken_at - recorded_at, timedelta(0)))
    return message


def command_result_message(result: CommandResult) -> pb.CommandResult:
    """Build the answer to a command: `action` for Lock and Unlock, `charge_action` for the
    charge commands."""
    lock, charge = _actions(result.action)
    return pb.CommandResult(
        request_id=result.request_id,
        vehicle_id=result.vehicle_id,
        action=lock,
        charge_action=charge,
        state=_COMMAND_STATE_TO_PB[result.state],
        completed_at=timestamp(result.completed_at),
        replayed=result.replayed,
    )


def _actions(
    action: CommandAction,
) -> tuple[pb.LockAction.ValueType, pb.ChargeAction.ValueType]:
    """Return a command action as the (LockAction, ChargeAction) pair of the messages: the
    one it belongs to set, the other unspecified."""
    if isinstance(action, LockAction):
        return _ACTION_TO_PB[action], pb.CHARGE_ACTION_UNSPECIFIED
    return pb.LOCK_ACTION_UNSPECIFIED, _CHARGE_ACTION_TO_PB[action]


def telemetry_message(telemetry: Telemetry) -> pb.Telemetry:
    """Build the GetTelemetry response, one reading per field in TelemetryField order."""
    readings = sorted(telemetry.readings.values(), key=lambda r: _FIELD_ORDER[r.field])
    return pb.Telemetry(
        vehicle_id=telemetry.vehicle_id,
        from_cache=telemetry.from_cache,
        readings=[field_reading_message(reading) for reading in readings],
    )


_FIELD_ORDER = {field: n for n, field in enumerate(TelemetryField)}
"""Each field's place in TelemetryField's order, the order of an answer's readings."""


def field_reading_message(reading: FieldReading) -> pb.FieldReading:
    """Build one field's reading: availability, times, reason, and its value if any."""
    message = pb.FieldReading(
        field=_FIELD_TO_PB[reading.field],
        availability=_AVAILABILITY_TO_PB[reading.availability],
        recorded_at=timestamp(reading.recorded_at),
        fetched_at=timestamp(reading.fetched_at),
        reason=reading.reason or "",
    )
    if reading.value is not None:
        _set_value(message, reading.value)
    return message


def _set_value(message: pb.FieldReading, value: TelemetryValue) -> None:
    """Fill the member of the `value` oneof that matches the value's type."""
    match value:
        case Location():
            message.location.CopyFrom(
                pb.Location(latitude=value.latitude, longitude=value.longitude)
            )
        case Odometer():
            message.odometer.CopyFrom(pb.Odometer(distance_km=value.distance_km))
        case Fuel():
            message.fuel.CopyFrom(
                pb.Fuel(
                    percent_remaining=value.percent_remaining,
                    amount_remaining_l=value.amount_remaining_l,
                    range_km=value.range_km,
                )
            )
        case Battery():
            message.battery.CopyFrom(
                pb.Battery(percent_remaining=value.percent_remaining, range_km=value.range_km)
            )
        case LockStatus():
            message.lock_status.CopyFrom(
                pb.LockStatus(
                    locked=value.is_locked,
                    doors=[pb.DoorState(door=d.door, status=d.status) for d in value.doors],
                )
            )
        case TirePressure():
            message.tire_pressure.CopyFrom(_tire_pressure_message(value))
        case EngineOil():
            message.engine_oil.CopyFrom(
                pb.EngineOil(life_remaining_percent=value.life_remaining_percent)
            )
        case Charge():
            message.charge.CopyFrom(_charge_message(value))


def _charge_message(value: Charge) -> pb.Charge:
    """Build the charge: plugged in, state, limit and minutes to complete, each if reported."""
    state = pb.CHARGING_STATE_UNSPECIFIED
    if value.state is not None:
        state = _CHARGING_STATE_TO_PB[value.state]
    return pb.Charge(
        plugged_in=value.is_plugged_in,
        state=state,
        limit_percent=value.limit_percent,
        minutes_to_complete=value.minutes_to_complete,
    )


def _tire_pressure_message(value: TirePressure) -> pb.TirePressure:
    """Build the four tyre pressures, kPa."""
    return pb.TirePressure(
        front_left_kpa=value.front_left_kpa,
        front_right_kpa=value.front_right_kpa,
        back_left_kpa=value.back_left_kpa,
        back_right_kpa=value.back_right_kpa,
    )


def _last_command_message(command: LastCommand | None) -> pb.LastCommand | None:
    """Build the panel's last command, or None when there was none."""
    if command is None:
        return None
    lock, charge = _actions(command.action)
    return pb.LastCommand(
        action=lock,
        charge_action=charge,
        request_id=command.request_id,
        at=timestamp(command.at),
    )


def timestamp(value: datetime | None) -> Timestamp | None:
    """Convert an aware datetime to a Timestamp (None stays unset)."""
    if value is None:
        return None
    if value.tzinfo is None:  # naive: protobuf's reading (UTC)
        stamp = Timestamp()
        stamp.FromDatetime(value)
        return stamp
    # The same seconds and nanos as `Timestamp.FromDatetime`, from the difference to the
    # epoch, at a third of its cost (it goes through a time tuple and calendar.timegm):
    # every reading of an answer built afresh has two.
    since = value - _EPOCH
    return Timestamp(seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
