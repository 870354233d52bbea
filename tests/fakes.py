"""Hand-written in-memory fakes of the storage ports (gateway.core.ports), for unit tests.

`FakeUnitOfWorkFactory` keeps one `FakeStore` shared by every unit of work it makes. A unit
of work works on a copy of the store and writes the copy back on `commit()`: leaving
without committing leaves no trace, and other units see its writes only once committed.
Like the SQL adapter on SQLite (BEGIN IMMEDIATE), one unit of work at a time holds the
store and a second one waits for it; opening a unit of work inside another in the same
task raises instead of deadlocking.

The fakes keep the adapter's rules: Conflict on duplicate keys (and on a second active
rental of a car), compare-and-swap on grant and application token versions, single-use
OAuth states, increasing transition and event ids (an event id never handed out twice, as
SQLite's AUTOINCREMENT), retention pruning a prefix of the events and moving the horizon,
latches set once, leases taken only when free, expired or already
the taker's, webhook events stored once (a repeat is False, not an error), payloads as
JSON hands them back, times handed back in UTC (naive ones refused), LookupError when
updating what does not exist, and `ForeignKeyViolation` where the database would refuse a
row pointing at nothing.
tests/integration/storage/test_repository_contract.py and
test_lifecycle_repository_contract.py run one set of repository tests against both, so the
fakes provably behave like the real thing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, TypeVar

from gateway.core.model import (
    ApplicationGrant,
    ApplicationTokenRecord,
    AuditEntry,
    AuditQuery,
    BudgetCharge,
    CommandRecord,
    CommandState,
    ConnectionStatus,
    FieldReading,
    FinalReading,
    FinalReadingState,
    Grant,
    LastCommand,
    OAuthState,
    Rental,
    RentalPhase,
    RentalQuery,
    RentalRecord,
    SourcedReading,
    StatusTransition,
    TelemetryField,
    TokenPair,
    Vehicle,
    WebhookEvent,
)
from gateway.core.ports import (
    ApplicationTokenRepository,
    AuditRepository,
    BudgetRepository,
    CommandRepository,
    Conflict,
    GrantRepository,
    LeaseRepository,
    OAuthStateRepository,
    RentalRepository,
    TelemetryRepository,
    TransitionRepository,
    VehicleEventRepository,
    VehicleRepository,
    WebhookEventRepository,
)
from gateway.core.vehicle_events import VehicleEvent, VehicleEventKind

T = TypeVar("T")


class ForeignKeyViolation(Exception):
    """A row referred to a vehicle or grant that does not exist (SQL: IntegrityError)."""


@dataclass(frozen=True, slots=True)
class FakeLease:
    """Who holds a named lease, and until when (a row of `scheduler_leases`)."""

    holder: str
    expires_at: datetime


@dataclass
class FakeStore:
    """Everything the fake database holds, by key; values are frozen domain objects."""

    vehicles: dict[str, Vehicle] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    application_tokens: dict[str, ApplicationTokenRecord] = field(default_factory=dict)
    telemetry: dict[str, dict[TelemetryField, FieldReading]] = field(default_factory=dict)
    rentals: dict[str, Rental] = field(default_factory=dict)
    rental_readings: dict[tuple[str, RentalPhase], dict[TelemetryField, SourcedReading]] = field(
        default_factory=dict
    )
    """Each rental's readings by (rental id, phase), then by field."""
    rental_finals: dict[str, FinalReading] = field(default_factory=dict)
    commands: dict[str, CommandRecord] = field(default_factory=dict)
    states: dict[str, OAuthState] = field(default_factory=dict)
    transitions: dict[int, StatusTransition] = field(default_factory=dict)
    budget: dict[tuple[str, str], int] = field(default_factory=dict)
    """Billed requests by (vehicle id, `YYYY-MM`)."""
    budget_warned: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """When each (vehicle id, `YYYY-MM`) was reported as running low."""
    leases: dict[str, FakeLease] = field(default_factory=dict)
    webhook_events: dict[str, WebhookEvent] = field(default_factory=dict)
    audit: dict[int, AuditEntry] = field(default_factory=dict)
    events: dict[int, VehicleEvent] = field(default_factory=dict)
    events_pruned_through: int = 0
    """Every event id up to this one was deleted by retention."""
    event_latches: dict[tuple[str, VehicleEventKind], datetime] = field(default_factory=dict)
    vehicle_changed_at: dict[str, datetime] = field(default_factory=dict)
    """When each vehicle's row last changed (the `updated_at` of a real database)."""

    def copy(self) -> FakeStore:
        """Return an independent copy (the values are immutable, the dicts are not)."""
        copied = FakeStore()
        copied.load(self)
        return copied

    def load(self, other: FakeStore) -> None:
        """Replace this store's content with a copy of `other`'s."""
        self.vehicles = dict(other.vehicles)
        self.grants = dict(other.grants)
        self.application_tokens = dict(other.application_tokens)
        self.telemetry = {key: dict(value) for key, value in other.telemetry.items()}
        self.rentals = dict(other.rentals)
        self.rental_readings = {key: dict(value) for key, value in other.rental_readings.items()}
        self.rental_finals = dict(other.rental_finals)
        self.commands = dict(other.commands)
        self.states = dict(other.states)
        self.transitions = dict(other.transitions)
        self.budget = dict(other.budget)
        self.budget_warned = dict(other.budget_warned)
        self.leases = dict(other.leases)
        self.webhook_events = dict(other.webhook_events)
        self.audit = dict(other.audit)
        self.events = dict(other.events)
        self.events_pruned_through = other.events_pruned_through
        self.event_latches = dict(other.event_latches)
        self.vehicle_changed_at = dict(other.vehicle_changed_at)

    def require_vehicle(self, vehicle_id: str) -> None:
        """Refuse a row pointing at a vehicle that does not exist."""
        if vehicle_id not in self.vehicles:
            raise ForeignKeyViolation(f"no vehicle {vehicle_id!r}")

    def require_rental(self, rental_id: str) -> None:
        """Refuse a row pointing at a rental that does not exist."""
        if rental_id not in self.rentals:
            raise ForeignKeyViolation(f"no rental {rental_id!r}")


