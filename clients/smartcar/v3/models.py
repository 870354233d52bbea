"""The values the V3 client returns for tokens, vehicles, commands, connections and the
management API: small frozen dataclasses (signals have their own module, ``signals``).

Times are aware UTC datetimes whatever form Smartcar sent them in; ids are Smartcar's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Generic, TypeVar

from clients.smartcar.secret import Secret

__all__ = [
    "ApplicationToken",
    "CommandExecution",
    "CommandOutcome",
    "Page",
    "Paged",
    "SignalRef",
    "SubscribeOutcome",
    "Subscription",
    "SubscriptionRequest",
    "TokenGrant",
    "Vehicle",
    "VehicleConnection",
    "VehicleDescription",
    "Webhook",
]

T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationToken:
    """The application's access token (client credentials): one for the whole fleet.

    There is no refresh token: when it expires, request a new one.
    """

    access_token: Secret
    token_type: str
    issued_at: datetime
    """When the grant was requested (expiry counts from here, not from the answer)."""
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenGrant:
    """A token, and which of the configured client secrets obtained it."""

    token: ApplicationToken
    secret_index: int
    """Position of the accepted secret in ``ApplicationCredentials.client_secrets``."""
    refused: tuple[int, ...] = ()
    """Positions of the secrets Smartcar refused (``invalid_client``) before, in order
    tried: secrets rotated out at Smartcar that the configuration still holds."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Vehicle:
    """A vehicle as ``GET /v3/vehicles/{id}`` describes it."""

    id: str
    make: str
    model: str
    year: int
    mode: str | None = None
    """``live`` or ``simulated`` (``test`` is deprecated)."""
    powertrain_type: str | None = None
    """``BEV``, ``ICE`` …; live payloads also send null."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleDescription:
    """What a connection or a subscription says about its vehicle (any part may be absent)."""

    make: str | None = None
    model: str | None = None
    year: int | None = None
    mode: str | None = None
    powertrain_type: str | None = None


class CommandOutcome(StrEnum):
    """What a command's answer establishes."""

    SUCCEEDED = "SUCCEEDED"
    """Smartcar reports the command done (status SUCCESS, or a plain 200)."""
    PENDING = "PENDING"
    """Accepted, not confirmed (a 202 without a final status, or status PENDING): read
    the matching signal to learn whether it happened."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandExecution:
    """Smartcar's answer to a command that did not fail (failures raise)."""

    outcome: CommandOutcome
    http_status: int
    status: str | None = None
    """Smartcar's ``status.value`` as sent (``SUCCESS``, ``PENDING`` …), None if absent."""
    id: str | None = None
    command_type: str | None = None
    """``security-lock``, ``charge-set-limit`` …"""
    execution_mode: str | None = None
    """``sync`` or ``async``."""
    parameters: Mapping[str, object] | None = None
    executed_at: datetime | None = None
    completed_at: datetime | None = None
    duration_s: float | None = None
    request_id: str | None = None

    @property
    def accepted(self) -> bool:
        """True when Smartcar answered 202 (a long-running command)."""
        return self.http_status == 202


@dataclass(frozen=True, slots=True, kw_only=True)
class Page:
    """Where a page sits in a paginated collection (parts Smartcar did not send are None)."""

    number: int | None
    size: int | None
    total_count: int | None
    has_next: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Paged(Generic[T]):
    """One page of a collection."""

    items: tuple[T, ...]
    page: Page


@dataclass(frozen=True, slots=True, kw_only=True)
class VehicleConnection:
    """A vehicle connected to the application by one Smartcar user."""

    id: str
    """The connection id (``DELETE /v3/connections/{id}`` takes it, not the vehicle id)."""
    user_id: str | None
    vehicle_id: str | None
    permissions: tuple[str, ...] = ()
    vehicle: VehicleDescription = VehicleDescription()
    user_external_id: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalRef:
    """A signal named by a webhook: its code, and its name and group when given."""

    code: str
    name: str | None = None
    group: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Webhook:
    """A webhook configured in the dashboard, as the management API lists it."""

    id: str
    name: str | None = None
    callback_uri: str | None = None
    is_enabled: bool | None = None
    auto_subscribe: bool | None = None
    triggers: tuple[SignalRef, ...] = ()
    signals: tuple[SignalRef, ...] = ()
    """The signals each delivery carries (the resource's ``data`` attribute)."""
    error_callback_uri: str | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Subscription:
    """A vehicle subscribed to a webhook."""

    id: str
    webhook_id: str | None
    user_id: str | None
    vehicle_id: str | None
    vehicle: VehicleDescription = VehicleDescription()
    created_at: datetime | None = None
    updated_at: datetime | None = None


class SubscribeOutcome(StrEnum):
    """What ``POST /v3/subscriptions`` answered."""

    ACCEPTED = "ACCEPTED"
    """202: "subscription creation in progress"."""
    ALREADY_SUBSCRIBED = "ALREADY_SUBSCRIBED"
    """409: the vehicle is already subscribed to the webhook."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionRequest:
    """The answer to a subscription request (its creation is asynchronous at Smartcar)."""

    outcome: SubscribeOutcome
    message: str | None = None
