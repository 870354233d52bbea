"""Smartcar users, their connections to vehicles, and the OAuth codes and tokens of those.

Model (mirroring Smartcar's):

- A *user* is a vehicle owner's connected-services account. Connect's `user=<key>` maps one
  key to one user id, always the same for the same seed and key; without a key, a VIN that
  already has an owner brings back that owner (logging into the same OEM account), and
  anything else makes a new user.
- A *connection* links a user and a vehicle, with the permissions the user granted (the
  latest approval's: API V3 names the user per request, so a V3 call gets the
  connection's permissions). Connect creates connections when the user approves (before
  the code is exchanged, so V3 needs no exchange at all); `DELETE …/application`, the
  Management APIs, `DELETE /v3/users/{id}` and `/sim/vehicles/{id}/revoke` remove them.
- A *grant* is what one Connect approval gave one client: a user, vehicles and scopes. Its
  tokens (one access/refresh pair per code exchange or refresh) reach exactly those
  vehicles, and only while the connection each was approved on still exists: once a
  connection is removed, connecting the vehicle again gives new tokens, never revives old
  ones.

Tokens, following Smartcar's token-management pages:

- access tokens live `access_ttl_s` (7200 s) and stay valid until then even after a
  refresh ("access tokens will remain valid until their expiry when fetching a new pair");
- refresh tokens live `refresh_ttl_s` (60 days) and are single-use with a grace window ("a
  refresh token is invalidated 1 minute after use"): within `refresh_grace_s` of its first
  use, presenting it again succeeds and mints another, independent pair (every pair minted
  stays valid; the reuse is counted in stats as `refresh_token_reuses`); afterwards it is
  `invalid_grant`;
- a refresh whose grant no longer reaches any vehicle (every connection revoked) is
  `invalid_grant`: a revoked owner is something no refresh can fix;
- codes live `code_ttl_s` (10 min) and are single-use; `redirect_uri`, when sent to the
  token endpoint, must equal the one given to Connect; a code or refresh token is only good
  for the client it was issued to.

Error descriptions say why a grant failed but never repeat the code or token presented.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from dataclasses import dataclass
from typing import Any

from clients.simulator.error_bodies import OAuthError


@dataclass(frozen=True, kw_only=True)
class Grant:
    """What one Connect approval gave one client: a user's vehicles, with scopes."""

    id: str
    user_id: str
    client_id: str
    vehicle_ids: tuple[str, ...]
    scopes: tuple[str, ...]
    approved_serial: int


@dataclass(frozen=True, kw_only=True)
class TokenLifetimes:
    """How long codes and tokens live, and the refresh-token grace window (seconds)."""

    access_ttl_s: float
    refresh_ttl_s: float
    refresh_grace_s: float
    code_ttl_s: float


@dataclass(frozen=True, kw_only=True)
class IssuedTokens:
    """A freshly minted access/refresh pair."""

    access_token: str
    refresh_token: str
    expires_in_s: int
    refresh_expires_in_s: int

    def to_json(self) -> dict[str, Any]:
        """Return the token endpoint's success body."""
        return {
            "access_token": self.access_token,
            "token_type": "Bearer",
            "expires_in": self.expires_in_s,
            "refresh_token": self.refresh_token,
            "refresh_expires_in": self.refresh_expires_in_s,
        }


DEFAULT_SCOPES = (
    "read_vehicle_info",
    "read_vin",
    "read_location",
    "read_odometer",
    "read_battery",
    "read_fuel",
    "read_security",
    "control_security",
    "read_tires",
    "read_engine_oil",
    "read_charge",
    "control_charge",
)
"""What Connect grants when no scope is asked for: every permission the gateway uses."""


@dataclass(frozen=True, kw_only=True)
class Connection:
    """A user's connection to a vehicle, with the permissions granted."""

    user_id: str
    vehicle_id: str
    connected_at_s: float
    serial: int
    scopes: tuple[str, ...]
    updated_at_s: float | None = None
    """When the user last approved the connection again (None: never since it was made)."""