def stored(value: T) -> T:
    """Return `value` as the database hands it back: every time in UTC, naive ones refused."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("naive datetimes are not stored: give a timezone-aware time")
        return value.astimezone(UTC)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: stored(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    return value


class FakeVehicleRepository:
    """VehicleRepository over a FakeStore."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, vehicle_id: str, *, for_update: bool = False) -> Vehicle | None:
        """Return the vehicle (the whole store is locked already, so `for_update` is moot)."""
        return self._store.vehicles.get(vehicle_id)

    async def by_smartcar_id(self, smartcar_vehicle_id: str) -> Vehicle | None:
        """Return the fleet vehicle linked to a Smartcar vehicle id, if any."""
        found = (
            v for v in self._store.vehicles.values() if v.smartcar_vehicle_id == smartcar_vehicle_id
        )
        return next(found, None)

    async def by_grant(self, grant_id: str) -> list[Vehicle]:
        """Return every vehicle using this grant's tokens, ordered by id."""
        return [v for v in self._sorted() if v.grant_id == grant_id]

    async def add(self, vehicle: Vehicle) -> None:
        """Insert a new vehicle; Conflict if its id or Smartcar id is taken."""
        if vehicle.id in self._store.vehicles:
            raise Conflict(f"vehicle {vehicle.id!r} already exists")
        self._write(dataclasses.replace(vehicle, request_allowance=None))
        self._store.vehicle_changed_at[vehicle.id] = datetime.now(UTC)

    async def update(self, vehicle: Vehicle) -> None:
        """Write every field of an existing vehicle but its request allowance; LookupError
        if there is none."""
        current = self._store.vehicles.get(vehicle.id)
        if current is None:
            raise LookupError(f"no vehicle {vehicle.id!r} to update")
        self._write(dataclasses.replace(vehicle, request_allowance=current.request_allowance))
        self._store.vehicle_changed_at[vehicle.id] = datetime.now(UTC)

    async def set_request_allowance(self, vehicle_id: str, allowance: int | None) -> None:
        """Set the vehicle's own monthly request allowance; LookupError if there is none."""
        current = self._store.vehicles.get(vehicle_id)
        if current is None:
            raise LookupError(f"no vehicle {vehicle_id!r} to update")
        self._write(dataclasses.replace(current, request_allowance=allowance))
        self._store.vehicle_changed_at[vehicle_id] = datetime.now(UTC)

    async def count_by_status(self) -> dict[ConnectionStatus, int]:
        """Return how many vehicles are in each connection status (absent: none)."""
        counts: dict[ConnectionStatus, int] = {}
        for vehicle in self._store.vehicles.values():
            counts[vehicle.status] = counts.get(vehicle.status, 0) + 1
        return counts

    async def note_command(self, vehicle_id: str, last: LastCommand) -> bool:
        """Record the vehicle's last command; False if there is no such vehicle."""
        current = self._store.vehicles.get(vehicle_id)
        if current is None:
            return False
        self._write(dataclasses.replace(current, last_command=last))
        return True

    async def note_telemetry(self, vehicle_id: str, *, at: datetime, awake: bool) -> None:
        """Record that the vehicle reported at `at`; `awake` also clears its sleep mark."""
        current = self._store.vehicles.get(vehicle_id)
        if current is not None:
            changes: dict[str, Any] = {"last_telemetry_at": at}
            if awake:
                changes["asleep_until"] = None
            self._write(dataclasses.replace(current, **changes))

    async def changed_since(self, since: datetime | None) -> tuple[datetime, list[Vehicle]]:
        """The time now, and the vehicles changed at or after `since`."""
        now = datetime.now(UTC)
        if since is None:
            return now, []
        changed = self._store.vehicle_changed_at
        return now, [v for v in self._sorted() if changed.get(v.id, now) >= since]

    async def page(
        self, *, status: ConnectionStatus | None, after_id: str | None, limit: int
    ) -> list[Vehicle]:
        """Return up to `limit` vehicles ordered by id, after `after_id`, optionally by status."""
        matching = [
            v
            for v in self._sorted()
            if (status is None or v.status == status) and (after_id is None or v.id > after_id)
        ]
        return matching[: max(limit, 0)]

    def _write(self, vehicle: Vehicle) -> None:
        """Store a vehicle after the database's checks: unique Smartcar id, known grant."""
        smartcar_id = vehicle.smartcar_vehicle_id
        if smartcar_id is not None and any(
            v.smartcar_vehicle_id == smartcar_id and v.id != vehicle.id
            for v in self._store.vehicles.values()
        ):
            raise Conflict(f"Smartcar vehicle {smartcar_id!r} is linked to another vehicle")
        if vehicle.grant_id is not None and vehicle.grant_id not in self._store.grants:
            raise ForeignKeyViolation(f"no grant {vehicle.grant_id!r}")
        self._store.vehicles[vehicle.id] = stored(vehicle)

    def _sorted(self) -> list[Vehicle]:
        """Return every vehicle, ordered by id."""
        return sorted(self._store.vehicles.values(), key=lambda v: v.id)


