"""V3Endpoints: where Smartcar's API V3 servers live (vehicle API, IAM, management API)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Self

from clients.smartcar._urls import checked_url

__all__ = ["TOKEN_PATH", "V3Endpoints"]

TOKEN_PATH = "/oauth2/token"  # noqa: S105 - a path, not a password
"""Where the IAM server takes client-credentials grants."""

_PRODUCTION = {
    "vehicle_origin": "https://vehicle.api.smartcar.com",
    "iam_origin": "https://iam.smartcar.com",
    "management_origin": "https://management.api.smartcar.com",
}

# The official SDK names the first; the other two are the gateway's fixed names.
_ENV = {
    "vehicle_origin": "SMARTCAR_VEHICLE_API_V3_ORIGIN",
    "iam_origin": "SMARTCAR_IAM_ORIGIN",
    "management_origin": "SMARTCAR_MANAGEMENT_API_V3_ORIGIN",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class V3Endpoints:
    """The three origins of API V3; production by default.

    Paths are appended to them: ``/v3/vehicles/…`` and ``/v3/connections`` to
    ``vehicle_origin``, ``/oauth2/token`` to ``iam_origin``, ``/v3/webhooks`` and
    ``/v3/subscriptions`` to ``management_origin``. An IAM origin configured with the
    token path already on it is accepted (the path is not added twice).
    """

    vehicle_origin: str = _PRODUCTION["vehicle_origin"]
    iam_origin: str = _PRODUCTION["iam_origin"]
    management_origin: str = _PRODUCTION["management_origin"]

    def __post_init__(self) -> None:
        for field in fields(self):
            object.__setattr__(self, field.name, checked_url(field.name, getattr(self, field.name)))
        iam = self.iam_origin
        if iam.endswith(TOKEN_PATH):
            origin = checked_url("iam_origin", iam.removesuffix(TOKEN_PATH))
            object.__setattr__(self, "iam_origin", origin)

    @property
    def token_url(self) -> str:
        """The client-credentials token URL (``{iam_origin}/oauth2/token``)."""
        return f"{self.iam_origin}{TOKEN_PATH}"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """Read SMARTCAR_VEHICLE_API_V3_ORIGIN, SMARTCAR_IAM_ORIGIN and
        SMARTCAR_MANAGEMENT_API_V3_ORIGIN; unset or empty ones keep production."""
        chosen = {name: env[var] for name, var in _ENV.items() if env.get(var)}
        return cls(**chosen)

    @classmethod
    def for_base_url(cls, base_url: str) -> Self:
        """Point all three at one server (a simulator serving V3 beside v2)."""
        base = checked_url("base_url", base_url)
        return cls(vehicle_origin=base, iam_origin=base, management_origin=base)
