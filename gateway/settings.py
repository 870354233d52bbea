"""Settings, read once from the environment (`Settings.from_env(os.environ)`).

With nothing set, the gateway runs self-contained: gRPC on 127.0.0.1:50051, an embedded
Smartcar simulator as upstream, SQLite and a development encryption key under ./var.
Setting SMARTCAR_API_ORIGIN (the official SDK's variable) points it at another Smartcar,
real or simulated; SMARTCAR_CLIENT_ID / _SECRET / _REDIRECT_URI and the other
SMARTCAR_*_ORIGIN variables mean what they mean to the SDK. API V3's servers are
SMARTCAR_VEHICLE_API_V3_ORIGIN (the SDK's name), SMARTCAR_IAM_ORIGIN and
SMARTCAR_MANAGEMENT_API_V3_ORIGIN, Smartcar's production servers when unset. The gateway's
own knobs are VG_*; each is listed in `ENV_VARIABLES` with its default.

Tracing (OpenTelemetry, docs/tracing.md) takes the standard OTEL_* variables, and is OFF
unless OTEL_TRACES_EXPORTER names an exporter (`otlp`, `console`); OTEL_SDK_DISABLED=true
turns it off whatever else is set. That differs from the OpenTelemetry SDK's own default
(`otlp`, on): a gateway that nobody pointed at a collector exports nothing and pays
nothing. The other OTEL_* variables in `ENV_VARIABLES` are read only when it is on.

Client secrets rotate without a restart: Smartcar lets an application hold up to three at
once, so SMARTCAR_CLIENT_SECRET may be joined by VG_SMARTCAR_CLIENT_SECRETS (more secrets,
comma-separated, or VG_SMARTCAR_CLIENT_SECRETS_FILE: a file of them, by commas or lines).
The application token is asked for with each in turn until Smartcar accepts one: add the
new secret, roll the replicas, delete the old one at Smartcar, drop it here at leisure.

Every value is checked here, once, so that bad configuration ends the process with one
line naming the variable (`SettingsError`), never with a traceback. Values that may hold
secrets (keys, database and Redis URLs) are never echoed in those lines.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from gateway.core.assembly import Policies
from gateway.core.audit import AuditRetentionPolicy
from gateway.core.budget import BudgetPolicy
from gateway.core.connections import ConnectPolicy
from gateway.core.event_retention import EventRetentionPolicy
from gateway.core.model import SmartcarApi, TelemetryField
from gateway.core.permissions import DEFAULT_REQUIRED_AT_CONNECT, REQUESTED_PERMISSIONS
from gateway.core.ratelimit import BucketSpec, RateLimits
from gateway.core.read_spacing import ReadSpacing
from gateway.core.reading_events import LowLevelPolicy
from gateway.core.rental_readings import RentalReadingPolicy
from gateway.core.rotation import RotationPolicy
from gateway.core.scheduler import PollPlan, SchedulerPolicy
from gateway.core.secret import Secret
from gateway.core.telemetry import TelemetryPolicy
from gateway.core.validation import MAX_MONTHLY_ALLOWANCE
from gateway.core.watch import WatchPolicy
from storage.crypto import KeyConfigError, Keyring

ENV_VARIABLES: Mapping[str, str] = {
    "VG_LISTEN": "127.0.0.1:50051 — gRPC listen address (port 0: pick one, logged)",
    "VG_VAR_DIR": "./var — where SQLite, the development key and the embedded simulator's "
    "state (simulator.json) live",
    "VG_DATABASE_URL": "sqlite+aiosqlite:///<VG_VAR_DIR>/gateway.db",
    "VG_TOKEN_KEYS": "unset: a development key under VG_VAR_DIR; else 'id:base64key,…' "
    "(first one encrypts)",
    "VG_TOKEN_KEYS_FILE": "unset — the same from a file (a mounted secret), trimmed",
    "VG_DATABASE_URL_FILE": "unset — VG_DATABASE_URL from a file (the URL carries a password)",
    "VG_REDIS_URL_FILE": "unset — VG_REDIS_URL from a file (the URL may carry a password)",
    "VG_SMARTCAR_MODE": "simulated with the embedded simulator, else live",
    "VG_SMARTCAR_API": "v3 — Smartcar API for connections: v3 (one application token and "
    "sc-user-id) or v2 (deprecated: a token pair per owner)",
    "VG_CACHE_VEHICLES": "100000 — vehicles whose readings the in-memory cache holds (least "
    "recently used dropped past it, reloaded from the database on their next use)",
    "VG_V3_READ_BILLING": "request — what one API V3 read counts against a car's monthly "
    "allowance: request (one per /signals call, as Smartcar is observed to bill) or signal "
    "(one per signal read: the upper bound if a plan bills per signal)",
    "VG_REQUIRED_PERMISSIONS": "read_vehicle_info,read_vin,read_location,read_odometer,"
    "read_security,control_security — permissions Connect URLs mark with Smartcar's "
    "required: prefix (the owner cannot leave them out); comma-separated, among those asked "
    "for; 'none' marks none",
    "VG_SMARTCAR_CLIENT_SECRETS": "unset — more client secrets, comma-separated, tried after "
    "SMARTCAR_CLIENT_SECRET until Smartcar accepts one (at most 3 in all: rotation without "
    "restart)",
    "VG_SMARTCAR_CLIENT_SECRETS_FILE": "unset — the same from a file (commas or one per line)",
    "VG_SIMULATOR_PORT": "0 — port of the embedded simulator (0: pick one, logged)",
    "VG_SIMULATOR_COMMAND_LATENCY_S": "2.0 — how long the embedded simulator's commands take",
    "VG_READ_TIMEOUT_S": "15 — upper bound of a Smartcar read (the caller's deadline may cut it)",
    "VG_COMMAND_TIMEOUT_S": "60 — upper bound of a Smartcar command",
    "VG_DEFAULT_MAX_AGE_S": "300 — GetTelemetry's max_age when the caller sets none",
    "VG_MONTHLY_REQUEST_ALLOWANCE": "500 — billed Smartcar requests per car and calendar month "
    "(UTC), as the plan allows; a car may have its own (SetRequestAllowance)",
    "VG_REQUEST_RESERVE": "10% — the part of each car's allowance kept for commands and rental "
    "readings, which interactive reads and polls never spend: a percentage (0-50 %, at least "
    "20 requests) or a number of requests (at most half the allowance)",
    "VG_REQUEST_PACING": "on — interactive reads and polls may spend each car's allowance "
    "(less the reserve) only day by day: by the end of day d of a month of D days, d/D of "
    "it; off: all of it from the first day",
    "VG_READ_SPACING": "on — with pacing on, interactive reads get each car's share released "
    "evenly through the month (a fresh read about every 1.6 h at 500 a month, after a burst "
    "of 4) instead of a day at a time; between releases they are answered from what the "
    "gateway holds, marked REQUEST_BUDGET_RESERVED; off: the day's share all at once",
    "VG_VEHICLE_READS": "4/15 — per-vehicle read bucket: capacity/seconds per token",
    "VG_VEHICLE_COMMANDS": "4/15 — per-vehicle command bucket: capacity/seconds per token",
    "VG_APP_REQUESTS": "120/30 — app-wide Smartcar bucket (Smartcar's default: 120, 2/min)",
    "VG_REFRESH_MARGIN_S": "300 — refresh access tokens this long before they expire",
    "VG_REFRESH_CLAIM_TTL_S": "30 — how long a replica's claim on a refresh holds; a replica "
    "that dies mid-refresh delays the others this long at most",
    "VG_SHUTDOWN_GRACE_S": "10 — how long in-flight calls may finish after SIGTERM",
    "VG_RENEWAL_INTERVAL_S": "3600 — how often one replica renews refresh tokens due (0: never)",
    "VG_SCHEDULER_INTERVAL_S": "60 — how often one replica polls due telemetry, settles "
    "unknown command outcomes and asks again for rentals' final readings (0: off)",
    "VG_SCHEDULER_CONCURRENCY": "4 — polls in flight at once",
    "VG_RENTAL_READING_MAX_AGE_S": "60 — StartRental and EndRental reuse a reading fetched at "
    "most this long before; an older one is asked of Smartcar again",
    "VG_RENTAL_READING_WAIT_S": "5 — how long StartRental and EndRental wait for the car "
    "before answering with what is held (0: not at all); the reading is stored when it comes",
    "VG_RENTAL_FINAL_READING_GIVE_UP_S": "86400 — how long after a rental's end one replica "
    "keeps trying (at VG_SCHEDULER_INTERVAL_S) for a reading recorded after the end",
    "VG_POLL_PLAN_RENTAL": "location=900,lock_status=900,fuel=3600,… — seconds per field "
    "during a rental (fields left out are not polled; unset: the built-in plan)",
    "VG_POLL_PLAN_IDLE": "location=43200,lock_status=43200,odometer=86400,… — the same when idle",
    "VG_WEBHOOK_LISTEN": "unset: off — HOST:PORT of the Smartcar webhook receiver (port 0: pick)",
    "VG_SMARTCAR_WEBHOOK_ID": "unset: none — the id of the application's webhook (made in "
    "Smartcar's dashboard) each new API V3 connection is subscribed to",
    "VG_REDIS_URL": "unset: limits and cache per replica — redis://host:port/db shares rate "
    "limits, cooldowns, the telemetry cache and fetch claims between replicas",
    "VG_REDIS_FAILURE": "open — when Redis is unreachable: open (this replica's own limits) "
    "or closed (refuse upstream calls)",
    "VG_METRICS_LISTEN": "unset: off — HOST:PORT of the Prometheus endpoint GET /metrics "
    "(port 0: pick, logged)",
    "VG_HEALTH_LISTEN": "unset: off — loopback HOST:PORT of a plaintext port serving only "
    "grpc.health.v1.Health, for probes on the same host (the container image sets "
    "127.0.0.1:50052; port 0: pick, logged)",
    "VG_HEALTH_EXPOSE": "off — on: VG_HEALTH_LISTEN may bind any address, for probes that "
    "come over the network (Kubernetes' grpc probes reach the pod's IP); it still answers "
    "only grpc.health.v1.Health, and only the serving statuses",
    "VG_ACCESS_POLICY": "unset: development mode (loopback only, every caller allowed) — "
    "path of the TOML access policy (callers, roles)",
    "VG_TLS_CERT": "unset: plaintext — PEM certificate chain of the gRPC port",
    "VG_TLS_KEY": "PEM private key of VG_TLS_CERT",
    "VG_TLS_CLIENT_CA": "unset: no client certificates — PEM CA bundle; set: every caller "
    "must present a certificate it signed (mTLS)",
    "VG_WATCH_STREAMS_PER_CALLER": "20 — open WatchVehicles streams one caller may hold, "
    "and as many WatchVehicleEvents streams (one more: RESOURCE_EXHAUSTED)",
    "VG_WATCH_POLL_INTERVAL_S": "0.5 — how often a replica with open WatchVehicles or "
    "WatchVehicleEvents streams looks for new rows once caught up",
    "VG_LOW_FUEL_PERCENT": "15 — a stored fuel level below this makes a LOW_FUEL event (once "
    "per crossing; again after it rose 5 points above)",
    "VG_LOW_CHARGE_PERCENT": "20 — the same for a traction battery (LOW_CHARGE)",
    "VG_EVENT_RETENTION_DAYS": "7 — vehicle events older than this are deleted (0: kept "
    "forever); a stream resuming before them is OUT_OF_RANGE",
    "VG_EVENT_RETENTION_INTERVAL_S": "3600 — how often one replica (holding a lease) deletes "
    "expired vehicle events, in batches (0: never)",
    "VG_AUDIT_RETENTION_DAYS": "400 — audit entries older than this are deleted (0: kept forever)",
    "VG_AUDIT_RETENTION_INTERVAL_S": "3600 — how often one replica (holding a lease) deletes "
    "expired audit entries, in batches (0: never)",
    "VG_LOG_LEVEL": "INFO",
    "VG_ACCESS_LOG": "all — the per-call log line (INFO): all calls, errors (calls not ending "
    "OK) or off; metrics and the audit are kept either way",
    "OTEL_TRACES_EXPORTER": "none: tracing off — otlp and/or console (comma-separated) turn "
    "tracing on (docs/tracing.md)",
    "OTEL_SDK_DISABLED": "false — true turns tracing off whatever else is set",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317 — the collector's OTLP/gRPC "
    "endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT wins when set; headers, certificate, "
    "compression and timeout: the exporter's own OTEL_EXPORTER_OTLP_* variables)",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc — the only OTLP protocol shipped (also "
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL)",
    "OTEL_SERVICE_NAME": "vehicle-gateway — the service.name of every span",
    "OTEL_RESOURCE_ATTRIBUTES": "unset — more resource attributes, key=value,… (values "
    "percent-encoded)",
    "OTEL_TRACES_SAMPLER": "parentbased_always_on — always_on, always_off, traceidratio, or "
    "parentbased_ of each: a caller's sampling decision is followed",
    "OTEL_TRACES_SAMPLER_ARG": "1.0 — the ratio of the traceidratio samplers, 0 to 1",
    "OTEL_PROPAGATORS": "tracecontext,baggage — how a caller's trace context is read from the "
    "gRPC metadata (none: not at all; nothing is ever propagated to Smartcar)",
}


class SettingsError(ValueError):
    """A setting has an invalid value; the message names the variable."""


TRACES_EXPORTERS = ("otlp", "console")
TRACES_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
PROPAGATORS = ("tracecontext", "baggage", "none")


@dataclass(frozen=True, slots=True, kw_only=True)
class TracingSettings:
    """What the OTEL_* variables chose; `exporters` empty: tracing is off."""

    exporters: tuple[str, ...] = ()
    otlp_endpoint: str | None = None
    """OTLP's endpoint when set (None: the exporter's default, or none at all)."""
    service_name: str = "vehicle-gateway"
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    sampler: str = "parentbased_always_on"
    sampler_arg: float = 1.0
    propagators: tuple[str, ...] = ("tracecontext", "baggage")

    @property
    def enabled(self) -> bool:
        """Tell whether tracing is on (an exporter is named, and the SDK not disabled)."""
        return bool(self.exporters)


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
SMARTCAR_APIS = ("v3", "v2")
V3_READ_BILLING = ("request", "signal")
ACCESS_LOG_MODES = ("all", "errors", "off")
MAX_CLIENT_SECRETS = 3
"""Smartcar: "You can generate up to 3 client secrets for the same application"."""
DATABASE_BACKENDS = ("sqlite", "postgresql")
REDIS_SCHEMES = ("redis", "rediss", "unix")
MAX_RESERVE_PERCENT = 50
"""The most of each car's allowance VG_REQUEST_RESERVE may keep from interactive reads."""