class FakeGrantRepository:
    """GrantRepository over a FakeStore (the tokens are kept as they are: nothing to leak)."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, grant_id: str) -> Grant | None:
        """Return the grant."""
        return self._store.grants.get(grant_id)

    async def by_user(self, smartcar_user_id: str) -> list[Grant]:
        """Return every grant of one Smartcar user, ordered by id."""
        grants = sorted(self._store.grants.values(), key=lambda g: g.id)
        return [g for g in grants if g.smartcar_user_id == smartcar_user_id]

    async def due_for_renewal(self, *, refresh_expires_before: datetime, limit: int) -> list[Grant]:
        """Return up to `limit` grants whose refresh token expires before the given time,
        soonest first (then by id)."""
        before = stored(refresh_expires_before)
        due = [g for g in self._store.grants.values() if g.tokens.refresh_expires_at < before]
        due.sort(key=lambda g: (g.tokens.refresh_expires_at, g.id))
        return due[: max(limit, 0)]

    async def add(self, grant: Grant) -> None:
        """Insert a new grant; Conflict if its id exists."""
        if grant.id in self._store.grants:
            raise Conflict(f"grant {grant.id!r} already exists")
        self._store.grants[grant.id] = stored(grant)

    async def claim_refresh(
        self, grant_id: str, *, expected_version: int, until: datetime, now: datetime
    ) -> Grant | None:
        """Claim the refresh if the version matches and no claim outlives `now`."""
        grant = self._store.grants.get(grant_id)
        if grant is None or grant.version != expected_version:
            return None
        claimed = grant.refresh_claimed_until
        if claimed is not None and not claimed < stored(now):
            return None
        return self._swap(grant, refresh_claimed_until=until)

    async def replace_tokens(
        self, grant_id: str, *, expected_version: int, tokens: TokenPair
    ) -> Grant | None:
        """Store a new pair and clear the claim if the version still matches."""
        grant = self._store.grants.get(grant_id)
        if grant is None or grant.version != expected_version:
            return None
        return self._swap(grant, tokens=tokens, refresh_claimed_until=None)

    async def delete(self, grant_id: str) -> None:
        """Remove the grant; vehicles using it lose their link to it (ON DELETE SET NULL)."""
        if self._store.grants.pop(grant_id, None) is None:
            return
        for vehicle in list(self._store.vehicles.values()):
            if vehicle.grant_id == grant_id:
                self._store.vehicles[vehicle.id] = dataclasses.replace(vehicle, grant_id=None)

    def _swap(self, grant: Grant, **changes: Any) -> Grant:
        """Store the grant changed and its version bumped; return it."""
        swapped = stored(dataclasses.replace(grant, version=grant.version + 1, **changes))
        self._store.grants[grant.id] = swapped
        return swapped


class FakeApplicationTokenRepository:
    """ApplicationTokenRepository over a FakeStore (tokens kept as they are)."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, client_id: str) -> ApplicationTokenRecord | None:
        """Return the client's record."""
        return self._store.application_tokens.get(client_id)

    async def claim(
        self, client_id: str, *, expected_version: int, until: datetime, now: datetime
    ) -> ApplicationTokenRecord | None:
        """Claim if the version matches (0: no record, created) and no claim outlives `now`."""
        record = self._store.application_tokens.get(client_id)
        if record is None:
            if expected_version != 0:
                return None
            record = ApplicationTokenRecord(client_id=client_id, grant=None, version=0)
        elif record.version != expected_version:
            return None
        claimed = record.claimed_until
        if claimed is not None and not claimed < stored(now):
            return None
        return self._swap(record, claimed_until=until)

    async def store(
        self, client_id: str, *, expected_version: int, grant: ApplicationGrant
    ) -> ApplicationTokenRecord | None:
        """Store the token and clear the claim if the version matches."""
        record = self._matching(client_id, expected_version)
        return None if record is None else self._swap(record, grant=grant, claimed_until=None)

    async def release(
        self, client_id: str, *, expected_version: int
    ) -> ApplicationTokenRecord | None:
        """Clear the claim if the version matches."""
        record = self._matching(client_id, expected_version)
        return None if record is None else self._swap(record, claimed_until=None)

    async def discard(
        self, client_id: str, *, expected_version: int
    ) -> ApplicationTokenRecord | None:
        """Drop the token if the version matches."""
        record = self._matching(client_id, expected_version)
        return None if record is None else self._swap(record, grant=None)

    def _matching(self, client_id: str, expected_version: int) -> ApplicationTokenRecord | None:
        record = self._store.application_tokens.get(client_id)
        return record if record is not None and record.version == expected_version else None

    def _swap(self, record: ApplicationTokenRecord, **changes: Any) -> ApplicationTokenRecord:
        """Store the record changed and its version bumped; return it."""
        swapped = stored(dataclasses.replace(record, version=record.version + 1, **changes))
        self._store.application_tokens[record.client_id] = swapped
        return swapped


