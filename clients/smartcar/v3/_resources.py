"""Decoders from API V3 JSON:API documents to the models of ``v3.models``.

Single resources are read wrapped in ``data`` or bare; fields in ``attributes``. A key
the documentation marks as always there (a vehicle's make, a resource's id) missing or
of the wrong type raises SmartcarProtocolError naming it; a part the pages show only
sometimes (``mode``, ``powertrainType``, timestamps, relationships) reads as None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TypeVar

from clients.smartcar._json import JsonObject
from clients.smartcar.secret import Secret
from clients.smartcar.v3._jsonapi import attributes, collection, page_of, relationship_id, single
from clients.smartcar.v3._time import instant
from clients.smartcar.v3.models import (
    ApplicationToken,
    Paged,
    SignalRef,
    Subscription,
    Vehicle,
    VehicleConnection,
    VehicleDescription,
    Webhook,
)

__all__ = [
    "APPLICATION_TOKEN_LIFETIME",
    "application_token",
    "connection",
    "connection_resource",
    "connections",
    "message",
    "subscription",
    "subscription_resource",
    "subscriptions",
    "vehicle",
    "vehicle_resource",
    "webhook",
    "webhook_resource",
    "webhooks",
]

T = TypeVar("T")

APPLICATION_TOKEN_LIFETIME = timedelta(hours=1)
"""The documented lifetime (3,600 s), used when a token answer does not state one."""
_LONGEST_LIFETIME = timedelta(days=1)


def application_token(raw: object, *, issued_at: datetime) -> ApplicationToken:
    """Decode ``POST /oauth2/token``; the expiry counts from ``issued_at``, the request time.

    ``token_type`` is "typically Bearer": absent reads as Bearer, any other type is
    refused (the client can only send bearer tokens). ``expires_in`` may be a number or
    digits in a string; absent, it is the documented hour; more than a day is refused as
    implausible (a token kept that long would outlive its revocation).
    """
    body = JsonObject(raw, "token")
    token_type = body.optional_string("token_type") or "Bearer"
    if token_type.lower() != "bearer":
        raise body.fail("token_type", "Bearer")
    lifetime = APPLICATION_TOKEN_LIFETIME
    given = body.get("expires_in")
    if given is not None:
        seconds = (
            body.integer("expires_in")
            if isinstance(given, str)
            else body.finite_number("expires_in")
        )
        if seconds is None or not 0 < seconds <= _LONGEST_LIFETIME.total_seconds():
            raise body.fail("expires_in", "a positive number of seconds, at most a day")
        lifetime = timedelta(seconds=seconds)
    access_token = body.string("access_token")
    if not access_token:
        raise body.fail("access_token", "a non-empty string")
    return ApplicationToken(
        access_token=Secret(access_token),
        token_type=token_type,
        issued_at=issued_at,
        expires_at=issued_at + lifetime,
    )


def vehicle(raw: object) -> Vehicle:
    """Decode ``GET /v3/vehicles/{id}``."""
    return vehicle_resource(single(raw, "vehicle"))


def vehicle_resource(resource: JsonObject) -> Vehicle:
    """Read a vehicle resource: id, make, model and year required."""
    fields = attributes(resource)
    return Vehicle(
        id=resource.string("id"),
        make=fields.string("make"),
        model=fields.string("model"),
        year=fields.integer("year"),
        mode=fields.optional_string("mode"),
        powertrain_type=fields.optional_string("powertrainType"),
    )


def _description(holder: JsonObject | None) -> VehicleDescription:
    """Read a nested vehicle description (every part optional)."""
    if holder is None:
        return VehicleDescription()
    return VehicleDescription(
        make=holder.optional_string("make"),
        model=holder.optional_string("model"),
        year=holder.optional_integer("year"),
        mode=holder.optional_string("mode"),
        powertrain_type=holder.optional_string("powertrainType"),
    )


def _created_updated(resource: JsonObject) -> tuple[datetime | None, datetime | None]:
    meta = resource.optional_object("meta")
    if meta is None:
        return None, None
    return instant(meta.get("createdAt")), instant(meta.get("updatedAt"))


def _nested_id(holder: JsonObject, key: str) -> str | None:
    """Return ``holder.<key>.id`` when it is a string (``attributes.user.id``)."""
    nested = holder.optional_object(key)
    return nested.optional_string("id") if nested is not None else None


def connection_resource(resource: JsonObject) -> VehicleConnection:
    """Read a connection: user and vehicle ids from ``relationships``, else ``attributes``."""
    fields = attributes(resource)
    vehicle_attributes = fields.optional_object("vehicle")
    user = fields.optional_object("user")
    created_at, updated_at = _created_updated(resource)
    permissions = fields.strings("permissions") if fields.get("permissions") is not None else ()
    return VehicleConnection(
        id=resource.string("id"),
        user_id=relationship_id(resource, "user") or _nested_id(fields, "user"),
        vehicle_id=relationship_id(resource, "vehicle") or _nested_id(fields, "vehicle"),
        permissions=permissions,
        vehicle=_description(vehicle_attributes),
        user_external_id=user.optional_string("externalId") if user is not None else None,
        created_at=created_at,
        updated_at=updated_at,
    )


def connection(raw: object) -> VehicleConnection:
    """Decode ``GET /v3/connections/{id}``."""
    return connection_resource(single(raw, "connection"))


def connections(raw: object) -> Paged[VehicleConnection]:
    """Decode ``GET /v3/connections``."""
    return _paged(raw, "connections", connection_resource)


def _signal_refs(fields: JsonObject, key: str) -> tuple[SignalRef, ...]:
    refs = []
    for item in fields.objects(key, required=False):
        refs.append(
            SignalRef(
                code=item.string("code"),
                name=item.optional_string("name"),
                group=item.optional_string("group"),
            )
        )
    return tuple(refs)


def webhook_resource(resource: JsonObject) -> Webhook:
    """Read a webhook resource."""
    fields = attributes(resource)
    created_at, _ = _created_updated(resource)
    return Webhook(
        id=resource.string("id"),
        name=fields.optional_string("name"),
        callback_uri=fields.optional_string("callbackUri"),
        is_enabled=fields.optional_boolean("isEnabled"),
        auto_subscribe=fields.optional_boolean("autoSubscribe"),
        triggers=_signal_refs(fields, "triggers"),
        signals=_signal_refs(fields, "data"),
        error_callback_uri=fields.optional_string("errorCallbackUri"),
        created_at=created_at,
    )


def webhook(raw: object) -> Webhook:
    """Decode ``GET /v3/webhooks/{id}``."""
    return webhook_resource(single(raw, "webhook"))


def webhooks(raw: object) -> Paged[Webhook]:
    """Decode ``GET /v3/webhooks``."""
    return _paged(raw, "webhooks", webhook_resource)


def subscription_resource(resource: JsonObject) -> Subscription:
    """Read a subscription: its webhook, user and vehicle from ``relationships``."""
    fields = attributes(resource)
    created_at, updated_at = _created_updated(resource)
    return Subscription(
        id=resource.string("id"),
        webhook_id=relationship_id(resource, "webhook") or fields.optional_string("webhookId"),
        user_id=relationship_id(resource, "user") or fields.optional_string("userId"),
        vehicle_id=relationship_id(resource, "vehicle") or fields.optional_string("vehicleId"),
        vehicle=_description(fields.optional_object("vehicle")),
        created_at=created_at,
        updated_at=updated_at,
    )


def subscription(raw: object) -> Subscription:
    """Decode ``GET /v3/subscriptions/{id}``."""
    return subscription_resource(single(raw, "subscription"))


def subscriptions(raw: object) -> Paged[Subscription]:
    """Decode ``GET /v3/subscriptions``."""
    return _paged(raw, "subscriptions", subscription_resource)


def _paged(raw: object, what: str, read: Callable[[JsonObject], T]) -> Paged[T]:
    resources, document = collection(raw, what)
    items = tuple(read(resource) for resource in resources)
    return Paged(items=items, page=page_of(document, items=len(items)))


def message(raw: object) -> str | None:
    """Return ``meta.message`` of an acknowledgement (a 202), or None when it has none."""
    meta = raw.get("meta") if isinstance(raw, Mapping) else None
    text = meta.get("message") if isinstance(meta, Mapping) else None
    return text if isinstance(text, str) else None