@dataclass(frozen=True, kw_only=True)
class _Code:
    """An authorization code waiting to be exchanged."""

    grant: Grant
    redirect_uri: str | None
    expires_at_s: float


@dataclass(kw_only=True)
class _Refresh:
    """A refresh token: its grant, expiry, and when it was first used."""

    grant: Grant
    expires_at_s: float
    used_at_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class _Access:
    """An access token: its grant and expiry."""

    grant: Grant
    expires_at_s: float


class Accounts:
    """Users, owners, connections, codes and tokens of one simulator."""

    def __init__(self, *, seed: int) -> None:
        self._seed = seed
        self._user_keys: dict[str, str] = {}
        self._anonymous_users = 0
        self._last_serial = 0
        self.owners: dict[str, str] = {}
        self.connections: dict[tuple[str, str], Connection] = {}
        self._codes: dict[str, _Code] = {}
        self._refresh: dict[str, _Refresh] = {}
        self._access: dict[str, _Access] = {}
        self._issued: list[str] = []

    def issued_secrets(self) -> list[str]:
        """Return every code, access and refresh token ever issued (a testing hook: leak
        scans look for them in a client's logs, database and answers)."""
        return list(self._issued)

    def user_for(self, key: str | None, *, owner_of: str | None = None) -> str:
        """Return the user id for a Connect `user` key (or the vehicle's owner, or a new one)."""
        if key is not None:
            if key not in self._user_keys:
                self._user_keys[key] = _derived_uuid(f"user:{self._seed}:{key}")
            return self._user_keys[key]
        if owner_of is not None and owner_of in self.owners:
            return self.owners[owner_of]
        self._anonymous_users += 1
        return _derived_uuid(f"anonymous-user:{self._seed}:{self._anonymous_users}")

    def owned_by(self, user_id: str) -> list[str]:
        """Return the vehicles whose owner is `user_id`."""
        return [vid for vid, owner in self.owners.items() if owner == user_id]

    def approve(
        self,
        *,
        user_id: str,
        client_id: str,
        vehicle_ids: list[str],
        scopes: tuple[str, ...],
        now_s: float,
    ) -> Grant:
        """Connect the user to the vehicles (as their owner) and return the new grant."""
        for vehicle_id in vehicle_ids:
            self.owners[vehicle_id] = user_id
            key = (user_id, vehicle_id)
            existing = self.connections.get(key)
            if existing is not None:
                self.connections[key] = dataclasses.replace(
                    existing, scopes=scopes, updated_at_s=now_s
                )
                continue
            self._last_serial += 1
            self.connections[key] = Connection(
                user_id=user_id,
                vehicle_id=vehicle_id,
                connected_at_s=now_s,
                serial=self._last_serial,
                scopes=scopes,
            )
        return Grant(
            id=str(uuid.uuid4()),
            user_id=user_id,
            client_id=client_id,
            vehicle_ids=tuple(vehicle_ids),
            scopes=scopes,
            approved_serial=self._last_serial,
        )

    def issue_code(self, grant: Grant, *, redirect_uri: str | None, expires_at_s: float) -> str:
        """Return a new single-use authorization code for `grant`."""
        code = str(uuid.uuid4())
        self._issued.append(code)
        self._codes[code] = _Code(grant=grant, redirect_uri=redirect_uri, expires_at_s=expires_at_s)
        return code

    def redeem_code(
        self,
        code: str,
        *,
        client_id: str,
        redirect_uri: str | None,
        now_s: float,
        lifetimes: TokenLifetimes,
    ) -> IssuedTokens:
        """Exchange a code for a token pair, or raise `invalid_grant` saying why not."""
        issued = self._codes.pop(code, None)
        if issued is None:
            raise _invalid_grant("code", "it is unknown or was already used")
        if issued.expires_at_s <= now_s:
            raise _invalid_grant("code", "it has expired")
        if issued.grant.client_id != client_id:
            raise _invalid_grant("code", "it was issued to another client")
        if redirect_uri is not None and redirect_uri != issued.redirect_uri:
            raise _invalid_grant("code", "redirect_uri does not match the authorization request")
        return self._mint(issued.grant, now_s=now_s, lifetimes=lifetimes)

    def refresh(
        self, token: str, *, client_id: str, now_s: float, lifetimes: TokenLifetimes
    ) -> tuple[IssuedTokens, bool]:
        """Exchange a refresh token for a new pair; also return whether it was a grace reuse."""
        record = self._refresh.get(token)
        if record is None:
            raise _invalid_grant("refresh_token", "it is unknown")
        if record.grant.client_id != client_id:
            raise _invalid_grant("refresh_token", "it was issued to another client")
        if record.expires_at_s <= now_s:
            raise _invalid_grant("refresh_token", "it has expired")
        reused = record.used_at_s is not None
        if record.used_at_s is not None and now_s - record.used_at_s > lifetimes.refresh_grace_s:
            raise _invalid_grant("refresh_token", "it was already used")
        if not self.live_vehicles(record.grant):
            raise _invalid_grant("refresh_token", "access to every vehicle was revoked")
        if record.used_at_s is None:
            record.used_at_s = now_s
        return self._mint(record.grant, now_s=now_s, lifetimes=lifetimes), reused

    def authenticate(self, access_token: str, *, now_s: float) -> Grant | None:
        """Return the grant of a valid, unexpired access token (None otherwise)."""
        record = self._access.get(access_token)
        if record is None or record.expires_at_s <= now_s:
            return None
        return record.grant

    def live_vehicles(self, grant: Grant) -> list[str]:
        """Return the grant's vehicles its tokens may still call."""
        return [vid for vid in grant.vehicle_ids if self.reaches(grant, vid)]

    def reaches(self, grant: Grant, vehicle_id: str) -> bool:
        """Tell whether tokens of `grant` may call `vehicle_id`.

        The connection must be the one the grant was approved on: a connection made again
        after a revocation (a newer serial) does not bring old tokens back to life.
        """
        if vehicle_id not in grant.vehicle_ids:
            return False
        connection = self.connections.get((grant.user_id, vehicle_id))
        return connection is not None and connection.serial <= grant.approved_serial

    def delete_connections(
        self, *, vehicle_id: str | None, user_id: str | None
    ) -> list[Connection]:
        """Remove the connections matching both filters (None matches any) and return them."""
        doomed = [
            connection
            for connection in self.connections.values()
            if (vehicle_id is None or connection.vehicle_id == vehicle_id)
            and (user_id is None or connection.user_id == user_id)
        ]
        for connection in doomed:
            del self.connections[(connection.user_id, connection.vehicle_id)]
        return doomed

    def delete_user(self, user_id: str) -> list[Connection]:
        """Purge a user: remove every connection of theirs and their ownerships; return the
        connections removed."""
        for vehicle_id in self.owned_by(user_id):
            del self.owners[vehicle_id]
        return self.delete_connections(vehicle_id=None, user_id=user_id)

    def users_of(self, vehicle_id: str) -> list[str]:
        """Return the users currently connected to `vehicle_id`."""
        return [user for (user, vid) in self.connections if vid == vehicle_id]

    def _mint(self, grant: Grant, *, now_s: float, lifetimes: TokenLifetimes) -> IssuedTokens:
        """Create and remember a new access/refresh pair for `grant`."""
        access, refresh = str(uuid.uuid4()), str(uuid.uuid4())
        self._issued += (access, refresh)
        self._access[access] = _Access(grant=grant, expires_at_s=now_s + lifetimes.access_ttl_s)
        self._refresh[refresh] = _Refresh(grant=grant, expires_at_s=now_s + lifetimes.refresh_ttl_s)
        return IssuedTokens(
            access_token=access,
            refresh_token=refresh,
            expires_in_s=round(lifetimes.access_ttl_s),
            refresh_expires_in_s=round(lifetimes.refresh_ttl_s),
        )

    def to_json(self, *, now_s: float, lifetimes: TokenLifetimes) -> dict[str, Any]:
        """Return what a restart needs: users, owners, connections, and the codes and tokens
        still usable at `now_s` (expired or spent ones would only be refused again)."""
        grants: dict[str, Grant] = {}

        def grant_id(grant: Grant) -> str:
            grants[grant.id] = grant
            return grant.id

        codes = {
            code: {
                "grant": grant_id(c.grant),
                "redirect_uri": c.redirect_uri,
                "expires_at_s": c.expires_at_s,
            }
            for code, c in self._codes.items()
            if c.expires_at_s > now_s
        }
        refresh = {
            token: {
                "grant": grant_id(r.grant),
                "expires_at_s": r.expires_at_s,
                "used_at_s": r.used_at_s,
            }
            for token, r in self._refresh.items()
            if r.expires_at_s > now_s
            and (r.used_at_s is None or now_s - r.used_at_s <= lifetimes.refresh_grace_s)
        }
        access = {
            token: {"grant": grant_id(a.grant), "expires_at_s": a.expires_at_s}
            for token, a in self._access.items()
            if a.expires_at_s > now_s
        }
        return {
            "user_keys": dict(self._user_keys),
            "anonymous_users": self._anonymous_users,
            "last_serial": self._last_serial,
            "owners": dict(self.owners),
            "connections": [dataclasses.asdict(c) for c in self.connections.values()],
            "grants": [dataclasses.asdict(g) for g in grants.values()],
            "codes": codes,
            "refresh_tokens": refresh,
            "access_tokens": access,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], *, seed: int) -> Accounts:
        """Rebuild the accounts `to_json` described (raises KeyError/TypeError/ValueError
        on a malformed description)."""
        accounts = cls(seed=seed)
        accounts._user_keys = {str(k): str(v) for k, v in data["user_keys"].items()}
        accounts._anonymous_users = int(data["anonymous_users"])
        accounts._last_serial = int(data["last_serial"])
        accounts.owners = {str(k): str(v) for k, v in data["owners"].items()}
        for item in data["connections"]:
            # Files written before connections kept their permissions grant the defaults.
            scopes = tuple(item.get("scopes", DEFAULT_SCOPES))
            connection = Connection(**item | {"scopes": scopes})
            accounts.connections[(connection.user_id, connection.vehicle_id)] = connection
        grants = {
            item["id"]: Grant(
                **item
                | {"vehicle_ids": tuple(item["vehicle_ids"]), "scopes": tuple(item["scopes"])}
            )
            for item in data["grants"]
        }
        for code, item in data["codes"].items():
            accounts._codes[code] = _Code(
                grant=grants[item["grant"]],
                redirect_uri=item["redirect_uri"],
                expires_at_s=float(item["expires_at_s"]),
            )
        for token, item in data["refresh_tokens"].items():
            used = item["used_at_s"]
            accounts._refresh[token] = _Refresh(
                grant=grants[item["grant"]],
                expires_at_s=float(item["expires_at_s"]),
                used_at_s=None if used is None else float(used),
            )
        for token, item in data["access_tokens"].items():
            accounts._access[token] = _Access(
                grant=grants[item["grant"]], expires_at_s=float(item["expires_at_s"])
            )
        return accounts


def _invalid_grant(what: str, reason: str) -> OAuthError:
    """Return `invalid_grant` naming what was wrong, without echoing the value."""
    return OAuthError("invalid_grant", f"Invalid {what}: {reason}.")


def _derived_uuid(name: str) -> str:
    """Return a UUID v4-shaped id derived deterministically from `name`."""
    return str(uuid.UUID(int=random.Random(name).getrandbits(128), version=4))