class FakeTelemetryRepository:
    """TelemetryRepository over a FakeStore."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def latest(self, vehicle_id: str) -> dict[TelemetryField, FieldReading]:
        """Return the stored readings of a vehicle, by field."""
        return dict(self._store.telemetry.get(vehicle_id, {}))

    async def store(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Insert or replace the readings of these fields (the last one per field wins)."""
        readings = list(readings)
        if not readings:
            return
        self._store.require_vehicle(vehicle_id)
        latest = self._store.telemetry.setdefault(vehicle_id, {})
        for reading in readings:
            latest[reading.field] = stored(reading)


class FakeRentalRepository:
    """RentalRepository over a FakeStore."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, rental_id: str) -> Rental | None:
        """Return a rental by id."""
        return self._store.rentals.get(rental_id)

    async def active(self, vehicle_id: str) -> Rental | None:
        """Return the vehicle's active rental, if any."""
        return (await self.active_for([vehicle_id])).get(vehicle_id)

    async def active_for(self, vehicle_ids: Sequence[str]) -> dict[str, Rental]:
        """Return the active rentals of these vehicles, by vehicle id."""
        wanted = set(vehicle_ids)
        rentals = self._store.rentals.values()
        return {r.vehicle_id: r for r in rentals if r.active and r.vehicle_id in wanted}

    async def add(self, rental: Rental) -> None:
        """Insert a rental; Conflict if the id exists or another rental holds the car."""
        self._store.require_vehicle(rental.vehicle_id)
        if rental.rental_id in self._store.rentals:
            raise Conflict(f"rental {rental.rental_id!r} exists")
        if rental.active and await self.active(rental.vehicle_id) is not None:
            raise Conflict(f"vehicle {rental.vehicle_id!r} is held by another rental")
        self._store.rentals[rental.rental_id] = stored(rental)

    async def end(self, rental_id: str, *, ended_at: datetime) -> None:
        """Mark the rental as ended (an ended one keeps its first end time)."""
        rental = self._store.rentals.get(rental_id)
        if rental is None:
            raise LookupError(f"no rental {rental_id!r} to end")
        if rental.active:
            self._store.rentals[rental_id] = stored(dataclasses.replace(rental, ended_at=ended_at))

    async def record(self, rental_id: str) -> RentalRecord | None:
        """Return the rental with its readings and final reading, by id."""
        rental = self._store.rentals.get(rental_id)
        return None if rental is None else self._record(rental)

    async def records(self, query: RentalQuery) -> list[RentalRecord]:
        """Return up to `query.limit` rentals by (started_at, rental_id) after `query.after`."""
        found = [
            rental
            for rental in self._ordered()
            if (query.vehicle_id is None or rental.vehicle_id == query.vehicle_id)
            and _ended_within(rental, query.ended_after, query.ended_before)
            and (query.after is None or (rental.started_at, rental.rental_id) > query.after)
        ]
        return [self._record(rental) for rental in found[: max(query.limit, 0)]]

    async def following(self, rental: Rental) -> RentalRecord | None:
        """Return the first rental of the same vehicle started at or after `rental` ended."""
        ended_at = rental.ended_at
        if ended_at is None:
            return None
        later = (
            r
            for r in self._ordered()
            if r.vehicle_id == rental.vehicle_id
            and r.started_at >= ended_at
            and r.rental_id != rental.rental_id
        )
        first = next(later, None)
        return None if first is None else self._record(first)

    async def store_readings(
        self, rental_id: str, phase: RentalPhase, readings: Iterable[SourcedReading]
    ) -> None:
        """Insert or replace the rental's readings of these fields at `phase`."""
        readings = list(readings)
        if not readings:
            return
        self._store.require_rental(rental_id)
        held = self._store.rental_readings.setdefault((rental_id, phase), {})
        for sourced in readings:
            held[sourced.field] = stored(sourced)

    async def save_final(self, rental_id: str, final: FinalReading) -> None:
        """Insert or replace the chase of the rental's final reading."""
        self._store.require_rental(rental_id)
        self._store.rental_finals[rental_id] = stored(final)

    async def due_finals(self, *, now: datetime, limit: int) -> list[RentalRecord]:
        """Return rentals whose final reading is pending and due at `now`, longest due first."""
        due = sorted(
            (final.next_attempt_at, rental_id)
            for rental_id, final in self._store.rental_finals.items()
            if final.state is FinalReadingState.PENDING
            and final.next_attempt_at is not None
            and final.next_attempt_at <= now
        )
        return [self._record(self._store.rentals[r]) for _, r in due[: max(limit, 0)]]

    async def pending_finals(self, vehicle_id: str) -> list[RentalRecord]:
        """Return the vehicle's rentals whose final reading is pending, oldest first."""
        finals = self._store.rental_finals
        return [
            self._record(rental)
            for rental in self._ordered()
            if rental.vehicle_id == vehicle_id
            and rental.rental_id in finals
            and finals[rental.rental_id].state is FinalReadingState.PENDING
        ]

    def _ordered(self) -> list[Rental]:
        return sorted(self._store.rentals.values(), key=lambda r: (r.started_at, r.rental_id))

    def _record(self, rental: Rental) -> RentalRecord:
        readings = self._store.rental_readings
        return RentalRecord(
            rental=rental,
            start=dict(readings.get((rental.rental_id, RentalPhase.START), {})),
            end=dict(readings.get((rental.rental_id, RentalPhase.END), {})),
            final=self._store.rental_finals.get(rental.rental_id),
        )


