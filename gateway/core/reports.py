"""What a webhook event reports about its vehicle, in the core's terms, whatever its wire format.

    StateReport(readings, rejections, asleep)   the car reported telemetry
    ErrorReport(errors)                         the car or its OEM account has (had) errors
    NotHandled(reason)                          nothing the gateway acts on, and why

A Smartcar adapter decodes a stored `WebhookEvent` into one of these (the
`ports.WebhookDecoder` port); the inbox (`gateway.core.webhooks`) applies it. The core never
reads the event's JSON itself, so a second API version brings its own decoder and leaves
the inbox as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.core.model import FieldReading, OwnerAction, TelemetryField


@dataclass(frozen=True, slots=True)
class Rejection:
    """A value an event carried that the gateway refused to record, and why."""

    field: TelemetryField
    reason: str

    def __str__(self) -> str:
        return f"{self.field.value}: {self.reason}"


@dataclass(frozen=True, slots=True, kw_only=True)
class StateReport:
    """What the car reported: a reading per valid field, a rejection per refused value, and
    whether the car says it is asleep."""

    readings: tuple[FieldReading, ...] = ()
    rejections: tuple[Rejection, ...] = ()
    asleep: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportedError:
    """One error an event reports: `label` names it (`TYPE:CODE`, Smartcar's type and code),
    `description` says it in words; `resolved` when the event says it is over. `type` and
    `code` are Smartcar's, and `resolution_type` and `resolution_url` what it says resolves
    the error (e.g. REAUTHENTICATE and the re-authentication URL), each when given."""

    label: str
    description: str | None = None
    resolved: bool = False
    owner_action: OwnerAction | None = None
    """What the owner must do, when the error is one only they can resolve (Smartcar's
    CONNECTED_SERVICES_ACCOUNT errors): the car then waits for them
    (`gateway.core.reauthentication`)."""
    type: str | None = None
    code: str | None = None
    resolution_type: str | None = None
    resolution_url: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """The errors an event reports, in the order it lists them."""

    errors: tuple[ReportedError, ...] = ()


@dataclass(frozen=True, slots=True)
class NotHandled:
    """An event the gateway does not act on (a type it does not handle), and why."""

    reason: str


VehicleReport = StateReport | ErrorReport | NotHandled
"""What a decoder makes of one stored webhook event."""
