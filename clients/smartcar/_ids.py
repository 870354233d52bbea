"""Validation of Smartcar ids before they are put into a URL."""

from __future__ import annotations

import re

# Smartcar ids are UUIDs (sometimes prefixed); letters, digits, '-' and '_' cover them all
# and leave no room for '/', '.', '%', '?' or '#', so an id can never steer a request path.
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def checked_id(name: str, value: str) -> str:
    """Return ``value`` if it is a plain Smartcar id, else raise ValueError naming ``name``."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{name} must be a plain Smartcar id (letters, digits, '-', '_')")
    return value