def _ended_within(rental: Rental, after: datetime | None, before: datetime | None) -> bool:
    """Tell whether the rental ended in [after, before) (either bound optional); an active
    rental never matches a bound."""
    if after is None and before is None:
        return True
    ended_at = rental.ended_at
    if ended_at is None:
        return False
    return (after is None or ended_at >= after) and (before is None or ended_at < before)


class FakeCommandRepository:
    """CommandRepository over a FakeStore."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def get(self, request_id: str) -> CommandRecord | None:
        """Return the command recorded under this request id."""
        return self._store.commands.get(request_id)

    async def add(self, record: CommandRecord) -> None:
        """Insert a command; Conflict if the request id exists."""
        self._store.require_vehicle(record.vehicle_id)
        if record.request_id in self._store.commands:
            raise Conflict(f"request {record.request_id!r} exists")
        self._store.commands[record.request_id] = stored(record)

    async def update(self, record: CommandRecord) -> None:
        """Write the command's state, completion time and error (nothing else)."""
        current = self._store.commands.get(record.request_id)
        if current is None:
            raise LookupError(f"no command {record.request_id!r} to update")
        self._store.commands[record.request_id] = stored(
            dataclasses.replace(
                current, state=record.state, completed_at=record.completed_at, error=record.error
            )
        )

    async def delete(self, request_id: str) -> None:
        """Forget a command, freeing its request id."""
        self._store.commands.pop(request_id, None)

    async def resolve(self, record: CommandRecord, *, was: CommandState) -> bool:
        """Write the command's outcome only if its state is still `was`."""
        current = self._store.commands.get(record.request_id)
        if current is None or current.state is not was:
            return False
        await self.update(record)
        return True

    async def unresolved(
        self, *, sent_after: datetime, pending_before: datetime, limit: int
    ) -> list[CommandRecord]:
        """Return open outcomes, oldest first."""
        found = [
            c
            for c in self._store.commands.values()
            if (c.state is CommandState.OUTCOME_UNKNOWN and c.created_at > sent_after)
            or (c.state is CommandState.PENDING and c.created_at < pending_before)
        ]
        return sorted(found, key=lambda c: (c.created_at, c.request_id))[:limit]

    async def next_sent_at(
        self, vehicle_id: str, *, after: datetime, request_id: str
    ) -> datetime | None:
        """Return when the vehicle's next other command was created."""
        return min(
            (
                c.created_at
                for c in self._store.commands.values()
                if c.vehicle_id == vehicle_id
                and c.created_at >= after
                and c.request_id != request_id
            ),
            default=None,
        )


