"""API V3 webhook events as the core's reports: the `WebhookDecoder` of a fleet on V3, and
of a fleet migrating to it.

    event = event_from(payload, received_at=clock.now())   # the same envelope parser as v2
    report = SmartcarV3Events().decode(event)              # StateReport, ErrorReport, NotHandled
    user = SmartcarV3Events().owner(event)                 # data.user.id, V3's routing key

V3 webhooks deliver payload version 4.0 (smartcar-v3-notes §6.2): `{eventId, eventType,
data: {user: {id}, vehicle: {id, …}, signals | errors}, triggers, meta: {version: "4.0",
…}}`. That is the payload the gateway has always received (`events`, `signals`), so:

- the envelope needs nothing new: `events.event_from` takes the event id and type from the
  top level and the vehicle from `data.vehicle.id` (where live payloads put it), else
  from the top-level `vehicleId` (where Smartcar's event reference puts it; live payloads
  have none). Both forms are accepted, as before. What V3 adds is `data.user.id`, the
  Smartcar user whose connection the car is (the `sc-user-id` of every V3 call):
  `owner` reads it, and the inbox skips an event for a user other than the one the car
  is connected by (another user's connection to the same car is not the fleet's);
- VEHICLE_STATE signals come as `[{code, name, group, body, status, meta}]` (or keyed by
  `Group.Name`), exactly what `signals` parses: the same parser, the same field-by-field
  rejections, the same `connectivitystatus-isasleep` sleep report. One rule follows API
  V3's reading of a signal's status (SUCCESS, ERROR or UNAVAILABLE; the V3 client reads
  an unknown value as UNAVAILABLE): only a signal that says SUCCESS, or says nothing and
  names no error, is read; any other keeps its field's last reading, where the v2 decoder
  skips ERROR signals only;
- VEHICLE_ERROR is `events.error_report`: `TYPE:CODE` per error, resolved when its
  `state` is RESOLVED;
- VERIFY is answered by the receiver and never stored; any other type is `NotHandled`.

A mixed fleet needs no choice per event: the payload's version goes with the webhook
that delivers it (the VERIFY sent when a webhook is made already comes as 4.0 or as the
legacy 2.0 `{version, webhookId, eventName, payload}`), not with the API a car's
connection uses, so a car still on v2 and a car on V3 send the same 4.0 events, and this
decoder reads both. Legacy 2.0 payloads have never been accepted by the receiver
(`event_from` refuses a body without a top-level `eventId` and `eventType`) and are not
read here either.
"""

from __future__ import annotations

from gateway.core.model import WebhookEvent
from gateway.core.reports import VehicleReport
from gateway.edge.smartcar.events import decode_event, smartcar_user_id


class SmartcarV3Events:
    """Decodes stored API V3 webhook events into the core's reports (`WebhookDecoder`)."""

    def decode(self, event: WebhookEvent) -> VehicleReport:
        """Return what the event reports about its vehicle."""
        return decode_event(event, success_only=True)

    def owner(self, event: WebhookEvent) -> str | None:
        """Return the Smartcar user the event names (`data.user.id`)."""
        return smartcar_user_id(event.payload)
