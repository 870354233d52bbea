"""Rules for request fields: ids, lengths, bounds. Pure; each failure names its field.

The gRPC edge parses protobuf into plain values and runs these before calling a use case;
every violation becomes INVALID_ARGUMENT with a BadRequest naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta

from gateway.core.errors import FieldViolation, InvalidArgument

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]*")
MAX_ID_LENGTH = 128
MAX_CODE_LENGTH = 512
MAX_STATE_LENGTH = 128
MAX_MAX_AGE = timedelta(days=7)
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
VIN_PATTERN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")


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
    if value and not VIN_PATTERN.fullmatch(value.upper()):
        return FieldViolation(field, "must be a 17-character VIN (letters except I, O, Q)")
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


def ensure(violations: Iterable[FieldViolation | None]) -> None:
    """Raise InvalidArgument listing every violation, if there is any."""
    found = [v for v in violations if v is not None]
    if found:
        raise InvalidArgument(found)