class FakeOAuthStateRepository:
    """OAuthStateRepository over a FakeStore."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def add(self, state: OAuthState) -> None:
        """Store a newly issued state; Conflict if it was issued before."""
        self._store.require_vehicle(state.vehicle_id)
        if state.state in self._store.states:
            raise Conflict("state issued twice")
        self._store.states[state.state] = stored(state)

    async def take(self, state: str) -> OAuthState | None:
        """Delete and return the state (None if unknown or already used)."""
        return self._store.states.pop(state, None)


class FakeTransitionRepository:
    """TransitionRepository over a FakeStore; ids count up from 1 like SQLite's rowid."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def add(self, transition: StatusTransition) -> StatusTransition:
        """Append a transition (any id it carries is ignored); return it with its new id."""
        self._store.require_vehicle(transition.vehicle_id)
        new_id = max(self._store.transitions, default=0) + 1
        added = stored(dataclasses.replace(transition, id=new_id))
        self._store.transitions[new_id] = added
        return added

    async def for_vehicle(self, vehicle_id: str, *, limit: int) -> list[StatusTransition]:
        """Return a vehicle's most recent transitions, newest first."""
        newest_first = sorted(self._store.transitions.items(), reverse=True)
        return [t for _, t in newest_first if t.vehicle_id == vehicle_id][: max(limit, 0)]

    async def after(self, after_id: int, *, limit: int) -> list[StatusTransition]:
        """Return transitions with an id above `after_id`, oldest first (for watchers)."""
        oldest_first = sorted(self._store.transitions.items())
        return [t for key, t in oldest_first if key > after_id][: max(limit, 0)]

    async def latest_id(self) -> int:
        """Return the highest transition id recorded (0 when there is none)."""
        return max(self._store.transitions, default=0)


class FakeBudgetRepository:
    """BudgetRepository over a FakeStore."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def add(self, vehicle_id: str, month: str, requests: int) -> int:
        """Add billed requests; return the month's new total."""
        return (await self.charge(vehicle_id, month, requests, limit=None)).billed

    async def charge(
        self, vehicle_id: str, month: str, requests: int, *, limit: int | None
    ) -> BudgetCharge:
        """Add billed requests unless the total would pass `limit`."""
        self._store.require_vehicle(vehicle_id)
        key = (vehicle_id, month)
        current = self._store.budget.get(key, 0)
        warned = key in self._store.budget_warned
        if limit is not None and current + requests > limit:
            return BudgetCharge(accepted=False, billed=current, warned=warned)
        self._store.budget[key] = current + requests
        return BudgetCharge(accepted=True, billed=current + requests, warned=warned)

    async def mark_warned(self, vehicle_id: str, month: str, *, at: datetime) -> bool:
        """Mark the month warned; True only the first time."""
        key = (vehicle_id, month)
        if key not in self._store.budget or key in self._store.budget_warned:
            return False
        self._store.budget_warned[key] = stored(at)
        return True

    async def used(self, vehicle_id: str, month: str) -> int:
        """Return the billed requests of the month so far (0 if none)."""
        return self._store.budget.get((vehicle_id, month), 0)

    async def used_by(self, vehicle_ids: Sequence[str], month: str) -> dict[str, int]:
        """Return the month's billed requests of each of `vehicle_ids` (0 if none)."""
        return {v: self._store.budget.get((v, month), 0) for v in vehicle_ids}


