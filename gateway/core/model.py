"""The gateway's domain values: vehicles, connections, token grants, telemetry, rentals, commands.

All frozen dataclasses; times are timezone-aware UTC datetimes. Protobuf and SQL rows are
converted to and from these at the edges (gateway.edge.grpc.convert, storage/).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TypeVar

from gateway.core.secret import Secret


class ConnectionStatus(StrEnum):
    """The state of a fleet vehicle's link to Smartcar, as the connection panel shows it."""

    NOT_CONNECTED = "NOT_CONNECTED"
    """Known to the gateway (a Connect URL was issued) but never connected."""
    ACTIVE = "ACTIVE"
    EXPIRED = "EXPIRED"
    """The refresh token was rejected or outlived: the owner must reconnect."""
    DISCONNECTED = "DISCONNECTED"
    """The connection is gone at Smartcar: we disconnected it (and deleted it there), or the
    owner revoked the application's access (`gateway.core.revocation`)."""
    ERROR = "ERROR"
    """Repeated upstream failures (`gateway.core.health`); the next answer restores ACTIVE."""
    NEEDS_REAUTHENTICATION = "NEEDS_REAUTHENTICATION"
    """The connection stands at Smartcar, but the owner must act in their connected-services
    (OEM) account or reconnect before the car answers: `Vehicle.owner_action` says what
    Smartcar asked for (`gateway.core.reauthentication`)."""


class SmartcarApi(StrEnum):
    """Which of Smartcar's APIs a connection is served through.

    V2 is the deprecated Vehicles API v2.0: one OAuth token pair per owner. V3 authorises
    the application once (client credentials) and names the owner per request."""

    V2 = "v2"
    V3 = "v3"


class TelemetryField(StrEnum):
    """A piece of telemetry the gateway can read; each maps to one Smartcar v2.0 path."""

    LOCATION = "location"
    ODOMETER = "odometer"
    FUEL = "fuel"
    BATTERY = "battery"
    LOCK_STATUS = "lock_status"
    """Locked or not, plus the doors' open/closed states."""
    TIRE_PRESSURE = "tire_pressure"
    ENGINE_OIL = "engine_oil"
    CHARGE = "charge"
    """Plugged in or not, charging or not, and the charge limit (EVs and PHEVs)."""


class Availability(StrEnum):
    """Whether a telemetry field has a value, and why not when it has none."""

    AVAILABLE = "AVAILABLE"
    NOT_CAPABLE = "NOT_CAPABLE"
    """The vehicle cannot report it (an EV's fuel, an ICE car's battery)."""
    PERMISSION_MISSING = "PERMISSION_MISSING"
    """The owner did not grant the scope it needs."""
    UNAVAILABLE = "UNAVAILABLE"
    """The vehicle or Smartcar could not answer this time (asleep, upstream error)."""


class LockAction(StrEnum):
    """A remote command on the doors."""

    LOCK = "LOCK"
    UNLOCK = "UNLOCK"


class ChargeAction(StrEnum):
    """A remote command on the charging of an EV or PHEV."""

    START_CHARGE = "START_CHARGE"
    STOP_CHARGE = "STOP_CHARGE"
    SET_CHARGE_LIMIT = "SET_CHARGE_LIMIT"
    """Set the state of charge at which charging stops (`Command.charge_limit_percent`)."""


CommandAction = LockAction | ChargeAction
"""Any remote command: its value names it uniquely (`LOCK`, `START_CHARGE`, …)."""


def command_action(name: str) -> CommandAction:
    """Return the command action a stored name stands for; ValueError for an unknown one."""
    for kind in (LockAction, ChargeAction):
        try:
            return kind(name)
        except ValueError:
            continue
    raise ValueError(f"{name!r} is no command action")


class ChargingState(StrEnum):
    """Where a charging session stands, as the car reports it."""

    CHARGING = "CHARGING"
    NOT_CHARGING = "NOT_CHARGING"
    FULLY_CHARGED = "FULLY_CHARGED"
    """Charged up to the charge limit (which may be below 100 %)."""


class CommandState(StrEnum):
    """Where a command stands; the outcome a retry with the same request id gets back."""

    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    """Smartcar or the vehicle refused it; `CommandRecord.error` says why."""
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    """Sent, but no answer came: it may have happened."""


