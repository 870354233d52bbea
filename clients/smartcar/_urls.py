"""Validation of the configured Smartcar base URLs (v2 and V3 endpoints alike)."""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["checked_url"]


def checked_url(name: str, url: str) -> str:
    """Return ``url`` without a trailing slash, or raise ValueError naming ``name``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{name} must be an absolute http(s) URL")
    if parts.query or parts.fragment:
        raise ValueError(f"{name} must not carry a query or fragment")
    return url.rstrip("/")