class FakeLeaseRepository:
    """LeaseRepository over a FakeStore."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def acquire(self, name: str, holder: str, *, until: datetime, now: datetime) -> bool:
        """Take or renew the lease if it is free, expired at `now`, or already `holder`'s."""
        current = self._store.leases.get(name)
        if current is not None and current.holder != holder and current.expires_at > stored(now):
            return False
        self._store.leases[name] = FakeLease(holder=holder, expires_at=stored(until))
        return True

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up if `holder` has it."""
        current = self._store.leases.get(name)
        if current is not None and current.holder == holder:
            del self._store.leases[name]


class FakeWebhookEventRepository:
    """WebhookEventRepository over a FakeStore."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def add(self, event: WebhookEvent) -> bool:
        """Store a new event; False (and nothing written) if its id was seen before."""
        if event.event_id in self._store.webhook_events:
            return False
        # What a JSON column gives back: a fresh dict, tuples as lists, non-JSON refused.
        payload = json.loads(json.dumps(dict(event.payload)))
        self._store.webhook_events[event.event_id] = stored(
            dataclasses.replace(event, payload=payload)
        )
        return True

    async def mark_applied(self, event_id: str, *, at: datetime, error: str | None) -> None:
        """Record that the event was applied (or why not); LookupError if it is unknown."""
        event = self._store.webhook_events.get(event_id)
        if event is None:
            raise LookupError(f"no webhook event {event_id!r} to mark")
        self._store.webhook_events[event_id] = stored(
            dataclasses.replace(event, applied_at=at, error=error, failed_at=None)
        )

    async def mark_failed(self, event_id: str, *, at: datetime, reason: str) -> None:
        """Record that the event could not be applied, and why; LookupError if unknown."""
        event = self._store.webhook_events.get(event_id)
        if event is None:
            raise LookupError(f"no webhook event {event_id!r} to mark")
        self._store.webhook_events[event_id] = stored(
            dataclasses.replace(event, applied_at=None, failed_at=at, error=reason)
        )

    async def get(self, event_id: str) -> WebhookEvent | None:
        """Return the stored event with this id, whatever its state, or None."""
        return self._store.webhook_events.get(event_id)

    async def pending(self, *, limit: int) -> list[WebhookEvent]:
        """Return stored events neither applied nor failed, oldest first (then by id)."""
        waiting = [e for e in self._store.webhook_events.values() if e.pending]
        waiting.sort(key=lambda e: (e.received_at, e.event_id))
        return waiting[: max(limit, 0)]


class FakeAuditRepository:
    """AuditRepository over a FakeStore; ids count up from 1."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def add(self, entry: AuditEntry) -> AuditEntry:
        """Append an entry (any id it carries is ignored); return it with its id."""
        new_id = max(self._store.audit, default=0) + 1
        added = stored(dataclasses.replace(entry, id=new_id))
        self._store.audit[new_id] = added
        return added

    async def find(self, query: AuditQuery) -> list[AuditEntry]:
        """Return the entries matching `query`, newest first."""
        found = [
            entry
            for key, entry in sorted(self._store.audit.items(), reverse=True)
            if (query.vehicle_id is None or entry.vehicle_id == query.vehicle_id)
            and (query.caller is None or entry.caller == query.caller)
            and (query.method is None or entry.method == query.method)
            and (query.since is None or entry.at >= query.since)
            and (query.before_id is None or key < query.before_id)
        ]
        return found[: max(query.limit, 0)]

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete, among the `limit` oldest entries, those recorded before `before`."""
        oldest = sorted(self._store.audit)[: max(limit, 0)]
        expired = [key for key in oldest if self._store.audit[key].at < before]
        for key in expired:
            del self._store.audit[key]
        return len(expired)


class FakeVehicleEventRepository:
    """VehicleEventRepository over a FakeStore; ids count up from 1 and are never reused."""

    def __init__(self, store: FakeStore) -> None:
        self._store = store

    async def add(self, event: VehicleEvent) -> VehicleEvent:
        """Append an event (any id it carries is ignored); return it with its new id."""
        store = self._store
        new_id = max(max(store.events, default=0), store.events_pruned_through) + 1
        added = stored(dataclasses.replace(event, id=new_id))
        store.events[new_id] = added
        return added

    async def after(self, after_id: int, *, limit: int) -> list[VehicleEvent]:
        """Return events with an id above `after_id`, oldest first."""
        oldest_first = sorted(self._store.events.items())
        return [e for key, e in oldest_first if key > after_id][: max(limit, 0)]

    async def latest_id(self) -> int:
        """Return the highest event id recorded (0 when there is none)."""
        return max(max(self._store.events, default=0), self._store.events_pruned_through)

    async def pruned_through(self) -> int:
        """Return the highest id retention deleted (0: none)."""
        return self._store.events_pruned_through

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete the oldest events up to the first written at or after `before`."""
        deleted = 0
        for key in sorted(self._store.events)[: max(limit, 0)]:
            if self._store.events[key].at >= before:
                break
            del self._store.events[key]
            self._store.events_pruned_through = max(self._store.events_pruned_through, key)
            deleted += 1
        return deleted

    async def latch(self, vehicle_id: str, kind: VehicleEventKind, *, at: datetime) -> bool:
        """Set the latch; False when it was set already."""
        key = (vehicle_id, kind)
        if key in self._store.event_latches:
            return False
        self._store.event_latches[key] = stored(at)
        return True

    async def unlatch(self, vehicle_id: str, kind: VehicleEventKind) -> None:
        """Clear the latch (none set is fine)."""
        self._store.event_latches.pop((vehicle_id, kind), None)


class FakeUnitOfWork:
    """A UnitOfWork over a copy of its factory's store, written back on commit."""

    vehicles: VehicleRepository
    grants: GrantRepository
    application_tokens: ApplicationTokenRepository
    telemetry: TelemetryRepository
    rentals: RentalRepository
    commands: CommandRepository
    states: OAuthStateRepository
    transitions: TransitionRepository
    budget: BudgetRepository
    leases: LeaseRepository
    webhook_events: WebhookEventRepository
    audit: AuditRepository
    events: VehicleEventRepository

    def __init__(self, factory: FakeUnitOfWorkFactory, *, read_only: bool = False) -> None:
        self._read_only = read_only
        self._factory = factory
        self._working = FakeStore()
        self._entered = False
        self._open = False
        self.committed = False
        self._bind()

    def _bind(self) -> None:
        """Point the repositories at the working copy."""
        self.vehicles = FakeVehicleRepository(self._working)
        self.grants = FakeGrantRepository(self._working)
        self.application_tokens = FakeApplicationTokenRepository(self._working)
        self.telemetry = FakeTelemetryRepository(self._working)
        self.rentals = FakeRentalRepository(self._working)
        self.commands = FakeCommandRepository(self._working)
        self.states = FakeOAuthStateRepository(self._working)
        self.transitions = FakeTransitionRepository(self._working)
        self.budget = FakeBudgetRepository(self._working)
        self.leases = FakeLeaseRepository(self._working)
        self.webhook_events = FakeWebhookEventRepository(self._working)
        self.audit = FakeAuditRepository(self._working)
        self.events = FakeVehicleEventRepository(self._working)

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a unit of work is entered once; make a new one")
        self._entered = True
        await self._factory.acquire()
        self._working.load(self._factory.store)
        self._open = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._open = False
        self._factory.release()

    async def commit(self) -> None:
        """Write the working copy back to the shared store."""
        if not self._open:
            raise RuntimeError("the unit of work is not open: use it in `async with`")
        if self._read_only:
            raise RuntimeError("a reader unit of work cannot commit: open a writing one")
        self._factory.store.load(self._working)
        self._factory.commits += 1
        self.committed = True


