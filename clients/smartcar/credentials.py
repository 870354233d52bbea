"""ClientCredentials: the Smartcar application's identity at the token endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Self

from clients.smartcar.secret import Secret

__all__ = ["ClientCredentials"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientCredentials:
    """Client id, client secret and the redirect URI registered with Smartcar."""

    client_id: str
    client_secret: Secret
    redirect_uri: str

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("client_id must not be empty")
        if not isinstance(self.client_secret, Secret) or not self.client_secret.reveal():
            raise ValueError("client_secret must be a non-empty Secret")
        if not self.redirect_uri:
            raise ValueError("redirect_uri must not be empty")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Self:
        """Read SMARTCAR_CLIENT_ID, SMARTCAR_CLIENT_SECRET and SMARTCAR_REDIRECT_URI."""
        missing = [
            var
            for var in ("SMARTCAR_CLIENT_ID", "SMARTCAR_CLIENT_SECRET", "SMARTCAR_REDIRECT_URI")
            if not env.get(var)
        ]
        if missing:
            raise ValueError(f"missing environment variable(s): {', '.join(missing)}")
        return cls(
            client_id=env["SMARTCAR_CLIENT_ID"],
            client_secret=Secret(env["SMARTCAR_CLIENT_SECRET"]),
            redirect_uri=env["SMARTCAR_REDIRECT_URI"],
        )
