"""SmartcarEndpoints: where Smartcar's API, token, Connect and management servers live."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Self

from clients.smartcar._urls import checked_url

__all__ = ["SmartcarEndpoints"]

_PRODUCTION = {
    "api_origin": "https://api.smartcar.com",
    "auth_url": "https://auth.smartcar.com/oauth/token",
    "connect_origin": "https://connect.smartcar.com",
    "management_origin": "https://management.smartcar.com",
}

# The official SDK's variable names, so one environment drives both it and us.
_ENV = {
    "api_origin": "SMARTCAR_API_ORIGIN",
    "auth_url": "SMARTCAR_AUTH_ORIGIN",
    "connect_origin": "SMARTCAR_CONNECT_ORIGIN",
    "management_origin": "SMARTCAR_MANAGEMENT_API_ORIGIN",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SmartcarEndpoints:
    """The four base URLs of Smartcar; production by default.

    ``auth_url`` is the full token URL (``…/oauth/token``), as in the official SDK's
    ``SMARTCAR_AUTH_ORIGIN``; the others are origins that paths are appended to.
    """

    api_origin: str = _PRODUCTION["api_origin"]
    auth_url: str = _PRODUCTION["auth_url"]
    connect_origin: str = _PRODUCTION["connect_origin"]
    management_origin: str = _PRODUCTION["management_origin"]

    def __post_init__(self) -> None:
        for field in fields(self):
            object.__setattr__(self, field.name, checked_url(field.name, getattr(self, field.name)))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """Read the SDK's SMARTCAR_*_ORIGIN variables; unset or empty ones keep production."""
        chosen = {name: env[var] for name, var in _ENV.items() if env.get(var)}
        return cls(**chosen)

    @classmethod
    def for_base_url(cls, base_url: str) -> Self:
        """Point everything at one server (a simulator), its token URL at ``/oauth/token``."""
        base = checked_url("base_url", base_url)
        return cls(
            api_origin=base,
            auth_url=f"{base}/oauth/token",
            connect_origin=base,
            management_origin=base,
        )
