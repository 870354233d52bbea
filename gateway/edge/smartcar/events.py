"""Smartcar's webhook events as the v2 adapter receives them: the envelope and the reports.

    event = event_from(payload, received_at=clock.now())   # MalformedEvent: no Smartcar event
    report = SmartcarV2Events().decode(event)              # what the core applies

The envelope is `{eventId, eventType, vehicleId, data, meta}`; the vehicle is
`data.vehicle.id`, else the top-level `vehicleId`. `event_from` builds the `WebhookEvent`
the inbox stores (the whole body kept for audit): an id or type storage cannot keep is
`MalformedEvent`, and a body holding text no store keeps elsewhere (a lone surrogate, NUL:
`gateway.core.payload`) gives an event already failed, stored with those characters
replaced.

`SmartcarV2Events` is the core's `WebhookDecoder`: it reads a stored event's body, and the
Smartcar user it names (`data.user.id`, which payload version 4.0 carries: the inbox skips
an event for a user other than the one a V3 car is connected by).

- VERIFY is answered by the receiver and never stored;
- VEHICLE_STATE: `data.signals` (see `signals`) become a `StateReport`;
- VEHICLE_ERROR: each `data.errors[]` item `{type, code, description, state, resolution}`
  becomes a `ReportedError` labelled `TYPE:CODE` (UNKNOWN without either), resolved when
  its `state` is RESOLVED, with Smartcar's `resolution.type` and `resolution.url` when
  given (the event reference documents `resolution: {type}`; the API's error pages add a
  `url` to some, e.g. AUTHENTICATION_FAILED's re-authentication link, and one SDK defect
  shows `resolution` sent as a bare string: that is read as the type). Text that is not a
  string is left out, and each text is cut to `MAX_ERROR_TEXT` characters; a
  CONNECTED_SERVICES_ACCOUNT item also says what the owner must do
  (`failures.owner_action_of`: its `resolution` {type, url}, `docURL` or `links.about`,
  `suggestedUserMessage`);
- any other type is `NotHandled`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

from gateway.core import payload as payloads
from gateway.core.model import OwnerAction, UpstreamFailure, WebhookEvent
from gateway.core.reports import ErrorReport, NotHandled, ReportedError, VehicleReport
from gateway.core.validation import MAX_ID_LENGTH
from gateway.edge.smartcar import signals
from gateway.edge.smartcar.failures import OWNER_ACCOUNT, owner_action_of

MAX_ERROR_TEXT = 2048
"""The longest type, code, description or resolution kept of a reported error."""

VERIFY = "VERIFY"
VEHICLE_STATE = "VEHICLE_STATE"
VEHICLE_ERROR = "VEHICLE_ERROR"


class MalformedEvent(ValueError):
    """A webhook body that is not a Smartcar event: no `eventId` or `eventType` string that
    can be stored (1-128 characters, no lone surrogate or NUL), a vehicle id over 128
    characters, or objects nested deeper than `payload.MAX_DEPTH`."""


def event_from(payload: Mapping[str, object], *, received_at: datetime) -> WebhookEvent:
    """Return the event a parsed webhook body describes, received at `received_at`: pending,
    or already failed when the body holds text no store keeps (see `gateway.core.payload`)."""
    if payloads.too_deep(payload):
        raise MalformedEvent(f"the body nests deeper than {payloads.MAX_DEPTH} levels")
    event_id = _envelope_text(payload.get("eventId"), "eventId")
    event_type = _envelope_text(payload.get("eventType"), "eventType")
    vehicle_id = smartcar_vehicle_id(payload)
    if vehicle_id is not None and len(vehicle_id) > MAX_ID_LENGTH:
        raise MalformedEvent(f"the vehicle id must be at most {MAX_ID_LENGTH} characters")
    event = WebhookEvent(
        event_id=event_id,
        event_type=event_type,
        smartcar_vehicle_id=None if vehicle_id is None else payloads.printable(vehicle_id),
        received_at=received_at,
        payload=payload,
    )
    problem = payloads.text_problem(payload)
    if problem is None:
        return event
    stored = payloads.storable(payload)
    assert isinstance(stored, Mapping)
    reason = f"not applied: {problem}; stored with U+FFFD in its place"
    return dataclasses.replace(event, payload=stored, failed_at=received_at, error=reason)


def smartcar_user_id(payload: Mapping[str, object]) -> str | None:
    """Return the Smartcar user an event names (`data.user.id`), or None when it names none
    a store keeps (a non-empty string of at most 128 characters, no lone surrogate or NUL)."""
    user = _data(payload).get("user")
    found = user.get("id") if isinstance(user, Mapping) else None
    if not isinstance(found, str) or not found or len(found) > MAX_ID_LENGTH:
        return None
    return found if payloads.clean(found) else None


def smartcar_vehicle_id(payload: Mapping[str, object]) -> str | None:
    """Return the Smartcar vehicle id of an event (`data.vehicle.id`, else `vehicleId`)."""
    vehicle = _data(payload).get("vehicle")
    found = vehicle.get("id") if isinstance(vehicle, Mapping) else None
    if not isinstance(found, str):
        found = payload.get("vehicleId")
    return found if isinstance(found, str) and found else None


class SmartcarV2Events:
    """Decodes stored Smartcar webhook events into the core's reports (`WebhookDecoder`)."""

    def decode(self, event: WebhookEvent) -> VehicleReport:
        """Return what the event reports about its vehicle."""
        return decode_event(event)

    def owner(self, event: WebhookEvent) -> str | None:
        """Return the Smartcar user the event names (`data.user.id`)."""
        return smartcar_user_id(event.payload)


