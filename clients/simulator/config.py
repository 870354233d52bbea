"""The simulator's settings: one frozen value, plus the runtime updates `/sim/config` accepts.

Defaults follow Smartcar where Smartcar documents a number:

- access tokens live 2 h (`expires_in` is "always set to 7200"), refresh tokens 60 days,
  and a used refresh token stays usable for 1 minute ("invalidated 1 minute after use");
- the app-wide limit is "a bucket of 120 requests that refills at a rate of 2 requests per
  minute" (help/api-limits);
- the monthly allowance is 500 requests per vehicle ("you have been allocated 500 API calls
  per vehicle per month").

Smartcar does not publish its per-vehicle rate limit ("These limits can differ based on the
vehicle manufacturer"); the simulator's default is a burst of 10 requests, then one request
every 6 seconds, which is tight enough for a careless client to hit and loose enough for a
client with its own per-vehicle bucket to never see.

Commands take 2 seconds by default (real ones take seconds to tens of seconds); reads answer
at once. `SimulatorConfig.fast()` zeroes both latencies for tests.

API V3: application tokens live `app_token_ttl_s` (3600 s: "The access token is valid for 1
hour"). An application may hold up to three client secrets at once ("You can generate up to
3 client secrets for the same application"): `client_secret` plus `additional_client_secrets`
(at most two). A V3 command whose latency reaches `v3_command_sync_limit_s` answers 202 and
streams its outcome (Smartcar: commands resolving "in under about 175 seconds return a single
complete response"). `v3_signals_need_subscription` makes a vehicle's signals empty until a
verified webhook is subscribed to it, as live users report ("vehicles don't produce signal
data until they're subscribed").

Webhook deliveries follow Smartcar's delivery behaviour: a callback has 15 s to answer
(`webhook_timeout_s`), and a failed delivery is retried after 25, 50 and 100 s. Those waits
are real time multiplied by `webhook_retry_scale` (1.0: Smartcar's schedule; tests use
0.001, so the whole schedule takes 175 ms).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


def _is_number(value: object) -> bool:
    """Tell whether `value` is an int or float (bool excluded) and not NaN."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return not math.isnan(value)


class ConfigError(ValueError):
    """A setting has an invalid value; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, kw_only=True)
class BucketLimit:
    """A token bucket: `capacity` requests at once, refilled at `refill_per_s` per second."""

    capacity: int
    refill_per_s: float

    def __post_init__(self) -> None:
        """Reject buckets that could never admit a request."""
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, int):
            raise ConfigError("capacity", "must be an integer")
        if self.capacity < 1:
            raise ConfigError("capacity", "must be at least 1")
        if not _is_number(self.refill_per_s) or not self.refill_per_s > 0:
            raise ConfigError("refill_per_s", "must be a positive number")

    @classmethod
    def from_json(cls, value: object, *, field: str) -> BucketLimit | None:
        """Parse `{"capacity": int, "refill_per_s": float}` (or null: no limit)."""
        if value is None:
            return None
        if not isinstance(value, Mapping):
            raise ConfigError(field, "must be an object with capacity and refill_per_s, or null")
        unknown = set(value) - {"capacity", "refill_per_s"}
        if unknown:
            raise ConfigError(f"{field}.{sorted(unknown)[0]}", "unknown field")
        try:
            return cls(capacity=value.get("capacity"), refill_per_s=value.get("refill_per_s"))  # type: ignore[arg-type]
        except ConfigError as exc:
            raise ConfigError(f"{field}.{exc.field}", exc.message) from exc

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form accepted by `from_json`."""
        return {"capacity": self.capacity, "refill_per_s": self.refill_per_s}


DEFAULT_VEHICLE_RATE_LIMIT = BucketLimit(capacity=10, refill_per_s=1 / 6)
SMARTCAR_APP_RATE_LIMIT = BucketLimit(capacity=120, refill_per_s=2 / 60)


