"""API V3 application credentials: the client's secrets and the application tokens issued.

Following Smartcar's API Authentication pages:

- an application authenticates with its client id and one of its client secrets; it may
  hold up to three secrets at once ("You can generate up to 3 client secrets for the same
  application"), so a secret is rotated by adding the new one, moving clients to it, and
  removing the old one. The simulator starts with `client_secret` and
  `additional_client_secrets`; `/sim/secrets` adds and removes secrets at runtime (see
  `secret_routes`). Without any secret configured, any secret is accepted (as the v2
  token endpoint accepts any client then), until a secret is added;
- an application token is valid for `app_token_ttl_s` (1 hour) and has no refresh token:
  the client asks for a new one. Removing a secret does not revoke the tokens issued with
  it (they run out within the hour).

The V3 client id is the v2 one (`client_id`): Smartcar's pages show a separate V3 client id
only in third-party notes (UNCERTAIN), and one id keeps one simulator one application.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from clients.simulator.config import MAX_CLIENT_SECRETS


class SecretsError(ValueError):
    """A change to the client secrets the simulator refuses (the message says why)."""


@dataclass(frozen=True, kw_only=True)
class IssuedAppToken:
    """A freshly issued application token (its value stays out of the repr)."""

    access_token: str = field(repr=False)
    expires_in_s: int

    def to_json(self) -> dict[str, Any]:
        """Return the IAM token endpoint's success body."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in_s,
        }


@dataclass(frozen=True, kw_only=True)
class AppToken:
    """An application token the simulator issued: whose it is and when it expires."""

    client_id: str
    expires_at_s: float


def fingerprint(secret: str) -> str:
    """Return a short, stable name for a secret that does not reveal it (SHA-256 prefix)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


class ClientSecrets:
    """The client secrets currently valid (at most three), or "any secret" when none is set."""

    def __init__(self, initial: list[str], *, any_secret: bool) -> None:
        self._secrets = list(dict.fromkeys(initial))
        self._any_secret = any_secret and not self._secrets

    @classmethod
    def configured(cls, primary: str | None, additional: tuple[str, ...]) -> ClientSecrets:
        """Return the secrets a simulator starts with (none configured: any secret)."""
        initial = [] if primary is None else [primary, *additional]
        return cls(initial, any_secret=primary is None)

    def accepts(self, secret: str) -> bool:
        """Tell whether `secret` is one of the valid secrets (compared in constant time)."""
        if self._any_secret:
            return True
        return any(hmac.compare_digest(secret.encode(), known.encode()) for known in self._secrets)

    def add(self, secret: str) -> None:
        """Add a secret, or raise SecretsError (empty, already valid, or three held)."""
        if not secret:
            raise SecretsError("a client secret must not be empty")
        if secret in self._secrets:
            raise SecretsError("this secret is already valid")
        if len(self._secrets) >= MAX_CLIENT_SECRETS:
            raise SecretsError(f"an application holds at most {MAX_CLIENT_SECRETS} secrets")
        self._secrets.append(secret)
        self._any_secret = False

    def remove(self, secret: str) -> bool:
        """Remove a secret; return whether it was valid."""
        if secret not in self._secrets:
            return False
        self._secrets.remove(secret)
        return True

    def ensure(self, secret: str) -> None:
        """Keep `secret` valid (the one the simulator was started with), oldest others first
        giving way when three are already held."""
        if secret in self._secrets:
            return
        if len(self._secrets) >= MAX_CLIENT_SECRETS:
            del self._secrets[0]
        self._secrets.append(secret)
        self._any_secret = False

    def fingerprints(self) -> list[str]:
        """Return the fingerprints of the valid secrets, oldest first."""
        return [fingerprint(secret) for secret in self._secrets]

    @property
    def any_secret(self) -> bool:
        """Tell whether any secret is accepted (no secret was ever set)."""
        return self._any_secret

    def __repr__(self) -> str:
        return f"ClientSecrets(count={len(self._secrets)}, any_secret={self._any_secret})"

    def to_json(self) -> dict[str, Any]:
        """Return what a restart needs (the secrets themselves: the state file is 0600)."""
        return {"secrets": list(self._secrets), "any_secret": self._any_secret}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClientSecrets:
        """Rebuild the secrets `to_json` described (raises TypeError/ValueError/KeyError)."""
        stored = data["secrets"]
        if not isinstance(stored, list) or not all(isinstance(s, str) and s for s in stored):
            raise ValueError("secrets must be a list of non-empty strings")
        if len(stored) > MAX_CLIENT_SECRETS:
            raise ValueError(f"more than {MAX_CLIENT_SECRETS} secrets")
        return cls(stored, any_secret=bool(data["any_secret"]))


class AppTokens:
    """Application tokens issued by the IAM token endpoint."""

    def __init__(self) -> None:
        self._tokens: dict[str, AppToken] = {}
        self._issued: list[str] = []

    def issue(self, client_id: str, *, now_s: float, ttl_s: float) -> IssuedAppToken:
        """Issue a new application token for `client_id`."""
        self._forget_expired(now_s)
        token = secrets.token_urlsafe(32)
        self._issued.append(token)
        self._tokens[token] = AppToken(client_id=client_id, expires_at_s=now_s + ttl_s)
        return IssuedAppToken(access_token=token, expires_in_s=round(ttl_s))

    def authenticate(self, token: str, *, now_s: float) -> AppToken | None:
        """Return the application token's record if it is known and unexpired."""
        record = self._tokens.get(token)
        if record is None or record.expires_at_s <= now_s:
            return None
        return record

    def issued_secrets(self) -> list[str]:
        """Return every application token ever issued (a testing hook for leak scans)."""
        return list(self._issued)

    def _forget_expired(self, now_s: float) -> None:
        """Drop expired tokens (a long benchmark asks for one an hour, for days)."""
        expired = [token for token, record in self._tokens.items() if record.expires_at_s <= now_s]
        for token in expired:
            del self._tokens[token]

    def to_json(self, *, now_s: float) -> dict[str, dict[str, Any]]:
        """Return the tokens still valid at `now_s`, by value."""
        return {
            token: {"client_id": record.client_id, "expires_at_s": record.expires_at_s}
            for token, record in self._tokens.items()
            if record.expires_at_s > now_s
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AppTokens:
        """Rebuild the tokens `to_json` described (raises TypeError/ValueError/KeyError)."""
        tokens = cls()
        for token, item in data.items():
            tokens._tokens[str(token)] = AppToken(
                client_id=str(item["client_id"]), expires_at_s=float(item["expires_at_s"])
            )
        return tokens


class Iam:
    """The application's secrets and tokens (the IAM host of one simulator)."""

    def __init__(self, *, client_secret: str | None, additional: tuple[str, ...]) -> None:
        self.secrets = ClientSecrets.configured(client_secret, additional)
        self.tokens = AppTokens()

    def to_json(self, *, now_s: float) -> dict[str, Any]:
        """Return what a restart needs: the secrets and the tokens still valid."""
        return {"secrets": self.secrets.to_json(), "tokens": self.tokens.to_json(now_s=now_s)}

    def restore(self, data: dict[str, Any], *, configured: tuple[str, ...]) -> None:
        """Take back what `to_json` returned; the secrets the simulator is started with
        stay valid (raises TypeError/ValueError/KeyError on a malformed description)."""
        self.secrets = ClientSecrets.from_json(data["secrets"])
        for secret in configured:
            self.secrets.ensure(secret)
        self.tokens = AppTokens.from_json(data["tokens"])
