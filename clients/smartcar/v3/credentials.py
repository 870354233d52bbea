"""ApplicationCredentials: the application's identity at Smartcar's IAM token endpoint.

Smartcar lets an application hold up to three client secrets at once, so a secret is
rotated by adding the new one, deploying, and deleting the old one. The credentials
therefore carry a sequence of secrets, tried in turn (``SmartcarIAM.request_token``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from clients.smartcar.secret import Secret

__all__ = ["ApplicationCredentials"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplicationCredentials:
    """The API V3 client id and its client secrets, in the order they are tried.

    The V3 client id may differ from the Connect application's client id (live users
    report ``client_…`` ids from the dashboard's API Credentials tab).
    """

    client_id: str
    client_secrets: tuple[Secret, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.client_id, str) or not self.client_id.strip():
            raise ValueError("client_id must be a non-empty string")
        given: object = self.client_secrets  # callers may pass one Secret, or a list
        if isinstance(given, Secret | str) or not isinstance(given, Iterable):
            raise ValueError("client_secrets must be a sequence of Secret values")
        secrets = tuple(given)
        object.__setattr__(self, "client_secrets", secrets)
        if not secrets:
            raise ValueError("client_secrets must hold at least one secret")
        if not all(isinstance(s, Secret) and s.reveal() for s in secrets):
            raise ValueError("client_secrets must all be non-empty Secret values")
        if len(set(secrets)) != len(secrets):
            raise ValueError("client_secrets must not repeat a secret")