@dataclass(frozen=True, kw_only=True)
class SimulatorConfig:
    """Everything that shapes one simulator: its fleet, its credentials, its time and limits."""

    seed: int = 7
    vehicles: int = 50
    client_id: str | None = None
    # Secrets stay out of the repr (a config is logged or shown in a failing test).
    client_secret: str | None = field(default=None, repr=False)
    additional_client_secrets: tuple[str, ...] = field(default=(), repr=False)
    management_token: str | None = field(default="sim-management-token", repr=False)
    access_ttl_s: float = 7200.0
    refresh_ttl_s: float = 60 * 86400.0
    refresh_grace_s: float = 60.0
    code_ttl_s: float = 600.0
    read_latency_s: float = 0.0
    command_latency_s: float = 2.0
    hang_s: float = 30.0
    vehicle_rate_limit: BucketLimit | None = DEFAULT_VEHICLE_RATE_LIMIT
    app_rate_limit: BucketLimit | None = SMARTCAR_APP_RATE_LIMIT
    monthly_request_limit: int | None = 500
    webhook_timeout_s: float = 15.0
    webhook_retry_scale: float = 1.0
    app_token_ttl_s: float = 3600.0
    v3_command_sync_limit_s: float = 175.0
    v3_signals_need_subscription: bool = False
    # Simulated time starts at this Unix time (seconds) instead of the real time: tests name
    # their instant, so nothing they check depends on the day they run.
    start_at_s: float | None = None

    def __post_init__(self) -> None:
        """Reject values the simulator cannot honour."""
        if self.vehicles < 0:
            raise ConfigError("vehicles", "must not be negative")
        for name in _DURATIONS:
            value = getattr(self, name)
            if not _is_number(value) or value < 0 or math.isinf(value):
                raise ConfigError(name, "must be a finite number of seconds, not negative")
        scale = self.webhook_retry_scale
        if not _is_number(scale) or scale < 0 or math.isinf(scale):
            raise ConfigError("webhook_retry_scale", "must be a finite number, not negative")
        start = self.start_at_s
        if start is not None and (not _is_number(start) or not 0 <= start < 253402300800):
            raise ConfigError("start_at_s", "must be a Unix time in seconds before the year 10000")
        _check_secrets(self.client_secret, self.additional_client_secrets)
        if not isinstance(self.v3_signals_need_subscription, bool):
            raise ConfigError("v3_signals_need_subscription", "must be true or false")
        limit = self.monthly_request_limit
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
            raise ConfigError("monthly_request_limit", "must be an integer or null")
        if limit is not None and limit < 0:
            raise ConfigError("monthly_request_limit", "must not be negative")

    @classmethod
    def fast(cls, **overrides: Any) -> SimulatorConfig:
        """Return a configuration for tests: no read or command latency, other defaults kept."""
        settings: dict[str, Any] = {"read_latency_s": 0.0, "command_latency_s": 0.0}
        settings.update(overrides)
        return cls(**settings)

    def updated(self, changes: Mapping[str, object]) -> SimulatorConfig:
        """Return a copy with the runtime-updatable fields in `changes` applied."""
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in RUNTIME_FIELDS:
                raise ConfigError(name, "unknown or not updatable at runtime")
            values[name] = _parse_runtime_value(name, value)
        return dataclasses.replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        """Return the settings as JSON, without the client secret or management token."""
        data = {name: getattr(self, name) for name in RUNTIME_FIELDS}
        for name in ("vehicle_rate_limit", "app_rate_limit"):
            limit = getattr(self, name)
            data[name] = None if limit is None else limit.to_json()
        data.update(seed=self.seed, vehicles=self.vehicles, client_id=self.client_id)
        return data


_DURATIONS = (
    "access_ttl_s",
    "refresh_ttl_s",
    "refresh_grace_s",
    "code_ttl_s",
    "read_latency_s",
    "command_latency_s",
    "hang_s",
    "webhook_timeout_s",
    "app_token_ttl_s",
    "v3_command_sync_limit_s",
)
RUNTIME_FIELDS = (
    *_DURATIONS,
    "vehicle_rate_limit",
    "app_rate_limit",
    "monthly_request_limit",
    "webhook_retry_scale",
    "v3_signals_need_subscription",
)
MAX_CLIENT_SECRETS = 3
"""Smartcar: "You can generate up to 3 client secrets for the same application"."""


def _check_secrets(primary: str | None, additional: tuple[str, ...]) -> None:
    """Reject more than three secrets, empty ones, or additional secrets without a primary."""
    if not isinstance(additional, tuple) or not all(
        isinstance(secret, str) and secret for secret in additional
    ):
        raise ConfigError("additional_client_secrets", "must be a tuple of non-empty strings")
    if additional and primary is None:
        raise ConfigError("additional_client_secrets", "needs client_secret to be set")
    if len(additional) + 1 > MAX_CLIENT_SECRETS:
        raise ConfigError(
            "additional_client_secrets", f"at most {MAX_CLIENT_SECRETS - 1} (3 secrets in all)"
        )


def _parse_runtime_value(name: str, value: object) -> object:
    """Turn one JSON value of a runtime update into the field's type."""
    if name in ("vehicle_rate_limit", "app_rate_limit"):
        return BucketLimit.from_json(value, field=name)
    if name == "v3_signals_need_subscription":
        if not isinstance(value, bool):
            raise ConfigError(name, "must be true or false")
        return value
    if name == "monthly_request_limit":
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ConfigError(name, "must be an integer or null")
        return value
    if not _is_number(value) and name == "webhook_retry_scale":
        raise ConfigError(name, "must be a number (1.0: Smartcar's retry schedule)")
    if not _is_number(value):
        raise ConfigError(name, "must be a number of seconds")
    return float(value)  # type: ignore[arg-type]