def listen_address(name: str, raw: str, *, host_required: bool = True) -> str:
    """Return `raw` if it is HOST:PORT with a port 0-65535, else raise SettingsError
    naming `name` (a variable, or a command-line flag)."""
    host, separator, port = raw.rpartition(":")
    if (
        not separator
        or (host_required and not host)
        or not port.isdigit()
        or not 0 <= int(port) <= 65535
    ):
        raise SettingsError(f"{name} must be HOST:PORT with a port 0-65535, got {raw!r}")
    return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the process needs, validated."""

    listen: str = "127.0.0.1:50051"
    var_dir: Path = Path("var")
    database_url: str | None = field(default=None, repr=False)
    """The database URL as given (it may carry a password: never printed)."""
    token_keys: str | None = field(default=None, repr=False)
    smartcar: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The SMARTCAR_* variables as given (client secret included: never printed)."""
    smartcar_mode: str | None = None
    smartcar_api: str = "v3"
    """`v3` (application token and sc-user-id) or `v2` (deprecated per-owner tokens)."""
    v3_read_billing: str = "request"
    """What one V3 read counts against the allowance: `request` (1) or `signal` (1 each)."""
    additional_client_secrets: tuple[Secret, ...] = field(default=(), repr=False)
    """Client secrets tried after SMARTCAR_CLIENT_SECRET (VG_SMARTCAR_CLIENT_SECRETS)."""
    simulator_port: int = 0
    simulator_command_latency_s: float = 2.0
    read_timeout_s: float = 15.0
    command_timeout_s: float = 60.0
    policies: Policies = field(default_factory=Policies)
    shutdown_grace_s: float = 10.0
    renewal_interval_s: float = 3600.0
    scheduler_interval_s: float = 60.0
    audit_retention_interval_s: float = 3600.0
    event_retention_interval_s: float = 3600.0
    webhook_listen: str | None = None
    smartcar_webhook_id: str | None = None
    metrics_listen: str | None = None
    health_listen: str | None = None
    health_expose: bool = False
    """True: the health port may bind a non-loopback address (VG_HEALTH_EXPOSE=on)."""
    redis_url: str | None = field(default=None, repr=False)
    redis_failure: str = "open"
    access_policy: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    log_level: str = "INFO"
    access_log: str = "all"
    tracing: TracingSettings = field(default_factory=TracingSettings)
    """OpenTelemetry tracing (off unless OTEL_TRACES_EXPORTER names an exporter)."""
    """Which calls get their log line: `all`, `errors` (not OK) or `off`."""

    @property
    def embedded_simulator(self) -> bool:
        """True when no Smartcar origin is configured: the gateway brings its own."""
        return not self.smartcar.get("SMARTCAR_API_ORIGIN")

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under the var directory."""
        return self.database_url or f"sqlite+aiosqlite:///{self.var_dir / 'gateway.db'}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """Read and validate the settings from an environment mapping."""
        env = _with_secret_files(env)
        read = _Reader(env)
        api = read.choice("VG_SMARTCAR_API", SMARTCAR_APIS) or "v3"
        policies = Policies(
            connect=ConnectPolicy(
                api=SmartcarApi(api), required_permissions=read.required_permissions()
            ),
            rate_limits=RateLimits(
                vehicle_reads=read.bucket("VG_VEHICLE_READS", "4/15"),
                vehicle_commands=read.bucket("VG_VEHICLE_COMMANDS", "4/15"),
                application=read.bucket("VG_APP_REQUESTS", "120/30"),
            ),
            rotation=RotationPolicy(
                margin=timedelta(seconds=read.number("VG_REFRESH_MARGIN_S", 300.0)),
                claim_ttl=timedelta(
                    seconds=read.number("VG_REFRESH_CLAIM_TTL_S", 30.0, positive=True)
                ),
            ),
            telemetry=TelemetryPolicy(
                default_max_age=timedelta(seconds=read.number("VG_DEFAULT_MAX_AGE_S", 300.0)),
                cache_vehicles=int(
                    read.number("VG_CACHE_VEHICLES", 100_000, integer=True, positive=True)
                ),
                spacing=ReadSpacing(
                    enabled=(read.choice("VG_READ_SPACING", ("on", "off")) or "on") == "on"
                ),
            ),
            budget=dataclasses.replace(
                read.budget(),
                paced=(read.choice("VG_REQUEST_PACING", ("on", "off")) or "on") == "on",
            ),
            scheduler=SchedulerPolicy(
                plan=read.plan(),
                concurrency=int(
                    read.number("VG_SCHEDULER_CONCURRENCY", 4, integer=True, positive=True)
                ),
            ),
            watch=WatchPolicy(
                streams_per_caller=int(
                    read.number("VG_WATCH_STREAMS_PER_CALLER", 20, integer=True, positive=True)
                ),
                poll_interval_s=read.number("VG_WATCH_POLL_INTERVAL_S", 0.5, positive=True),
            ),
            audit=AuditRetentionPolicy(retention=read.retention("VG_AUDIT_RETENTION_DAYS", 400)),
            rentals=_rental_readings(read),
            low_levels=LowLevelPolicy(
                low_fuel_percent=read.percent("VG_LOW_FUEL_PERCENT", 15.0),
                low_charge_percent=read.percent("VG_LOW_CHARGE_PERCENT", 20.0),
            ),
            event_retention=EventRetentionPolicy(
                retention=read.retention("VG_EVENT_RETENTION_DAYS", 7)
            ),
        )
        _check_secrets_and_urls(env)
        smartcar = _smartcar(env)
        if bool(env.get("VG_TLS_CERT")) != bool(env.get("VG_TLS_KEY")):
            raise SettingsError("VG_TLS_CERT and VG_TLS_KEY must be set together")
        if env.get("VG_TLS_CLIENT_CA") and not env.get("VG_TLS_CERT"):
            raise SettingsError("VG_TLS_CLIENT_CA needs VG_TLS_CERT and VG_TLS_KEY (mTLS is TLS)")
        return cls(
            listen=listen_address("VG_LISTEN", env.get("VG_LISTEN") or "127.0.0.1:50051"),
            var_dir=Path(env.get("VG_VAR_DIR") or "var"),
            database_url=env.get("VG_DATABASE_URL") or None,
            token_keys=env.get("VG_TOKEN_KEYS") or None,
            smartcar=smartcar,
            smartcar_mode=read.choice("VG_SMARTCAR_MODE", ("live", "test", "simulated")),
            smartcar_api=api,
            v3_read_billing=read.choice("VG_V3_READ_BILLING", V3_READ_BILLING) or "request",
            additional_client_secrets=_additional_client_secrets(
                env, primary=smartcar.get("SMARTCAR_CLIENT_SECRET")
            ),
            simulator_port=read.port("VG_SIMULATOR_PORT"),
            simulator_command_latency_s=read.number("VG_SIMULATOR_COMMAND_LATENCY_S", 2.0),
            read_timeout_s=read.number("VG_READ_TIMEOUT_S", 15.0, positive=True),
            command_timeout_s=read.number("VG_COMMAND_TIMEOUT_S", 60.0, positive=True),
            policies=policies,
            shutdown_grace_s=read.number("VG_SHUTDOWN_GRACE_S", 10.0),
            renewal_interval_s=read.number("VG_RENEWAL_INTERVAL_S", 3600.0),
            scheduler_interval_s=read.number("VG_SCHEDULER_INTERVAL_S", 60.0),
            audit_retention_interval_s=read.number("VG_AUDIT_RETENTION_INTERVAL_S", 3600.0),
            event_retention_interval_s=read.number("VG_EVENT_RETENTION_INTERVAL_S", 3600.0),
            webhook_listen=read.address("VG_WEBHOOK_LISTEN"),
            smartcar_webhook_id=_webhook_id(env.get("VG_SMARTCAR_WEBHOOK_ID")),
            metrics_listen=read.address("VG_METRICS_LISTEN"),
            health_listen=read.address("VG_HEALTH_LISTEN"),
            health_expose=read.choice("VG_HEALTH_EXPOSE", ("on", "off")) == "on",
            redis_url=env.get("VG_REDIS_URL") or None,
            redis_failure=read.choice("VG_REDIS_FAILURE", ("open", "closed")) or "open",
            access_policy=read.path("VG_ACCESS_POLICY"),
            tls_cert=read.path("VG_TLS_CERT"),
            tls_key=read.path("VG_TLS_KEY"),
            tls_client_ca=read.path("VG_TLS_CLIENT_CA"),
            log_level=read.choice("VG_LOG_LEVEL", LOG_LEVELS, upper=True) or "INFO",
            access_log=read.choice("VG_ACCESS_LOG", ACCESS_LOG_MODES) or "all",
            tracing=_tracing(env, read),
        )


def _tracing(env: Mapping[str, str], read: _Reader) -> TracingSettings:
    """Read the OTEL_* variables: off unless OTEL_TRACES_EXPORTER names an exporter and
    OTEL_SDK_DISABLED is not true; each value checked either way."""
    sdk_disabled = (env.get("OTEL_SDK_DISABLED") or "false").strip().lower()
    if sdk_disabled not in ("true", "false"):
        raise SettingsError(f"OTEL_SDK_DISABLED must be true or false, got {sdk_disabled!r}")
    disabled = sdk_disabled == "true"
    exporters = _names(
        "OTEL_TRACES_EXPORTER",
        env.get("OTEL_TRACES_EXPORTER") or "none",
        (*TRACES_EXPORTERS, "none"),
    )
    for name in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
        read.choice(name, ("grpc",))
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if endpoint:
        _check_endpoint(endpoint)
    propagators = _names(
        "OTEL_PROPAGATORS", env.get("OTEL_PROPAGATORS") or "tracecontext,baggage", PROPAGATORS
    )
    sampler_arg = read.number("OTEL_TRACES_SAMPLER_ARG", 1.0)
    if sampler_arg > 1:
        raise SettingsError(
            f"OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, got {sampler_arg:g}"
        )
    return TracingSettings(
        exporters=() if disabled else tuple(e for e in exporters if e != "none"),
        otlp_endpoint=endpoint or None,
        service_name=env.get("OTEL_SERVICE_NAME") or "vehicle-gateway",
        resource_attributes=_resource_attributes(env.get("OTEL_RESOURCE_ATTRIBUTES") or ""),
        sampler=read.choice("OTEL_TRACES_SAMPLER", TRACES_SAMPLERS) or "parentbased_always_on",
        sampler_arg=sampler_arg,
        propagators=tuple(p for p in propagators if p != "none"),
    )


def _names(variable: str, raw: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """Read a comma-separated list of names among `allowed`; `none` stands alone."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in raw.split(",") if part.strip()))
    unknown = [n for n in names if n not in allowed]
    if unknown or not names or ("none" in names and len(names) > 1):
        raise SettingsError(
            f"{variable} must be 'none' or a comma-separated list of "
            f"{', '.join(a for a in allowed if a != 'none')}, got {raw!r}"
        )
    return names