# --- telemetry values (already normalised: percent 0-100, km, litres, kPa) -----------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """Where the vehicle is."""

    latitude: float
    longitude: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Odometer:
    """Total distance driven."""

    distance_km: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Fuel:
    """The tank: percent 0-100; amount and range when the car reports them (EU cars may not)."""

    percent_remaining: float | None
    amount_remaining_l: float | None
    range_km: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Battery:
    """The traction battery: state of charge 0-100 and range (null when not reported)."""

    percent_remaining: float | None
    range_km: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class DoorState:
    """One door (`front_left`, `back_right`, …), or another part that opens (a window, a
    trunk, the sunroof), and its status (`OPEN`, `CLOSED`, `UNKNOWN`)."""

    door: str
    status: str

    @property
    def is_open(self) -> bool:
        """Tell whether the car reports it open."""
        return self.status == "OPEN"


@dataclass(frozen=True, slots=True, kw_only=True)
class LockStatus:
    """Whether the car is locked, each door's state, and, where the car reports them, its
    windows', trunks' (`rear`, `front`) and sunroof's (Smartcar v2.0's security endpoint
    reports all four; API V3 and webhooks are read for the doors only)."""

    is_locked: bool
    doors: tuple[DoorState, ...] = ()
    windows: tuple[DoorState, ...] = ()
    trunks: tuple[DoorState, ...] = ()
    sunroof: tuple[DoorState, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class TirePressure:
    """The four tyres, in kPa (a tyre the car does not report is null)."""

    front_left_kpa: float | None
    front_right_kpa: float | None
    back_left_kpa: float | None
    back_right_kpa: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOil:
    """Oil life remaining, percent 0-100 (100: just changed)."""

    life_remaining_percent: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Charge:
    """Charging: whether a cable is plugged in, whether the car charges, the charge limit
    (percent 0-100) and, where Smartcar reports it, the minutes until the limit is reached.
    A part the car does not report is None."""

    is_plugged_in: bool | None
    state: ChargingState | None
    limit_percent: float | None
    minutes_to_complete: float | None = None


TelemetryValue = (
    Location | Odometer | Fuel | Battery | LockStatus | TirePressure | EngineOil | Charge
)


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldReading:
    """One field's latest known state: its value (if any), why not, and how old it is."""

    field: TelemetryField
    availability: Availability
    value: TelemetryValue | None = None
    recorded_at: datetime | None = None
    """When the vehicle recorded the value (Smartcar `sc-data-age`)."""
    fetched_at: datetime | None = None
    """When the gateway got this answer from Smartcar."""
    reason: str | None = None
    """For a field without a value: Smartcar's `TYPE:CODE` or the gateway's reason."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Telemetry:
    """The answer to GetTelemetry: the fields asked for, and whether Smartcar was asked."""

    vehicle_id: str
    readings: Mapping[TelemetryField, FieldReading]
    from_cache: bool
    """True when every field came from the cache and no upstream request was made."""
    fetched: frozenset[TelemetryField] = frozenset()
    """The fields this request asked Smartcar for (the rest came from the cache)."""
    encoded: tuple[bytes, ...] | None = field(default=None, compare=False, repr=False)
    """The readings as the telemetry cache's `ReadingEncoder` encoded them, in TelemetryField
    order, when the answer came from readings held encoded (None otherwise)."""


# --- tokens, vehicles, rentals, commands -----------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenPair:
    """An access/refresh token pair with absolute expiry times."""

    access_token: Secret
    refresh_token: Secret
    access_expires_at: datetime
    refresh_expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class SmartcarAccess:
    """What authorises one request to Smartcar: on v2 the owner's access token; on V3 the
    application's token and the owner's Smartcar user id (sent as `sc-user-id`)."""

    api: SmartcarApi
    token: Secret
    user_id: str | None = None

    @classmethod
    def v2(cls, access_token: Secret) -> SmartcarAccess:
        """Return the access an owner's v2 access token gives."""
        return cls(api=SmartcarApi.V2, token=access_token)

    @classmethod
    def v3(cls, application_token: Secret, *, user_id: str) -> SmartcarAccess:
        """Return the access the application token gives to one owner's cars."""
        return cls(api=SmartcarApi.V3, token=application_token, user_id=user_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """One Smartcar user's token pair, shared by every fleet vehicle it covers.

    `version` increases with every change and is the compare-and-swap guard for rotation;
    `refresh_claimed_until` is set while one worker (in any process) refreshes the pair.
    """

    id: str
    smartcar_user_id: str
    tokens: TokenPair
    version: int
    refresh_claimed_until: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationGrant:
    """An application token (API V3 client credentials): one for the whole fleet, with
    no refresh token. `issued_at` is when it was asked for, so `expires_at - issued_at`
    is its lifetime as Smartcar stated it."""

    token: Secret
    issued_at: datetime
    expires_at: datetime

    def __post_init__(self) -> None:
        if self.expires_at <= self.issued_at:
            raise ValueError("an application token must expire after it was issued")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationTokenRecord:
    """The stored application token of one Smartcar client id, shared by every replica.

    `grant` is None before the first grant and after a token Smartcar refused was dropped.
    `version` increases with every change and is the compare-and-swap guard; `claimed_until`
    is set while one worker (in any process) asks Smartcar for a new token.
    """

    client_id: str
    grant: ApplicationGrant | None
    version: int
    claimed_until: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OwnerAction:
    """What Smartcar says the owner must do before a connection works again (one of its
    CONNECTED_SERVICES_ACCOUNT errors): what a NEEDS_REAUTHENTICATION car shows."""

    error: str
    """Smartcar's `TYPE:CODE`, e.g. `CONNECTED_SERVICES_ACCOUNT:AUTHENTICATION_FAILED`."""
    resolution_type: str | None = None
    """Smartcar's `resolution.type` (`REAUTHENTICATE`, `ACTION_REQUIRED`, …); None when it
    named none."""
    resolution_url: str | None = None
    """Where the owner acts (Smartcar's re-authentication link, a virtual-key page), when
    Smartcar gave one."""
    doc_url: str | None = None
    """Smartcar's page about the error (`docURL`, V3 `links.about`)."""
    user_message: str | None = None
    """Smartcar's `suggestedUserMessage`, to show the owner."""
    commands_only: bool = False
    """True when the error concerns commands alone (a missing virtual key): reads still
    work, so an answered read says nothing about it."""
    probed_at: datetime | None = None
    """When the scheduler last asked Smartcar whether the owner acted (None: not yet)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LastCommand:
    """The most recent successful command on a vehicle."""

    action: CommandAction
    request_id: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Vehicle:
    """A fleet vehicle and its Smartcar connection: what the connection panel shows."""

    id: str
    """The fleet's own vehicle id (not Smartcar's)."""
    status: ConnectionStatus
    status_reason: str | None = None
    status_changed_at: datetime | None = None
    smartcar_vehicle_id: str | None = None
    grant_id: str | None = None
    make: str | None = None
    model: str | None = None
    year: int | None = None
    vin: str | None = None
    permissions: frozenset[str] = frozenset()
    last_command: LastCommand | None = None
    last_telemetry_at: datetime | None = None
    created_at: datetime | None = None
    asleep_until: datetime | None = None
    """Not polled before this time: the car answered ASLEEP (cleared by a wake-up event)."""
    failure_count: int = 0
    """Consecutive upstream failures; enough of them put the connection in ERROR."""
    last_error: str | None = None
    """The most recent upstream failure, kept for the panel."""
    api: SmartcarApi = SmartcarApi.V2
    """The Smartcar API the connection is served through."""
    smartcar_user_id: str | None = None
    """The owner's Smartcar user id (V3 names it on every request; v2 keeps it per grant)."""
    request_allowance: int | None = None
    """This car's own monthly request allowance (SetRequestAllowance); None: the fleet's
    (`BudgetPolicy.monthly_allowance`). Written only by `set_request_allowance`."""
    owner_action: OwnerAction | None = None
    """What the owner must do: set exactly while the status is NEEDS_REAUTHENTICATION
    (`status.with_status` drops it on any other status)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusTransition:
    """One change of a vehicle's connection status, with why and when (the audit trail)."""

    vehicle_id: str
    from_status: ConnectionStatus
    to_status: ConnectionStatus
    reason: str | None
    at: datetime
    id: int | None = None
    """Assigned by storage, increasing: watchers resume after the last id they saw."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One action on a car, as the audit trail keeps it: who, what, which car, how it ended."""

    at: datetime
    caller: str
    method: str
    """The RPC's short name: Connect, Lock, Unlock, StartCharge, …, EndRental."""
    vehicle_id: str
    request_id: str
    outcome: str
    """The gRPC status code name: OK, FAILED_PRECONDITION, …"""
    duration_ms: float
    reason: str | None = None
    """The error's ErrorInfo reason when it failed."""
    id: int | None = None
    """Assigned by storage, increasing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditQuery:
    """Which audit entries to list: all filters optional, newest first, `before_id` pages."""

    vehicle_id: str | None = None
    caller: str | None = None
    method: str | None = None
    since: datetime | None = None
    before_id: int | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookEvent:
    """A Smartcar webhook delivery, stored before it is acknowledged.

    Pending until it is applied (`applied_at`; `error` then notes what was skipped or
    rejected) or failed (`failed_at`; `error` says why nothing was applied)."""

    event_id: str
    event_type: str
    smartcar_vehicle_id: str | None
    received_at: datetime
    payload: Mapping[str, object]
    applied_at: datetime | None = None
    error: str | None = None
    failed_at: datetime | None = None

    @property
    def pending(self) -> bool:
        """Tell whether the event still waits to be applied."""
        return self.applied_at is None and self.failed_at is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Rental:
    """A rental hold on a vehicle; active while `ended_at` is None."""

    rental_id: str
    vehicle_id: str
    started_at: datetime
    ended_at: datetime | None = None

    @property
    def active(self) -> bool:
        """Tell whether the rental still holds the vehicle."""
        return self.ended_at is None


class RentalPhase(StrEnum):
    """Which end of a rental a reading belongs to."""

    START = "start"
    END = "end"


class ReadingSource(StrEnum):
    """Where a rental's reading of a field came from."""

    LIVE = "live"
    """Asked of Smartcar for this rental."""
    CACHE = "cache"
    """Already held by the gateway (a poll, another caller's read, an earlier webhook)."""
    WEBHOOK = "webhook"
    """Pushed by Smartcar's webhook while the rental's final reading was pending."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SourcedReading:
    """One field of a rental's reading: the reading, where it came from, and when the rental
    took it (so `taken_at - recorded_at` is how old the value was then)."""

    reading: FieldReading
    source: ReadingSource
    taken_at: datetime

    @property
    def field(self) -> TelemetryField:
        """The telemetry field read."""
        return self.reading.field


class FinalReadingState(StrEnum):
    """Where an ended rental's final reading stands: one the car recorded after the end."""

    PENDING = "PENDING"
    """The gateway still tries to get one."""
    RECORDED = "RECORDED"
    """Every field the car can report has a value recorded at or after the end."""
    GIVEN_UP = "GIVEN_UP"
    """The gateway stopped trying; `FinalReading.reason` says why."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FinalReading:
    """The chase of an ended rental's final reading: its state and its retries."""

    state: FinalReadingState
    attempts: int = 0
    """Background attempts made so far (EndRental's own reading not counted)."""
    last_attempt_at: datetime | None = None
    """When the car was last asked (a reading fetched since then is news)."""
    next_attempt_at: datetime | None = None
    """When the background job tries next; None once settled."""
    settled_at: datetime | None = None
    """When it was recorded or given up."""
    reason: str | None = None
    """Why it was given up."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalRecord:
    """A rental with the readings taken at its start and end, and its final reading's chase
    (None while the rental is active): what GetRental answers."""

    rental: Rental
    start: Mapping[TelemetryField, SourcedReading] = field(default_factory=dict)
    end: Mapping[TelemetryField, SourcedReading] = field(default_factory=dict)
    final: FinalReading | None = None

    @property
    def final_reading_pending(self) -> bool:
        """Tell whether the gateway still tries to get a reading recorded after the end."""
        return self.final is not None and self.final.state is FinalReadingState.PENDING

    @property
    def distance_km(self) -> float | None:
        """The end odometer less the start one; None when either is missing, or when the
        end is below the start (then the two cannot both be right)."""
        start = _value(self.start, TelemetryField.ODOMETER, Odometer)
        end = _value(self.end, TelemetryField.ODOMETER, Odometer)
        if start is None or end is None or end.distance_km < start.distance_km:
            return None
        return end.distance_km - start.distance_km

    @property
    def fuel_percent_change(self) -> float | None:
        """The fuel level at the end less at the start, percentage points (None: unknown)."""
        start = _value(self.start, TelemetryField.FUEL, Fuel)
        end = _value(self.end, TelemetryField.FUEL, Fuel)
        return _difference(
            start.percent_remaining if start else None, end.percent_remaining if end else None
        )

    @property
    def battery_percent_change(self) -> float | None:
        """The state of charge at the end less at the start, percentage points (None:
        unknown)."""
        start = _value(self.start, TelemetryField.BATTERY, Battery)
        end = _value(self.end, TelemetryField.BATTERY, Battery)
        return _difference(
            start.percent_remaining if start else None, end.percent_remaining if end else None
        )


_V = TypeVar("_V", Odometer, Fuel, Battery)


def _value(
    readings: Mapping[TelemetryField, SourcedReading], which: TelemetryField, kind: type[_V]
) -> _V | None:
    """The value of `which` among a rental's readings, if it has one of type `kind`."""
    sourced = readings.get(which)
    value = sourced.reading.value if sourced is not None else None
    return value if isinstance(value, kind) else None


def _difference(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalQuery:
    """Which rentals to list: optionally one vehicle's, optionally only those that ended in
    [`ended_after`, `ended_before`); ordered by (started_at, rental_id), after `after`."""

    vehicle_id: str | None = None
    ended_after: datetime | None = None
    ended_before: datetime | None = None
    after: tuple[datetime, str] | None = None
    """The (started_at, rental_id) of the last rental of the previous page."""
    limit: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class RentalPage:
    """One page of ListRentals; `next_page_token` is empty on the last page."""

    records: tuple[RentalRecord, ...]
    next_page_token: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandError:
    """Why a command failed, kept so a retry with the same request id gets the same answer."""

    kind: str
    """The name of the gateway error class (`VehicleStateBlocks`, `UpstreamUnavailable`, …)."""
    message: str
    smartcar_type: str | None = None
    smartcar_code: str | None = None
    smartcar_request_id: str | None = None


MIN_CHARGE_LIMIT_PERCENT = 50
MAX_CHARGE_LIMIT_PERCENT = 100
"""The charge limits Smartcar accepts: v2.0 "cannot be less than 0.5, or greater than 1";
API V3 an integer percent 50-100 (a reading of its spec, smartcar-v3-notes §2.5)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """What a command asks of the car: its action, and for SET_CHARGE_LIMIT the limit
    (an integer percent, `MIN_CHARGE_LIMIT_PERCENT`..`MAX_CHARGE_LIMIT_PERCENT`)."""

    action: CommandAction
    charge_limit_percent: int | None = None

    def __post_init__(self) -> None:
        sets_limit = self.action is ChargeAction.SET_CHARGE_LIMIT
        limit = self.charge_limit_percent
        if sets_limit != (limit is not None):
            raise ValueError("a charge limit goes with SET_CHARGE_LIMIT, and only with it")
        if limit is not None and not MIN_CHARGE_LIMIT_PERCENT <= limit <= MAX_CHARGE_LIMIT_PERCENT:
            raise ValueError(
                f"a charge limit must be {MIN_CHARGE_LIMIT_PERCENT}-{MAX_CHARGE_LIMIT_PERCENT} %"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandRecord:
    """A command request: the idempotency key, what it asked, and how it ended."""

    request_id: str
    vehicle_id: str
    action: CommandAction
    state: CommandState
    created_at: datetime
    completed_at: datetime | None = None
    error: CommandError | None = None
    charge_limit_percent: int | None = None
    """The limit a SET_CHARGE_LIMIT asked for (None for any other command)."""

    @property
    def command(self) -> Command:
        """Return what the command asked of the car."""
        return Command(action=self.action, charge_limit_percent=self.charge_limit_percent)


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthState:
    """A single-use Connect `state`, bound to the fleet vehicle it was issued for."""

    state: str
    vehicle_id: str
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectUrl:
    """What GetConnectUrl answers."""

    url: str
    state: str
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class VehiclePanel:
    """A vehicle as GetVehicle/ListVehicles show it: the record plus derived facts."""

    vehicle: Vehicle
    missing_permissions: frozenset[str]
    active_rental: Rental | None
    requests_this_month: int = 0
    """Billed Smartcar requests for this vehicle in the current calendar month (UTC)."""
    monthly_request_allowance: int = 0
    """The car's allowance per month: its own, or the fleet's."""
    request_reserve: int = 0
    """The part of the allowance kept for commands and rental readings: interactive reads
    and polls stop `request_reserve` short of the allowance."""
    request_allowance_overridden: bool = False
    """True when `monthly_request_allowance` is the car's own, not the fleet's."""
    request_budget_resets_at: datetime | None = None
    """When the month's count starts again from zero (the first of next month, UTC)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetCharge:
    """What storage answers when billed requests are counted against a month's cap."""

    accepted: bool
    """False when counting them would have taken the month past the cap: nothing counted."""
    billed: int
    """The month's count after the charge (or as it stands, when refused)."""
    warned: bool
    """Whether the month has already been reported as passing its warning share."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehiclePage:
    """One page of ListVehicles; `next_page_token` is empty on the last page."""

    panels: tuple[VehiclePanel, ...]
    next_page_token: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandResult:
    """What a command (Lock, Unlock, StartCharge, StopCharge, SetChargeLimit) answers."""

    request_id: str
    vehicle_id: str
    action: CommandAction
    state: CommandState
    completed_at: datetime | None
    replayed: bool = False
    """True when this is the stored outcome of an earlier request with the same id."""


# --- what Smartcar tells us, in domain terms (the SmartcarAPI port's results) ---------------


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleInfo:
    """Identity of a Smartcar vehicle: its id, make, model, year and VIN."""

    smartcar_vehicle_id: str
    make: str
    model: str
    year: int
    vin: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamFailure:
    """Smartcar's account of why something failed (kept for error details and audit)."""

    type: str | None = None
    code: str | None = None
    request_id: str | None = None
    description: str | None = None
    suggested_user_message: str | None = None
    retry_after_s: float | None = None
    resolution_type: str | None = None
    """Smartcar's `resolution.type` (`RETRY_LATER`, `REAUTHENTICATE`, …), when it named one."""
    resolution_url: str | None = None
    """Smartcar's `resolution.url`: where the owner resolves the error, when given."""
    doc_url: str | None = None
    """Smartcar's page about the error (`docURL`, V3 `links.about`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldResult:
    """One field's outcome inside a batch read: a value, or why there is none."""

    field: TelemetryField
    value: TelemetryValue | None = None
    recorded_at: datetime | None = None
    availability: Availability = Availability.AVAILABLE
    failure: UpstreamFailure | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchReading:
    """The outcome of one upstream batch: each requested field's own result."""

    results: Mapping[TelemetryField, FieldResult] = field(default_factory=dict)


# --- compatibility: can a car be connected, before anyone tries ------------------------------


class Capability(StrEnum):
    """Whether a car can serve one permission, by Smartcar's Compatibility API."""

    CAPABLE = "CAPABLE"
    """Likely capable of at least one endpoint the permission authorises."""
    NOT_CAPABLE = "NOT_CAPABLE"
    """Capable of none of them, or the car is not compatible at all."""
    UNKNOWN = "UNKNOWN"
    """Smartcar said nothing about it (it checks capabilities for US cars only)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointCapability:
    """What Smartcar says about one endpoint a permission authorises, for one car."""

    permission: str
    endpoint: str
    capable: bool
    reason: str | None = None
    """Why not (Smartcar's code, e.g. VEHICLE_NOT_CAPABLE); None when capable."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleCompatibility:
    """Smartcar's answer for one VIN (the CompatibilityAPI port's result)."""

    compatible: bool
    reason: str | None = None
    """Why not (Smartcar's code, e.g. MAKE_NOT_COMPATIBLE); None when compatible."""
    capabilities: tuple[EndpointCapability, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class PermissionCompatibility:
    """What a car can do of one permission the fleet asks owners for."""

    permission: str
    capability: Capability
    reason: str | None
    required: bool
    """The fleet cannot work without it (Connect URLs mark it `required:`)."""
    endpoints: tuple[EndpointCapability, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class CompatibilityReport:
    """What CheckCompatibility answers: Smartcar's verdict on a VIN, per permission."""

    vin: str
    country: str
    compatible: bool
    reason: str | None
    permissions: tuple[PermissionCompatibility, ...]
    """Every permission the fleet asks for, sorted by name."""
    checked_at: datetime

    @property
    def unsupported_required(self) -> tuple[str, ...]:
        """The required permissions the car is not capable of, sorted."""
        return tuple(
            p.permission
            for p in self.permissions
            if p.required and p.capability is Capability.NOT_CAPABLE
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectFailure:
    """A Connect redirect that carried `error` instead of a code or user id: Smartcar's
    error code as given, and its description (bounded and printable: the edge checks)."""

    error: str
    description: str = ""