class FakeUnitOfWorkFactory:
    """Makes FakeUnitOfWorks over one shared FakeStore; `store` is there for assertions."""

    def __init__(self, store: FakeStore | None = None) -> None:
        self.store = store if store is not None else FakeStore()
        self.commits = 0
        self.opened = 0
        self._lock = asyncio.Lock()
        self._holder: asyncio.Task[Any] | None = None

    def __call__(self) -> FakeUnitOfWork:
        self.opened += 1
        return FakeUnitOfWork(self)

    def reader(self) -> FakeUnitOfWork:
        """A unit of work that only reads (its commit refuses)."""
        self.opened += 1
        return FakeUnitOfWork(self, read_only=True)

    async def acquire(self) -> None:
        """Wait until no other unit of work holds the store, then hold it."""
        task = asyncio.current_task()
        if task is not None and task is self._holder:
            raise RuntimeError("a unit of work was opened inside another in the same task")
        await self._lock.acquire()
        self._holder = task

    def release(self) -> None:
        """Let the next unit of work have the store."""
        self._holder = None
        self._lock.release()


class FakeSharedTelemetry:
    """SharedTelemetry in memory: one instance given to several gateways plays Redis
    between replicas. `claims` counts the claims granted."""

    def __init__(self) -> None:
        self.store: dict[str, dict[TelemetryField, FieldReading]] = {}
        self.holders: dict[str, str] = {}
        self.claims = 0
        self._released: dict[str, asyncio.Event] = {}

    async def readings(self, vehicle_id: str) -> dict[TelemetryField, FieldReading] | None:
        """The shared readings, or None."""
        return dict(self.store[vehicle_id]) if vehicle_id in self.store else None

    async def put(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Keep each reading unless a newer one of its field is held."""
        held = self.store.setdefault(vehicle_id, {})
        oldest = datetime.min.replace(tzinfo=UTC)
        for reading in readings:
            current = held.get(reading.field)
            if current is None or (reading.fetched_at or oldest) >= (current.fetched_at or oldest):
                held[reading.field] = reading

    async def claim(self, vehicle_id: str, *, ttl_s: float) -> str | None:
        """A token when nobody holds the vehicle (ttl is not modelled)."""
        if vehicle_id in self.holders:
            return None
        self.claims += 1
        token = self.holders[vehicle_id] = f"claim-{self.claims}"
        self._released[vehicle_id] = asyncio.Event()
        return token

    async def release(self, vehicle_id: str, token: str) -> None:
        """Release the claim if `token` holds it."""
        if self.holders.get(vehicle_id) == token:
            del self.holders[vehicle_id]
            self._released.pop(vehicle_id).set()

    async def wait(self, vehicle_id: str, *, timeout_s: float) -> None:
        """Until the claim is released, or `timeout_s`."""
        released = self._released.get(vehicle_id)
        if released is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), timeout_s)