def _check_endpoint(endpoint: str) -> None:
    """Refuse an OTLP endpoint that is not an http(s) URL with a host (never echoed: it
    may carry credentials)."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            "OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) must be an "
            "http:// or https:// URL with a host"
        )


def _resource_attributes(raw: str) -> dict[str, str]:
    """Read OTEL_RESOURCE_ATTRIBUTES: key=value pairs, comma-separated, values
    percent-encoded (the OpenTelemetry specification's format)."""
    attributes = {}
    for pair in raw.split(","):
        if not pair.strip():
            continue
        key, separator, value = pair.partition("=")
        if not separator or not key.strip():
            raise SettingsError(
                "OTEL_RESOURCE_ATTRIBUTES must be key=value pairs separated by commas"
            )
        attributes[key.strip()] = unquote(value.strip())
    return attributes


def _rental_readings(read: _Reader) -> RentalReadingPolicy:
    """Read how fresh rental readings must be, how long a call waits for one, and how long
    the final reading is chased."""
    default = RentalReadingPolicy()
    give_up = read.number(
        "VG_RENTAL_FINAL_READING_GIVE_UP_S", default.give_up_after.total_seconds(), positive=True
    )
    return RentalReadingPolicy(
        max_age=timedelta(
            seconds=read.number("VG_RENTAL_READING_MAX_AGE_S", default.max_age.total_seconds())
        ),
        wait=timedelta(
            seconds=read.number("VG_RENTAL_READING_WAIT_S", default.wait.total_seconds())
        ),
        give_up_after=timedelta(seconds=give_up),
    )


def _check_secrets_and_urls(env: Mapping[str, str]) -> None:
    """Check the values that may hold secrets (never echoing them) and Smartcar's origins."""
    if keys := env.get("VG_TOKEN_KEYS"):
        try:
            Keyring.from_config(keys)
        except KeyConfigError as error:  # its message never shows key material
            raise SettingsError(f"VG_TOKEN_KEYS: {error}") from None
    if database_url := env.get("VG_DATABASE_URL"):
        try:
            backend = make_url(database_url).get_backend_name()
        except ArgumentError:
            raise SettingsError("VG_DATABASE_URL is not a database URL") from None
        if backend not in DATABASE_BACKENDS:
            raise SettingsError(
                f"VG_DATABASE_URL must name one of {', '.join(DATABASE_BACKENDS)}, not {backend!r}"
            )
    if (redis_url := env.get("VG_REDIS_URL")) and urlsplit(redis_url).scheme not in REDIS_SCHEMES:
        raise SettingsError(f"VG_REDIS_URL must start with one of {', '.join(REDIS_SCHEMES)}://")
    for name, value in sorted(env.items()):
        if name.startswith("SMARTCAR_") and name.endswith("_ORIGIN") and value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise SettingsError(f"{name} must be an absolute http(s) URL, got {value!r}")
            if parts.query or parts.fragment:
                raise SettingsError(f"{name} must not carry a query or fragment, got {value!r}")


SECRET_FILES = (
    "SMARTCAR_CLIENT_SECRET",
    "SMARTCAR_MANAGEMENT_TOKEN",
    "VG_TOKEN_KEYS",
    "VG_DATABASE_URL",
    "VG_REDIS_URL",
)
"""Secrets that may come from a file instead (`<NAME>_FILE`, e.g. a mounted Kubernetes
Secret): the value is the file's content, trimmed. The database and Redis URLs are here
because they carry passwords. (VG_SMARTCAR_CLIENT_SECRETS_FILE and VG_ACCESS_POLICY, a
path, are files already.)"""


def _with_secret_files(env: Mapping[str, str]) -> Mapping[str, str]:
    """Return `env` with each secret given as `<NAME>_FILE` read into `<NAME>` (and the
    `_FILE` variable dropped); setting both, or a file that is unreadable or empty, is a
    SettingsError naming the variable and the path, never the content."""
    if not any(env.get(f"{name}_FILE") for name in SECRET_FILES):
        return env
    resolved = dict(env)
    for name in SECRET_FILES:
        path = resolved.pop(f"{name}_FILE", None)
        if not path:
            continue
        if env.get(name):
            raise SettingsError(f"set {name} or {name}_FILE, not both")
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
        if not value:
            raise SettingsError(f"{name}_FILE: {path} is empty")
        resolved[name] = value
    return resolved


def _smartcar(env: Mapping[str, str]) -> dict[str, str]:
    """Return the SMARTCAR_* variables set (secrets given as `<NAME>_FILE` already read in
    and their `_FILE` variables dropped, by `_with_secret_files`)."""
    return {k: v for k, v in env.items() if k.startswith("SMARTCAR_") and v}


def _webhook_id(value: str | None) -> str | None:
    """Return a Smartcar webhook id (1-128 letters, digits, '-' or '_'), or None if unset."""
    if not value:
        return None
    if len(value) > 128 or not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        raise SettingsError(
            "VG_SMARTCAR_WEBHOOK_ID must be a webhook id: 1-128 letters, digits, '-' or '_'"
        )
    return value


def _additional_client_secrets(
    env: Mapping[str, str], *, primary: str | None
) -> tuple[Secret, ...]:
    """Read VG_SMARTCAR_CLIENT_SECRETS (or its _FILE), never echoing a secret: no empty
    entry, no secret twice (nor `primary`, SMARTCAR_CLIENT_SECRET, again), at most three
    secrets in all."""
    name = "VG_SMARTCAR_CLIENT_SECRETS"
    raw = env.get(name) or ""
    if path := env.get(f"{name}_FILE"):
        if raw:
            raise SettingsError(f"set {name} or {name}_FILE, not both")
        try:
            raw = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
        if not raw.strip():
            raise SettingsError(f"{name}_FILE: {path} is empty")
        name = f"{name}_FILE"
    if not raw:
        return ()
    entries = [entry.strip() for entry in re.split(r"[,\n]", raw.strip())]
    if not all(entries):
        raise SettingsError(f"{name} holds an empty entry (two commas, or a blank line)")
    if len(set(entries)) != len(entries) or primary in entries:
        raise SettingsError(f"{name} repeats a client secret (or SMARTCAR_CLIENT_SECRET)")
    if len(entries) + (primary is not None) > MAX_CLIENT_SECRETS:
        raise SettingsError(
            f"{name}: Smartcar holds at most {MAX_CLIENT_SECRETS} client secrets per "
            "application, SMARTCAR_CLIENT_SECRET included"
        )
    return tuple(Secret(entry) for entry in entries)


class _Reader:
    """Parses one environment variable at a time, naming it in every error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def number(
        self, name: str, default: float, *, integer: bool = False, positive: bool = False
    ) -> float:
        raw = self._env.get(name)
        if not raw:
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            kind = "an integer" if integer else "a number"
            raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise SettingsError(
                f"{name} must be a {'positive' if positive else 'non-negative'} number"
            )
        return value

    def percent(self, name: str, default: float) -> float:
        """Read a percent, 0 to 100."""
        value = self.number(name, default)
        if value > 100:
            raise SettingsError(f"{name} must be a percent from 0 to 100, got {value:g}")
        return value

    def retention(self, name: str, default_days: int) -> timedelta | None:
        """Read a whole number of days; 0 means forever (None)."""
        days = int(self.number(name, default_days, integer=True))
        if days > 36_500:
            raise SettingsError(f"{name} must be at most 36500 days (0 keeps entries forever)")
        return timedelta(days=days) if days else None

    def port(self, name: str) -> int:
        port = int(self.number(name, 0, integer=True))
        if port > 65535:
            raise SettingsError(f"{name} must be a port 0-65535, got {port}")
        return port

    def address(self, name: str) -> str | None:
        """Read an optional HOST:PORT (an empty host means loopback)."""
        raw = self._env.get(name)
        return listen_address(name, raw, host_required=False) if raw else None

    def path(self, name: str) -> Path | None:
        raw = self._env.get(name)
        return Path(raw) if raw else None

    def bucket(self, name: str, default: str) -> BucketSpec:
        raw = self._env.get(name) or default
        try:
            capacity_text, period_text = raw.split("/")
            capacity, period_s = int(capacity_text), float(period_text)
            return BucketSpec(capacity=capacity, refill_per_s=1 / period_s)
        except (ValueError, ZeroDivisionError):
            raise SettingsError(
                f"{name} must be 'capacity/seconds per token' like {default!r}, got {raw!r}"
            ) from None

    def required_permissions(self) -> frozenset[str]:
        """Read VG_REQUIRED_PERMISSIONS: permissions among those Connect asks for, by
        commas; `none` marks none; unset keeps the default."""
        name = "VG_REQUIRED_PERMISSIONS"
        raw = (self._env.get(name) or "").strip()
        if not raw:
            return DEFAULT_REQUIRED_AT_CONNECT
        if raw.lower() == "none":
            return frozenset()
        names = [item.strip() for item in raw.split(",")]
        if not all(names):
            raise SettingsError(f"{name} holds an empty entry (two commas in a row?)")
        unknown = sorted(set(names) - REQUESTED_PERMISSIONS)
        if unknown:
            raise SettingsError(
                f"{name}: {', '.join(unknown)} is not among the permissions Connect asks for "
                f"({', '.join(sorted(REQUESTED_PERMISSIONS))})"
            )
        return frozenset(names)

    def budget(self) -> BudgetPolicy:
        """Read the fleet's monthly allowance per car and the reserve kept of it."""
        name = "VG_MONTHLY_REQUEST_ALLOWANCE"
        allowance = int(self.number(name, 500, integer=True, positive=True))
        if allowance > MAX_MONTHLY_ALLOWANCE:
            raise SettingsError(
                f"{name} must be at most {MAX_MONTHLY_ALLOWANCE:,}, got {allowance}"
            )
        default = BudgetPolicy(monthly_allowance=allowance)
        raw = (self._env.get("VG_REQUEST_RESERVE") or "").strip()
        if not raw:
            return default
        percent = raw.endswith("%")
        number = raw.removesuffix("%").strip()
        if not number.isascii() or not number.isdigit():
            raise SettingsError(
                "VG_REQUEST_RESERVE must be a whole percentage of each car's allowance "
                f"(like '10%') or a number of requests (like '50'), got {raw!r}"
            )
        if percent:
            if int(number) > MAX_RESERVE_PERCENT:
                raise SettingsError(
                    f"VG_REQUEST_RESERVE must be at most {MAX_RESERVE_PERCENT}% (interactive "
                    f"reads keep at least half of each allowance), got {raw!r}"
                )
            return BudgetPolicy(monthly_allowance=allowance, reserve_percent=int(number))
        if int(number) > allowance // 2:
            raise SettingsError(
                f"VG_REQUEST_RESERVE must be at most half of {name} ({allowance // 2} of "
                f"{allowance}), got {raw!r}"
            )
        return BudgetPolicy(monthly_allowance=allowance, fixed_reserve=int(number))

    def plan(self) -> PollPlan:
        """Read the scheduler's plan: `field=seconds` pairs for rental and idle times."""
        default = PollPlan()
        return PollPlan(
            rental=self._intervals("VG_POLL_PLAN_RENTAL", default.rental),
            idle=self._intervals("VG_POLL_PLAN_IDLE", default.idle),
        )

    def _intervals(
        self, name: str, default: Mapping[TelemetryField, timedelta]
    ) -> Mapping[TelemetryField, timedelta]:
        raw = self._env.get(name)
        if not raw:
            return default
        intervals = {}
        for item in raw.split(","):
            field_name, _, seconds = item.strip().partition("=")
            try:
                telemetry_field = TelemetryField(field_name.strip())
                interval = timedelta(seconds=float(seconds))
            except ValueError:
                known = ", ".join(f.value for f in TelemetryField)
                raise SettingsError(
                    f"{name}: {item.strip()!r} is not field=seconds (fields: {known})"
                ) from None
            if interval <= timedelta(0):
                raise SettingsError(f"{name}: the interval of {field_name} must be positive")
            intervals[telemetry_field] = interval
        return intervals

    def choice(self, name: str, options: tuple[str, ...], *, upper: bool = False) -> str | None:
        raw = self._env.get(name)
        if not raw:
            return None
        if upper:
            raw = raw.upper()
        if raw not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, got {raw!r}")
        return raw