def decode_event(event: WebhookEvent, *, success_only: bool = False) -> VehicleReport:
    """Return what a stored event reports about its vehicle; `success_only` reads signal
    statuses as API V3 does (see `signals.index`)."""
    data = _data(event.payload)
    if event.event_type == VEHICLE_STATE:
        carried = signals.index(data.get("signals"), success_only=success_only)
        return signals.parse(carried, fetched_at=event.received_at)
    if event.event_type == VEHICLE_ERROR:
        return error_report(data.get("errors"))
    return NotHandled(f"event type {event.event_type} is not handled")


def error_report(errors: object) -> ErrorReport:
    """Return the errors of a `data.errors` value; items that are no objects are skipped."""
    reported = []
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, Mapping):
            continue
        label = ":".join(str(error[k]) for k in ("type", "code") if error.get(k)) or "UNKNOWN"
        resolution = error.get("resolution")
        if not isinstance(resolution, Mapping):
            resolution = {"type": resolution}
        reported.append(
            ReportedError(
                label=label,
                description=_text(error.get("description")),
                resolved=error.get("state") == "RESOLVED",
                owner_action=_owner_action(error),
                type=_text(error.get("type")),
                code=_text(error.get("code")),
                resolution_type=_text(resolution.get("type")),
                resolution_url=_text(resolution.get("url")),
            )
        )
    return ErrorReport(tuple(reported))


def _owner_action(error: Mapping[str, object]) -> OwnerAction | None:
    """What a CONNECTED_SERVICES_ACCOUNT error item asks of the owner (None for others)."""
    if error.get("type") != OWNER_ACCOUNT:
        return None
    resolution = error.get("resolution")
    links = error.get("links")
    if isinstance(resolution, str):
        resolution = {"type": resolution}
    resolution = resolution if isinstance(resolution, Mapping) else {}
    links = links if isinstance(links, Mapping) else {}
    failure = UpstreamFailure(
        type=OWNER_ACCOUNT,
        code=_text(error.get("code")),
        resolution_type=_text(resolution.get("type")),
        resolution_url=_text(resolution.get("url")),
        doc_url=_text(error.get("docURL")) or _text(links.get("about")),
        suggested_user_message=_text(error.get("suggestedUserMessage")),
    )
    return owner_action_of(failure)


def _text(value: object) -> str | None:
    """A non-empty text value, printable as every store keeps it and cut to MAX_ERROR_TEXT
    characters; None otherwise."""
    if not isinstance(value, str) or not value:
        return None
    return payloads.printable(value)[:MAX_ERROR_TEXT]


def _envelope_text(value: object, name: str) -> str:
    """Return an id or type of the event envelope if every store can keep it."""
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{name} must be a non-empty string")
    if len(value) > MAX_ID_LENGTH:
        raise MalformedEvent(f"{name} must be at most {MAX_ID_LENGTH} characters")
    if not payloads.clean(value):
        raise MalformedEvent(f"{name} must hold no lone surrogate and no NUL")
    return value


def _data(payload: Mapping[str, object]) -> Mapping[str, object]:
    data = payload.get("data")
    return data if isinstance(data, Mapping) else {}
