"""The database schema: one SQLAlchemy Core table per stored concept.

Written for SQLite and PostgreSQL alike: timezone-aware times through `UTCDateTime`,
JSON through SQLAlchemy's portable `JSON`, a partial unique index both dialects
understand. Alembic migrations (storage/migrations) create exactly this; a test compares
the two.

    smartcar_grants     one Smartcar user's token pair (one AES-GCM ciphertext for both tokens)
    smartcar_application_tokens  the API V3 application token per client id (AES-GCM)
    vehicles            fleet vehicles and their connection panel
    telemetry           the latest reading per (vehicle, field)
    rentals             rental holds; at most one active per vehicle
    rental_readings     the readings taken at a rental's start and end, per field
    rental_final_readings  the chase of an ended rental's final reading
    commands            command requests by idempotency key, with their outcome
    oauth_states        single-use Connect states, stored as SHA-256 hashes
    status_transitions  every change of a vehicle's connection status (the audit trail)
    request_budget      billed Smartcar requests per (vehicle, calendar month), and whether
                        the month was reported as running low
    scheduler_leases    named leases: which replica runs a background job, and until when
    webhook_events      Smartcar webhook deliveries, deduplicated by event id
    audit_log           every action on a car: caller, method, vehicle, request, outcome
    vehicle_events      what happened to each car, written with the change it reports (the
                        outbox WatchVehicleEvents streams); pruned after the retention
    vehicle_event_latches  the low fuel and charge events reported and not yet re-armed
    vehicle_event_horizon  how far retention has pruned vehicle_events (one row)
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

ID = 128
"""Length of every id column (fleet, Smartcar, rental and request ids)."""


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC, read back as UTC even where SQLite drops tz."""

    impl = DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Refuse naive datetimes; store everything else converted to UTC."""
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetimes are not stored: give a timezone-aware time")
        utc = value.astimezone(UTC)
        # SQLite stores the text without an offset: drop it only after converting to UTC.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime (SQLite hands back naive UTC)."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class db_now(FunctionElement[datetime]):
    """The database's current time, to the microsecond on SQLite too.

    SQLite's CURRENT_TIMESTAMP has whole seconds; its stamps would tie with a time read in
    the same second. On SQLite this renders the time in exactly the text form SQLAlchemy
    binds datetimes in, so stored stamps and bound times compare correctly as text.
    """

    type = UTCDateTime()
    inherit_cache = True


@compiles(db_now)
def _db_now(element: db_now, compiler: SQLCompiler, **kw: object) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: SQLCompiler, **kw: object) -> str:
    return "strftime('%Y-%m-%d %H:%M:%f000', 'now')"


def _json() -> JSON:
    """Return a JSON column type that stores Python None as SQL NULL."""
    return JSON(none_as_null=True)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

smartcar_grants = Table(
    "smartcar_grants",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("smartcar_user_id", String(ID), nullable=False, index=True),
    # Both tokens in ONE AES-256-GCM ciphertext, so a pair is never half-written.
    Column("tokens", LargeBinary, nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("access_expires_at", UTCDateTime(), nullable=False),
    # Indexed for renewal: the scheduler walks grants by refresh-token expiry.
    Column("refresh_expires_at", UTCDateTime(), nullable=False, index=True),
    Column("version", Integer, nullable=False),
    Column("refresh_claimed_until", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False, server_default=func.now()),
    Column(
        "updated_at",
        UTCDateTime(),
        nullable=False,
        server_default=func.now(),
        onupdate=func.now(),
    ),
)

smartcar_application_tokens = Table(
    "smartcar_application_tokens",
    metadata,
    Column("client_id", String(ID), primary_key=True),
    # The token's AES-256-GCM ciphertext; NULL before the first grant and once Smartcar
    # refused the token (with key_id, issued_at and expires_at).
    Column("token", LargeBinary),
    Column("key_id", String(64)),
    Column("issued_at", UTCDateTime()),
    Column("expires_at", UTCDateTime()),
    Column("version", Integer, nullable=False),
    Column("claimed_until", UTCDateTime()),
    Column(
        "updated_at",
        UTCDateTime(),
        nullable=False,
        server_default=func.now(),
        onupdate=func.now(),
    ),
)

vehicles = Table(
    "vehicles",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("smartcar_vehicle_id", String(ID), unique=True),
    Column(
        "grant_id",
        String(ID),
        ForeignKey(smartcar_grants.c.id, ondelete="SET NULL"),
        index=True,
    ),
    Column("status", String(32), nullable=False, index=True),
    Column("status_reason", Text),
    Column("status_changed_at", UTCDateTime()),
    Column("make", String(128)),
    Column("model", String(128)),
    Column("year", Integer),
    Column("vin", String(32)),
    Column("permissions", _json(), nullable=False),
    Column("last_command_action", String(16)),
    Column("last_command_request_id", String(ID)),
    Column("last_command_at", UTCDateTime()),
    Column("last_telemetry_at", UTCDateTime()),
    Column("created_at", UTCDateTime()),
    Column("asleep_until", UTCDateTime()),
    Column("failure_count", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("api", String(8), nullable=False, server_default=text("'v2'")),
    Column("smartcar_user_id", String(ID), index=True),
    # The car's own monthly request allowance; NULL: the fleet's (VG_MONTHLY_REQUEST_ALLOWANCE).
    Column("request_allowance", Integer),
    # What the owner must do (status NEEDS_REAUTHENTICATION only; NULL otherwise): Smartcar's
    # TYPE:CODE, its resolution, its page, its message, and when the scheduler last probed.
    Column("owner_error", Text),
    Column("owner_resolution_type", Text),
    Column("owner_resolution_url", Text),
    Column("owner_doc_url", Text),
    Column("owner_message", Text),
    Column("owner_commands_only", Boolean, nullable=False, server_default=text("false")),
    Column("owner_probed_at", UTCDateTime()),
    Column(
        "updated_at",
        UTCDateTime(),
        nullable=False,
        # Written by the database's clock (changed_since compares with it), finer than
        # the server default's whole seconds on SQLite.
        default=db_now(),
        server_default=func.now(),
        onupdate=db_now(),
        index=True,
    ),
)

telemetry = Table(
    "telemetry",
    metadata,
    Column("vehicle_id", String(ID), ForeignKey(vehicles.c.id), primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("availability", String(32), nullable=False),
    Column("value", _json()),
    Column("recorded_at", UTCDateTime()),
    Column("fetched_at", UTCDateTime()),
    Column("reason", Text),
)

rentals = Table(
    "rentals",
    metadata,
    Column("rental_id", String(ID), primary_key=True),
    Column("vehicle_id", String(ID), ForeignKey(vehicles.c.id), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("ended_at", UTCDateTime()),
)
Index(
    "uq_rentals_active_vehicle",
    rentals.c.vehicle_id,
    unique=True,
    sqlite_where=rentals.c.ended_at.is_(None),
    postgresql_where=rentals.c.ended_at.is_(None),
)
# ListRentals pages by (started_at, rental_id), of every car or of one, or by end time.
Index(None, rentals.c.started_at, rentals.c.rental_id)
Index(None, rentals.c.vehicle_id, rentals.c.started_at, rentals.c.rental_id)
Index(None, rentals.c.ended_at)

rental_readings = Table(
    "rental_readings",
    metadata,
    Column("rental_id", String(ID), ForeignKey(rentals.c.rental_id), primary_key=True),
    Column("phase", String(8), primary_key=True),
    Column("field", String(32), primary_key=True),
    Column("availability", String(32), nullable=False),
    Column("value", _json()),
    Column("recorded_at", UTCDateTime()),
    Column("fetched_at", UTCDateTime()),
    Column("reason", Text),
    Column("source", String(16), nullable=False),
    Column("taken_at", UTCDateTime(), nullable=False),
)

rental_final_readings = Table(
    "rental_final_readings",
    metadata,
    Column("rental_id", String(ID), ForeignKey(rentals.c.rental_id), primary_key=True),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("last_attempt_at", UTCDateTime()),
    Column("next_attempt_at", UTCDateTime()),
    Column("settled_at", UTCDateTime()),
    Column("reason", Text),
    Index(None, "state", "next_attempt_at"),  # the background job's due ones
)

commands = Table(
    "commands",
    metadata,
    Column("request_id", String(ID), primary_key=True),
    Column("vehicle_id", String(ID), ForeignKey(vehicles.c.id), nullable=False),
    Column("action", String(16), nullable=False),
    Column("state", String(32), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("completed_at", UTCDateTime()),
    Column("error", _json()),
    # What a SET_CHARGE_LIMIT asked for (percent); NULL for every other command.
    Column("charge_limit_percent", Integer),
    Index(None, "vehicle_id", "created_at"),
    Index(None, "state", "created_at"),  # open outcomes, for the reconciler
)

oauth_states = Table(
    "oauth_states",
    metadata,
    # The hex SHA-256 of the state: a leaked table does not reveal usable states.
    Column("state_hash", String(64), primary_key=True),
    Column("vehicle_id", String(ID), ForeignKey(vehicles.c.id), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

status_transitions = Table(
    "status_transitions",
    metadata,
    # An identity (SERIAL-like on PostgreSQL, the rowid on SQLite): watchers resume after it.
    Column("id", Integer, Identity(), primary_key=True),
    Column("vehicle_id", String(ID), ForeignKey(vehicles.c.id), nullable=False),
    Column("from_status", String(32), nullable=False),
    Column("to_status", String(32), nullable=False),
    Column("reason", Text),
    Column("at", UTCDateTime(), nullable=False),
    Index(None, "vehicle_id", "id"),
)

request_budget = Table(
    "request_budget",
    metadata,
    Column("vehicle_id", String(ID), ForeignKey(vehicles.c.id), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("billed", Integer, nullable=False),
    # When the month's count passed the warning share of the allowance (reported once).
    Column("warned_at", UTCDateTime()),
)

scheduler_leases = Table(
    "scheduler_leases",
    metadata,
    Column("name", String(ID), primary_key=True),
    Column("holder", String(ID), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
)

webhook_events = Table(
    "webhook_events",
    metadata,
    Column("event_id", String(ID), primary_key=True),
    Column("event_type", String(128), nullable=False),
    # No foreign key: an event about a vehicle we do not know is still kept.
    Column("smartcar_vehicle_id", String(ID)),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("payload", _json(), nullable=False),
    Column("applied_at", UTCDateTime()),
    Column("error", Text),
    # Set instead of applied_at when the event could not be applied; `error` says why.
    Column("failed_at", UTCDateTime()),
    Index(None, "applied_at", "received_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, Identity(), primary_key=True),
    Column("at", UTCDateTime(), nullable=False),
    Column("caller", String(ID), nullable=False),
    Column("method", String(64), nullable=False),
    # No foreign key: the trail keeps actions on ids that never existed or were removed.
    Column("vehicle_id", String(ID), nullable=False),
    Column("request_id", String(ID), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("duration_ms", Float, nullable=False),
    Column("reason", String(64)),
    Index(None, "vehicle_id", "id"),
    Index(None, "caller", "id"),
)

EVENT_ID = BigInteger().with_variant(Integer(), "sqlite")
"""Vehicle event ids: 64-bit on PostgreSQL; SQLite's INTEGER is 64-bit and its rowid."""

vehicle_events = Table(
    "vehicle_events",
    metadata,
    # An identity (on SQLite an AUTOINCREMENT rowid: never handed out twice, even once
    # retention has emptied the table): streams resume after it.
    Column("id", EVENT_ID, Identity(), primary_key=True),
    # No foreign key: like the audit trail, the history is kept as it was written.
    Column("vehicle_id", String(ID), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("at", UTCDateTime(), nullable=False),
    Column("rental_id", String(ID)),
    Column("description", Text, nullable=False),
    Column("detail", _json(), nullable=False),
    sqlite_autoincrement=True,
)

vehicle_event_latches = Table(
    "vehicle_event_latches",
    metadata,
    Column("vehicle_id", String(ID), primary_key=True),
    Column("kind", String(32), primary_key=True),
    Column("latched_at", UTCDateTime(), nullable=False),
)

vehicle_event_horizon = Table(
    "vehicle_event_horizon",
    metadata,
    Column("name", String(64), primary_key=True),
    # Every event with an id up to this one was deleted by retention.
    Column("pruned_through", EVENT_ID, nullable=False),
    Column("pruned_at", UTCDateTime(), nullable=False),
)
