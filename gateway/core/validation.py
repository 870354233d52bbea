"""Rules for request fields: ids, lengths, counts, bounds. Pure; each failure names its field.

The gRPC edge parses protobuf into plain values and runs these before calling a use case;
every violation becomes INVALID_ARGUMENT with a BadRequest naming the field.

Hostile requests cost little: every repeated field has a cap (`MAX_TELEMETRY_FIELDS`,
`MAX_WATCH_VEHICLE_IDS`, `MAX_EVENT_KINDS`), checked with `count` before any loop over its
values, and every string a maximum length, checked before any pattern. `ensure` reports at most
`MAX_NAMED_VIOLATIONS` fields by name and counts the rest, so the status details stay far
below the 8 KiB of metadata a default gRPC client accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from gateway.core.countries import is_country
from gateway.core.errors import FieldViolation, InvalidArgument
from gateway.core.model import MAX_CHARGE_LIMIT_PERCENT, MIN_CHARGE_LIMIT_PERCENT, TelemetryField
from gateway.core.vehicle_events import VehicleEventKind

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*")
MAX_ID_LENGTH = 128
MAX_CODE_LENGTH = 512
MAX_STATE_LENGTH = 128
MAX_MAX_AGE = timedelta(days=7)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
VIN_LENGTH = 17
VIN_PATTERN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
MAX_TELEMETRY_FIELDS = len(TelemetryField)
"""GetTelemetry `fields`: at most one entry per known field (8)."""
MAX_WATCH_VEHICLE_IDS = 1000
"""WatchVehicles and WatchVehicleEvents `vehicle_ids`: watch more than this many vehicles
by watching them all."""
MAX_EVENT_KINDS = len(VehicleEventKind)
"""WatchVehicleEvents `kinds`: at most one entry per kind (9)."""
MAX_PAGE_TOKEN_LENGTH = 512
"""ListVehicles `page_token`: the tokens the gateway issues are well under this."""
PAGE_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
MAX_CONNECT_ERROR_LENGTH = 64
"""Connect `error`: Smartcar's codes are short snake_case words."""
MAX_CONNECT_ERROR_DESCRIPTION_LENGTH = 512
"""Connect `error_description`: Smartcar's are one sentence."""
COUNTRY_LENGTH = 2
MAX_MONTHLY_ALLOWANCE = 1_000_000
"""The largest monthly request allowance a car (or the fleet) may be given."""
MAX_NAMED_VIOLATIONS = 20
"""How many bad fields an InvalidArgument names; the rest are only counted."""


def identifier(field: str, value: str, *, required: bool = True) -> FieldViolation | None:
    """Check an id (vehicle, rental, request): 1-128 of letters, digits and `._:-`."""
    if not value:
        return FieldViolation(field, "is required") if required else None
    if len(value) > MAX_ID_LENGTH:
        return FieldViolation(field, f"must be at most {MAX_ID_LENGTH} characters")
    if not ID_PATTERN.fullmatch(value):
        return FieldViolation(
            field, "must start with a letter or digit and use only letters, digits and . _ : -"
        )
    return None


def opaque(field: str, value: str, *, max_length: int) -> FieldViolation | None:
    """Check an opaque token from Smartcar (code, state): present, bounded, printable ASCII."""
    if not value:
        return FieldViolation(field, "is required")
    if len(value) > max_length:
        return FieldViolation(field, f"must be at most {max_length} characters")
    if not value.isascii() or not value.isprintable() or " " in value:
        return FieldViolation(field, "must be printable ASCII without spaces")
    return None


def vin(field: str, value: str) -> FieldViolation | None:
    """Check an optional VIN: empty, or 17 characters without I, O or Q."""
    if value and (len(value) != VIN_LENGTH or not VIN_PATTERN.fullmatch(value.upper())):
        return FieldViolation(field, "must be a 17-character VIN (letters except I, O, Q)")
    return None


