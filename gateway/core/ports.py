"""The ports the core needs: a clock, Smartcar, and storage (a unit of work over repositories).

Adapters implement these Protocols: `gateway.edge.smartcar.adapter` (SmartcarAPI on our
httpx client), `gateway.edge.smartcar.iam` (ApplicationAuth, API V3's token endpoint),
`gateway.edge.smartcar.compatibility` (CompatibilityAPI),
`gateway.edge.smartcar.events` (WebhookDecoder), `storage.uow` (UnitOfWork on SQLAlchemy),
`gateway.edge.clock`. Tests use the hand-written fakes in `tests/fakes.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from gateway.core.model import (
    ApplicationGrant,
    ApplicationTokenRecord,
    AuditEntry,
    AuditQuery,
    BatchReading,
    BudgetCharge,
    Command,
    CommandRecord,
    CommandState,
    ConnectionStatus,
    FieldReading,
    FinalReading,
    Grant,
    LastCommand,
    OAuthState,
    Rental,
    RentalPhase,
    RentalQuery,
    RentalRecord,
    SmartcarAccess,
    SmartcarApi,
    SourcedReading,
    StatusTransition,
    TelemetryField,
    TokenPair,
    Vehicle,
    VehicleCompatibility,
    VehicleInfo,
    WebhookEvent,
)
from gateway.core.reports import VehicleReport
from gateway.core.secret import Secret
from gateway.core.vehicle_events import VehicleEvent, VehicleEventKind


class Clock(Protocol):
    """Tells the time; the only source of `now` for policies and use cases."""

    def now(self) -> datetime:
        """Return the current time, timezone-aware UTC."""
        ...


# --- Smartcar -------------------------------------------------------------------------------


class TokenRejected(Exception):
    """Smartcar refused an access token (401) on a vehicle call. Handled inside the core."""


class RefreshRejected(Exception):
    """Smartcar refused a refresh token (`invalid_grant`). Handled inside the core."""


class CodeRejected(Exception):
    """Smartcar refused an authorization code (`invalid_grant`). Handled inside the core."""


class SmartcarAPI(Protocol):
    """Everything the gateway asks of Smartcar, in domain terms.

    Implementations raise `TokenRejected`, `RefreshRejected` and `CodeRejected` for the
    three refusals the core handles itself, and `gateway.core.errors.GatewayError`
    subclasses for everything else (rate limits with `retry_after_s`, asleep, 5xx, …).
    A command whose request may have reached the car raises `CommandOutcomeUnknown`.
    """

    def connect_url(self, *, state: str, vin: str | None, required: frozenset[str]) -> str:
        """Return the Smartcar Connect URL carrying `state` (and selecting `vin` if given)
        that asks for every permission the gateway uses, marking `required` ones as such
        (the owner cannot leave them out)."""
        ...

    async def exchange_code(self, code: str) -> TokenPair:
        """Exchange an authorization code for a token pair."""
        ...

    async def refresh(self, refresh_token: Secret) -> TokenPair:
        """Exchange a refresh token for a new pair (the old refresh token is then spent)."""
        ...

    async def user_id(self, access: SmartcarAccess) -> str:
        """Return the Smartcar user id the access belongs to."""
        ...

    async def vehicle_ids(self, access: SmartcarAccess) -> list[str]:
        """Return the Smartcar vehicle ids the access covers."""
        ...

    async def vehicle_info(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> VehicleInfo:
        """Return make, model, year and VIN."""
        ...

    async def permissions(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> frozenset[str]:
        """Return the permissions the owner granted for this vehicle."""
        ...

    async def read(
        self, access: SmartcarAccess, smartcar_vehicle_id: str, fields: frozenset[TelemetryField]
    ) -> BatchReading:
        """Read `fields` in ONE upstream round trip (a batch); each field gets its own result."""
        ...

    def read_cost(self, api: SmartcarApi, fields: frozenset[TelemetryField]) -> int:
        """Return how many billed requests one `read` of `fields` through `api` counts (the
        budget counts them before the read is sent)."""
        ...

    async def command(
        self, access: SmartcarAccess, smartcar_vehicle_id: str, command: Command
    ) -> None:
        """Send the command (lock, unlock, start or stop charging, set the charge limit)
        and return once Smartcar confirms it."""
        ...

    async def disconnect(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Revoke the application's access to the vehicle at Smartcar."""
        ...