def required_vin(field: str, value: str) -> FieldViolation | None:
    """Check a VIN that must be given: 17 characters without I, O or Q (any case)."""
    if not value:
        return FieldViolation(field, "is required: the car's 17-character VIN")
    return vin(field, value)


def country(field: str, value: str) -> FieldViolation | None:
    """Check a country: an assigned ISO 3166-1 alpha-2 code (any case), e.g. US, DE, GB."""
    if not value:
        return FieldViolation(field, "is required: an ISO 3166-1 alpha-2 code such as US or DE")
    if len(value) != COUNTRY_LENGTH or not value.isascii() or not is_country(value.upper()):
        return FieldViolation(
            field, "must be an ISO 3166-1 alpha-2 country code, such as US, DE or GB"
        )
    return None


def free_text(field: str, value: str, *, max_length: int) -> FieldViolation | None:
    """Check optional free text passed on from elsewhere (a Connect error's description):
    bounded, and printable (no control or formatting characters)."""
    if len(value) > max_length:
        return FieldViolation(field, f"must be at most {max_length} characters")
    if not value.isprintable():
        return FieldViolation(field, "must be printable text (no control characters)")
    return None


def max_age(field: str, value: timedelta) -> FieldViolation | None:
    """Check a cache age bound: from zero (always ask Smartcar) up to 7 days."""
    if value < timedelta(0):
        return FieldViolation(field, "must not be negative")
    if value > MAX_MAX_AGE:
        return FieldViolation(field, "must be at most 7 days")
    return None


def page_size(field: str, value: int) -> FieldViolation | None:
    """Check a page size: 0 (the default, 50) up to 500."""
    if value < 0:
        return FieldViolation(field, "must not be negative")
    if value > MAX_PAGE_SIZE:
        return FieldViolation(field, f"must be at most {MAX_PAGE_SIZE}")
    return None


def monthly_allowance(field: str, value: int) -> FieldViolation | None:
    """Check a car's monthly request allowance: 0 (the fleet's) up to 1,000,000."""
    if value < 0:
        return FieldViolation(field, "must not be negative (0: the fleet's allowance)")
    if value > MAX_MONTHLY_ALLOWANCE:
        return FieldViolation(field, f"must be at most {MAX_MONTHLY_ALLOWANCE:,}")
    return None


def charge_limit(field: str, value: int) -> FieldViolation | None:
    """Check a charge limit: an integer percent Smartcar accepts (50-100; 0, proto3's
    unset, is missing)."""
    low, high = MIN_CHARGE_LIMIT_PERCENT, MAX_CHARGE_LIMIT_PERCENT
    if value == 0:
        return FieldViolation(field, f"is required: a percent from {low} to {high}")
    if not low <= value <= high:
        return FieldViolation(field, f"must be a percent from {low} to {high} (got {value})")
    return None


def count(field: str, size: int, *, limit: int) -> FieldViolation | None:
    """Check how many values a repeated field holds, before anything looks at them."""
    if size > limit:
        return FieldViolation(field, f"must hold at most {limit} values (got {size})")
    return None


def page_token(field: str, value: str) -> FieldViolation | None:
    """Check the shape of an optional page token: bounded, URL-safe base64 characters."""
    if not value:
        return None
    if len(value) > MAX_PAGE_TOKEN_LENGTH or not PAGE_TOKEN_PATTERN.fullmatch(value):
        return FieldViolation(field, "is not a token this service issued")
    return None


def ensure(violations: Iterable[FieldViolation | None]) -> None:
    """Raise InvalidArgument naming the first `MAX_NAMED_VIOLATIONS` violations and
    counting the others, if there is any."""
    named: list[FieldViolation] = []
    omitted = 0
    for violation in violations:
        if violation is None:
            continue
        if len(named) < MAX_NAMED_VIOLATIONS:
            named.append(violation)
        else:
            omitted += 1
    if named:
        raise InvalidArgument(named, omitted=omitted)