class CompatibilityAPI(Protocol):
    """Smartcar's Compatibility API: whether a car, by VIN, can be connected at all, and
    which permissions it can serve, asked with the application's own credentials.

    `check` raises `gateway.core.errors` classes: `RateLimited` (`metadata["limit"]`
    `smartcar_application` for Smartcar's app-wide 429), `UpstreamUnavailable`,
    `ApplicationCredentialsRefused` and `UpstreamRejected`."""

    async def check(
        self, vin: str, *, country: str, permissions: frozenset[str]
    ) -> VehicleCompatibility:
        """Ask about the car with `vin` (upper case) registered in `country` (ISO 3166-1
        alpha-2, upper case), and about the endpoints `permissions` authorise."""
        ...


class ApplicationAuth(Protocol):
    """Smartcar's token endpoint for the application itself (API V3 client credentials).

    `grant` raises `gateway.core.errors.ApplicationCredentialsRefused` when Smartcar refuses
    every configured client secret (`invalid_client`), `UpstreamUnavailable` when it cannot
    be reached or fails (timeouts, 5xx, an unreadable answer, its rate limit), and
    `UpstreamRejected` when it refuses the request for another reason.
    """

    @property
    def client_id(self) -> str:
        """The client id the tokens are granted to (the key of the stored token)."""
        ...

    async def grant(self) -> ApplicationGrant:
        """Ask Smartcar for a new application token."""
        ...


class WebhookSubscriptions(Protocol):
    """Subscribing a car to the application's webhook, so Smartcar sends its events, and
    unsubscribing it when it is disconnected."""

    async def subscribe(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Subscribe the car the access's user connected (already subscribed is success)."""
        ...

    async def unsubscribe(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Remove the car's subscriptions to the application's webhook (none left is
        success)."""
        ...


class WebhookDecoder(Protocol):
    """Reads stored webhook events in one wire format and tells what each reports.

    The inbox stores an event's body as received and asks this for its meaning when it
    applies the event, so the core never reads Smartcar's JSON keys itself."""

    def decode(self, event: WebhookEvent) -> VehicleReport:
        """Return what the event reports about its vehicle (`NotHandled` when nothing the
        gateway acts on)."""
        ...

    def owner(self, event: WebhookEvent) -> str | None:
        """Return the Smartcar user whose connection the event concerns, or None when the
        event names none."""
        ...


# --- storage ----------------------------------------------------------------------------------


class Conflict(Exception):
    """A write collided with an existing row (a unique key such as a request id)."""


class VehicleRepository(Protocol):
    """Fleet vehicles and their connection panel."""

    async def get(self, vehicle_id: str, *, for_update: bool = False) -> Vehicle | None:
        """Return the vehicle; `for_update` locks its row until the unit of work ends."""
        ...

    async def by_smartcar_id(self, smartcar_vehicle_id: str) -> Vehicle | None:
        """Return the fleet vehicle linked to a Smartcar vehicle id, if any."""
        ...

    async def by_grant(self, grant_id: str) -> list[Vehicle]:
        """Return every vehicle using this grant's tokens."""
        ...

    async def add(self, vehicle: Vehicle) -> None:
        """Insert a new vehicle; raises Conflict if the id exists."""
        ...

    async def update(self, vehicle: Vehicle) -> None:
        """Write every field of an existing vehicle but its `request_allowance`, which only
        `set_request_allowance` writes (so a copy read before an operator changed it cannot
        undo the change)."""
        ...

    async def set_request_allowance(self, vehicle_id: str, allowance: int | None) -> None:
        """Set the vehicle's own monthly request allowance (None: the fleet's); a change of
        the vehicle for `changed_since`. LookupError if there is no such vehicle."""
        ...

    async def count_by_status(self) -> dict[ConnectionStatus, int]:
        """Return how many vehicles are in each connection status (absent: none)."""
        ...

    async def note_command(self, vehicle_id: str, last: LastCommand) -> bool:
        """Record the vehicle's last command (locking its row until the unit of work ends);
        False if there is no such vehicle. One statement, without reading the row."""
        ...

    async def note_telemetry(self, vehicle_id: str, *, at: datetime, awake: bool) -> None:
        """Record that the vehicle reported at `at`; `awake` also clears its sleep mark.

        One statement, without reading the row: the hot path of every poll.
        """
        ...

    async def changed_since(self, since: datetime | None) -> tuple[datetime, list[Vehicle]]:
        """The database's time now, and the vehicles whose row changed at or after `since`
        by that clock (none when `since` is None). Telemetry notes do not count as changes."""
        ...

    async def page(
        self, *, status: ConnectionStatus | None, after_id: str | None, limit: int
    ) -> list[Vehicle]:
        """Return up to `limit` vehicles ordered by id, after `after_id`, optionally by status."""
        ...


class GrantRepository(Protocol):
    """Token pairs, one per Smartcar user authorization, stored encrypted."""

    async def get(self, grant_id: str) -> Grant | None:
        """Return the grant with its tokens decrypted (a failed decryption raises)."""
        ...

    async def by_user(self, smartcar_user_id: str) -> list[Grant]:
        """Return every grant of one Smartcar user."""
        ...

    async def add(self, grant: Grant) -> None:
        """Insert a new grant."""
        ...

    async def claim_refresh(
        self, grant_id: str, *, expected_version: int, until: datetime, now: datetime
    ) -> Grant | None:
        """Mark the grant as being refreshed until `until`, if its version is still
        `expected_version` and no unexpired claim exists; return the claimed grant (its
        version bumped) or None when another worker got there first."""
        ...

    async def replace_tokens(
        self, grant_id: str, *, expected_version: int, tokens: TokenPair
    ) -> Grant | None:
        """Store a new pair and clear the claim if the version still matches; return the
        updated grant (version bumped) or None if the version moved on."""
        ...

    async def delete(self, grant_id: str) -> None:
        """Remove the grant and its tokens."""
        ...

    async def due_for_renewal(self, *, refresh_expires_before: datetime, limit: int) -> list[Grant]:
        """Return grants whose refresh token expires before the given time, soonest first."""
        ...


class ApplicationTokenRepository(Protocol):
    """The application token of each Smartcar client id, stored encrypted, with the
    compare-and-swap operations that make one grant per expiry across replicas. Every
    successful operation bumps `version`; a stale `expected_version` changes nothing."""

    async def get(self, client_id: str) -> ApplicationTokenRecord | None:
        """Return the client's record with its token decrypted (None: never claimed)."""
        ...

    async def claim(
        self, client_id: str, *, expected_version: int, until: datetime, now: datetime
    ) -> ApplicationTokenRecord | None:
        """Mark a grant as under way until `until`, if the record is still at
        `expected_version` (0: no record yet, one is created) and no claim outlives `now`;
        return the claimed record, or None when another worker got there first."""
        ...

    async def store(
        self, client_id: str, *, expected_version: int, grant: ApplicationGrant
    ) -> ApplicationTokenRecord | None:
        """Store a new token and clear the claim if the version still matches; return the
        updated record, or None if the version moved on."""
        ...

    async def release(
        self, client_id: str, *, expected_version: int
    ) -> ApplicationTokenRecord | None:
        """Clear the claim, keeping the token, if the version still matches (a grant failed)."""
        ...

    async def discard(
        self, client_id: str, *, expected_version: int
    ) -> ApplicationTokenRecord | None:
        """Drop the token (Smartcar refused it) if the version still matches; return the
        record without a token, or None if the version moved on."""
        ...


class TelemetryRepository(Protocol):
    """The latest reading of each telemetry field per vehicle."""

    async def latest(self, vehicle_id: str) -> dict[TelemetryField, FieldReading]:
        """Return the stored readings of a vehicle, by field."""
        ...

    async def store(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Insert or replace the readings of these fields."""
        ...


class RentalRepository(Protocol):
    """Rental holds; at most one active rental per vehicle (enforced by the database). With
    each rental, the readings taken at its start and end (one per field and phase) and the
    chase of its final reading."""

    async def get(self, rental_id: str) -> Rental | None:
        """Return a rental by id."""
        ...

    async def active(self, vehicle_id: str) -> Rental | None:
        """Return the vehicle's active rental, if any."""
        ...

    async def active_for(self, vehicle_ids: Sequence[str]) -> dict[str, Rental]:
        """Return the active rentals of these vehicles, by vehicle id."""
        ...

    async def add(self, rental: Rental) -> None:
        """Insert an active rental; raises Conflict if the id exists or the car is held."""
        ...

    async def end(self, rental_id: str, *, ended_at: datetime) -> None:
        """Mark the rental as ended."""
        ...

    async def record(self, rental_id: str) -> RentalRecord | None:
        """Return the rental with its readings and final reading, by id."""
        ...

    async def records(self, query: RentalQuery) -> list[RentalRecord]:
        """Return up to `query.limit` rentals with their readings, ordered by (started_at,
        rental_id) after `query.after`, filtered by vehicle and end time."""
        ...

    async def following(self, rental: Rental) -> RentalRecord | None:
        """Return the first rental of the same vehicle started at or after `rental` ended
        (None for an active rental, or when there is none)."""
        ...

    async def store_readings(
        self, rental_id: str, phase: RentalPhase, readings: Iterable[SourcedReading]
    ) -> None:
        """Insert or replace the rental's readings of these fields at `phase`."""
        ...

    async def save_final(self, rental_id: str, final: FinalReading) -> None:
        """Insert or replace the chase of the rental's final reading."""
        ...

    async def due_finals(self, *, now: datetime, limit: int) -> list[RentalRecord]:
        """Return ended rentals whose final reading is pending and due at `now` (its next
        attempt at or before it), the longest due first."""
        ...

    async def pending_finals(self, vehicle_id: str) -> list[RentalRecord]:
        """Return the vehicle's ended rentals whose final reading is pending, oldest first."""
        ...


class CommandRepository(Protocol):
    """Command requests by idempotency key, with their outcome (also the audit trail)."""

    async def get(self, request_id: str) -> CommandRecord | None:
        """Return the command recorded under this request id."""
        ...

    async def add(self, record: CommandRecord) -> None:
        """Insert a command; raises Conflict if the request id exists."""
        ...

    async def update(self, record: CommandRecord) -> None:
        """Write the command's state, completion time and error."""
        ...

    async def delete(self, request_id: str) -> None:
        """Forget a command that surely never reached the car, freeing its request id."""
        ...

    async def resolve(self, record: CommandRecord, *, was: CommandState) -> bool:
        """Write the command's outcome only if its state is still `was`; tell if it was."""
        ...

    async def unresolved(
        self, *, sent_after: datetime, pending_before: datetime, limit: int
    ) -> list[CommandRecord]:
        """Return open outcomes, oldest first: OUTCOME_UNKNOWN commands created after
        `sent_after`, and PENDING ones created before `pending_before` (their worker stopped)."""
        ...

    async def next_sent_at(
        self, vehicle_id: str, *, after: datetime, request_id: str
    ) -> datetime | None:
        """Return when the vehicle's first command other than `request_id` created at or
        after `after` was created (None: there is none)."""
        ...


class OAuthStateRepository(Protocol):
    """Single-use Connect states."""

    async def add(self, state: OAuthState) -> None:
        """Store a newly issued state."""
        ...

    async def take(self, state: str) -> OAuthState | None:
        """Delete and return the state (None if unknown or already used)."""
        ...


class TransitionRepository(Protocol):
    """The history of connection status changes."""

    async def add(self, transition: StatusTransition) -> StatusTransition:
        """Append a transition; return it with its id."""
        ...

    async def for_vehicle(self, vehicle_id: str, *, limit: int) -> list[StatusTransition]:
        """Return a vehicle's most recent transitions, newest first."""
        ...

    async def after(self, after_id: int, *, limit: int) -> list[StatusTransition]:
        """Return transitions with an id above `after_id`, oldest first (for watchers)."""
        ...

    async def latest_id(self) -> int:
        """Return the highest transition id recorded (0 when there is none)."""
        ...


class AuditRepository(Protocol):
    """The audit trail of actions on cars, append-only."""

    async def add(self, entry: AuditEntry) -> AuditEntry:
        """Append an entry (any id it carries is ignored); return it with its id."""
        ...

    async def find(self, query: AuditQuery) -> list[AuditEntry]:
        """Return the entries matching `query`, newest first."""
        ...

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete, among the `limit` oldest entries (by id), those recorded before `before`;
        return how many. Looking no further than the oldest keeps each call cheap without an
        index on the time; an entry stamped late by a skewed clock only delays the ones
        after it until it expires too."""
        ...


class BudgetRepository(Protocol):
    """Billed Smartcar requests per vehicle and calendar month (`YYYY-MM`, UTC)."""

    async def add(self, vehicle_id: str, month: str, requests: int) -> int:
        """Add billed requests atomically; return the month's new total."""
        ...

    async def charge(
        self, vehicle_id: str, month: str, requests: int, *, limit: int | None
    ) -> BudgetCharge:
        """Add billed requests unless the month's total would pass `limit` (None: no
        limit), in one atomic statement, so concurrent charges never pass it together;
        return the outcome, the month's count and whether it was warned."""
        ...

    async def mark_warned(self, vehicle_id: str, month: str, *, at: datetime) -> bool:
        """Mark the month as warned (its count passed the warning share); True only for
        the one call that marked it, across processes."""
        ...

    async def used(self, vehicle_id: str, month: str) -> int:
        """Return the billed requests of the month so far (0 if none)."""
        ...

    async def used_by(self, vehicle_ids: Sequence[str], month: str) -> dict[str, int]:
        """Return the month's billed requests of each of `vehicle_ids` (0 if none)."""
        ...


class LeaseRepository(Protocol):
    """Named leases, so exactly one replica runs a background job at a time."""

    async def acquire(self, name: str, holder: str, *, until: datetime, now: datetime) -> bool:
        """Take or renew the lease if it is free, expired, or already `holder`'s."""
        ...

    async def release(self, name: str, holder: str) -> None:
        """Give the lease up if `holder` has it."""
        ...


class WebhookEventRepository(Protocol):
    """Received webhook events, deduplicated by event id."""

    async def add(self, event: WebhookEvent) -> bool:
        """Store a new event; False (and nothing written) if its id was seen before."""
        ...

    async def mark_applied(self, event_id: str, *, at: datetime, error: str | None) -> None:
        """Record that the event was applied (`error`: what of it was skipped or rejected)."""
        ...

    async def mark_failed(self, event_id: str, *, at: datetime, reason: str) -> None:
        """Record that the event could not be applied, and why; LookupError if unknown."""
        ...

    async def get(self, event_id: str) -> WebhookEvent | None:
        """Return the stored event with this id, whatever its state, or None."""
        ...

    async def pending(self, *, limit: int) -> list[WebhookEvent]:
        """Return stored events neither applied nor failed, oldest first."""
        ...


class VehicleEventRepository(Protocol):
    """Vehicle events, the outbox WatchVehicleEvents streams (ids increase with every one
    added); the latches that make a low fuel or charge event once per crossing; and how far
    retention has pruned."""

    async def add(self, event: VehicleEvent) -> VehicleEvent:
        """Append an event (any id it carries is ignored); return it with its id."""
        ...

    async def after(self, after_id: int, *, limit: int) -> list[VehicleEvent]:
        """Return events with an id above `after_id`, oldest first (for streams)."""
        ...

    async def latest_id(self) -> int:
        """Return the highest event id recorded (0 when there is none)."""
        ...

    async def pruned_through(self) -> int:
        """Return the highest id retention has deleted (0: nothing yet): events up to it
        are gone, so a stream cannot resume before it."""
        ...

    async def prune(self, *, before: datetime, limit: int) -> int:
        """Delete, among the `limit` oldest events (by id), those written before `before`,
        and move `pruned_through` up to the highest id deleted, atomically; return how many
        were deleted."""
        ...

    async def latch(self, vehicle_id: str, kind: VehicleEventKind, *, at: datetime) -> bool:
        """Set the vehicle's latch of `kind` (a low level reported); True only for the one
        call that set it, across processes (False: it was set already)."""
        ...

    async def unlatch(self, vehicle_id: str, kind: VehicleEventKind) -> None:
        """Clear the vehicle's latch of `kind` (the level rose again); none set is fine."""
        ...


class UnitOfWork(Protocol):
    """One transaction over all repositories; leaving without `commit()` rolls back."""

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

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None:
        """Make the unit's writes durable."""
        ...


class UnitOfWorkFactory(Protocol):
    """Makes units of work: `()` for one that may write, `reader()` for one that only
    reads (on SQLite it does not take the write lock, so it runs beside a writer)."""

    def __call__(self) -> UnitOfWork:
        """A unit of work that may write (and must `commit()` to keep its writes)."""
        ...

    def reader(self) -> UnitOfWork:
        """A unit of work that only reads; its `commit()` refuses."""
        ...


class ReadingEncoder(Protocol):
    """Encodes one reading as callers receive it (the gRPC edge: a serialized `Telemetry`
    holding just that reading, so that encoded readings concatenated are the answer
    listing them all). The telemetry cache encodes each reading once, when it is held, so
    a cached read answers by joining bytes instead of converting readings."""

    def __call__(self, reading: FieldReading) -> bytes:
        """The encoded reading."""
        ...


class SharedTelemetry(Protocol):
    """Telemetry every replica sees (the Redis adapter): the latest readings per vehicle,
    and a claim saying which replica is asking Smartcar for a vehicle right now.

    It is a cache in front of storage, never the record: an adapter that cannot reach its
    store answers `None` from `readings`, grants every claim (each replica then fetches
    for itself) and drops writes, so an outage costs duplicate reads, never wrong answers.
    """

    async def readings(self, vehicle_id: str) -> dict[TelemetryField, FieldReading] | None:
        """The shared readings of a vehicle, or None when there are none (or no store)."""
        ...

    async def put(self, vehicle_id: str, readings: Iterable[FieldReading]) -> None:
        """Share readings, field by field, unless a newer one (by `fetched_at`) is there."""
        ...

    async def claim(self, vehicle_id: str, *, ttl_s: float) -> str | None:
        """Claim the right to fetch the vehicle for `ttl_s`; a token for `release`, or None
        when another replica holds the claim."""
        ...

    async def release(self, vehicle_id: str, token: str) -> None:
        """Give up the claim `token` (a claim that expired and was taken over is left)."""
        ...

    async def wait(self, vehicle_id: str, *, timeout_s: float) -> None:
        """Return once nobody holds the vehicle's claim, or after `timeout_s`."""
        ...
