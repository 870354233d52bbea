"""Who may call what: callers, their roles, and the check made before any work.

A policy names roles (the RPCs they allow, and for GetTelemetry the fields they may read)
and callers (how each proves who it is, and its roles). A caller proves its identity with
a client certificate (a DNS name among its subject alternative names; a URI SAN only when
the policy says `[certificates] uri_sans = true`; never the subject common name nor an
email SAN) or a bearer token, of which the policy keeps only the SHA-256: the file never
holds a secret. A certificate whose names belong to two callers names nobody.

    [roles.billing]
    methods = ["GetTelemetry"]
    telemetry_fields = ["ODOMETER"]

    [[callers]]
    name = "billing-service"
    roles = ["billing"]
    certificate_names = ["billing.fleet.internal"]
    token_sha256 = ["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"]

    [certificates]        # optional: also accept URI SANs (e.g. SPIFFE ids) as names
    uri_sans = true

A method is an RPC of the gateway by its short name (`Unlock`), or any gRPC method by its
full name (`grpc.health.v1.Health/Check`); `*` after the slash, or alone, matches every
method of a service, or every method at all. `telemetry_fields` is left out to allow every
field. Parsing names every bad entry by its path (`roles.billing.methods[0]`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.core.errors import Refusal, Unauthenticated
from gateway.core.model import TelemetryField

GATEWAY_SERVICE = "vehiclegateway.v1.VehicleGateway"
"""Methods named without a service are this service's."""

_HEX = frozenset("0123456789abcdef")


class PolicyError(ValueError):
    """The access policy is malformed; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Role:
    """What a role may do: method patterns, and the telemetry fields it may read (None:
    all of them)."""

    methods: frozenset[str]
    telemetry_fields: frozenset[TelemetryField] | None = None

    def allows(self, method: str) -> bool:
        """Tell whether this role allows the full gRPC method name `/service/Method`."""
        service, _, name = method.strip("/").partition("/")
        return bool(
            {"*", f"{service}/*", f"{service}/{name}"} & self.methods
            or (service == GATEWAY_SERVICE and name in self.methods)
        )


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: its name (for audit and logs) and its roles."""

    name: str
    roles: tuple[Role, ...]

    def allows(self, method: str) -> bool:
        """Tell whether any of the caller's roles allows `method`."""
        return _allows(self, method)

    def readable_fields(self, method: str) -> frozenset[TelemetryField]:
        """Return the telemetry fields the caller may read through `method`."""
        return _readable_fields(self, method)


# A policy names a few callers and the server a few dozen methods: each answer is worked
# out once per caller and method, not on every call.
@functools.lru_cache(maxsize=4096)
def _allows(who: Caller, method: str) -> bool:
    return any(role.allows(method) for role in who.roles)


@functools.lru_cache(maxsize=4096)
def _readable_fields(who: Caller, method: str) -> frozenset[TelemetryField]:
    fields: set[TelemetryField] = set()
    for role in who.roles:
        if role.allows(method):
            fields |= ALL_FIELDS if role.telemetry_fields is None else role.telemetry_fields
    return frozenset(fields)


ALL_FIELDS = frozenset(TelemetryField)
"""Every telemetry field."""


@dataclass(frozen=True, slots=True)
class _Entry:
    caller: Caller
    certificate_names: frozenset[str]
    token_digests: tuple[bytes, ...]


class AccessPolicy:
    """The parsed policy: finds the caller behind a certificate or token."""

    def __init__(self, entries: Sequence[_Entry], *, uri_sans: bool = False) -> None:
        self._entries = tuple(entries)
        self.uri_sans = uri_sans
        """Whether a client certificate's URI SANs name callers too (DNS SANs always do)."""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> AccessPolicy:
        """Build the policy from a parsed TOML document; PolicyError names what is wrong."""
        unknown = set(data) - {"roles", "callers", "certificates"}
        if unknown:
            raise PolicyError(
                f"unknown top-level key {sorted(unknown)[0]!r}: want roles, callers, certificates"
            )
        uri_sans = _certificates(data.get("certificates", {}))
        roles = {
            name: _role(f"roles.{name}", spec)
            for name, spec in _table("roles", data.get("roles", {})).items()
        }
        callers = data.get("callers", [])
        if not isinstance(callers, list):
            raise PolicyError("callers must be an array of tables ([[callers]])")
        entries = [_entry(f"callers[{n}]", spec, roles) for n, spec in enumerate(callers)]
        names = [e.caller.name for e in entries]
        duplicate = next((name for name in names if names.count(name) > 1), None)
        if duplicate is not None:
            raise PolicyError(f"callers: {duplicate!r} is named twice")
        if not uri_sans:
            for n, entry in enumerate(entries):
                uri = next((name for name in sorted(entry.certificate_names) if ":" in name), None)
                if uri is not None:
                    raise PolicyError(
                        f"callers[{n}].certificate_names: {uri!r} is a URI, accepted only "
                        "with [certificates] uri_sans = true"
                    )
        return cls(entries, uri_sans=uri_sans)

    @property
    def caller_names(self) -> tuple[str, ...]:
        """Return every caller's name, in policy order."""
        return tuple(entry.caller.name for entry in self._entries)

    def by_token(self, token: str) -> Caller | None:
        """Return the caller holding this bearer token, comparing digests in constant time."""
        digest = hashlib.sha256(token.encode()).digest()
        found: Caller | None = None
        for entry in self._entries:
            for known in entry.token_digests:
                if hmac.compare_digest(digest, known):
                    found = entry.caller
        return found

    def by_certificate(self, names: Iterable[str]) -> Caller | None:
        """Return the caller a client certificate with these names (its DNS SANs, and URI
        SANs when `uri_sans`) belongs to, None when nobody's; raise Unauthenticated when
        the names belong to more than one caller: such a certificate identifies nobody."""
        presented = frozenset(names)
        owners = [entry.caller for entry in self._entries if entry.certificate_names & presented]
        if len(owners) > 1:
            raise Unauthenticated(
                "the client certificate names more than one caller of the access policy",
                refusal=Refusal.CERTIFICATE_AMBIGUOUS,
            )
        return owners[0] if owners else None

    def __repr__(self) -> str:
        return f"AccessPolicy(callers={list(self.caller_names)!r})"


def token_digest(token: str) -> str:
    """Return the hex SHA-256 of a bearer token: what the policy file stores."""
    return hashlib.sha256(token.encode()).hexdigest()


def _table(path: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path} must be a table")
    return value


def _strings(path: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{path} must be a list of non-empty strings")
    return value


def _certificates(spec: Any) -> bool:
    """Read the optional `[certificates]` table: whether URI SANs name callers."""
    spec = _table("certificates", spec)
    unknown = set(spec) - {"uri_sans"}
    if unknown:
        raise PolicyError(f"certificates: unknown key {sorted(unknown)[0]!r}")
    uri_sans = spec.get("uri_sans", False)
    if not isinstance(uri_sans, bool):
        raise PolicyError("certificates.uri_sans must be true or false")
    return uri_sans


def _role(path: str, spec: Any) -> Role:
    spec = _table(path, spec)
    unknown = set(spec) - {"methods", "telemetry_fields"}
    if unknown:
        raise PolicyError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    methods = frozenset(_strings(f"{path}.methods", spec.get("methods", [])))
    fields: frozenset[TelemetryField] | None = None
    if "telemetry_fields" in spec:
        names = _strings(f"{path}.telemetry_fields", spec["telemetry_fields"])
        try:
            fields = frozenset(TelemetryField[name.upper()] for name in names)
        except KeyError:
            known = ", ".join(f.name for f in TelemetryField)
            raise PolicyError(f"{path}.telemetry_fields: want some of {known}") from None
    return Role(methods=methods, telemetry_fields=fields)


def _entry(path: str, spec: Any, roles: Mapping[str, Role]) -> _Entry:
    spec = _table(path, spec)
    unknown = set(spec) - {"name", "roles", "certificate_names", "token_sha256"}
    if unknown:
        raise PolicyError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise PolicyError(f"{path}.name must be a non-empty string")
    role_names = _strings(f"{path}.roles", spec.get("roles", []))
    missing = [r for r in role_names if r not in roles]
    if missing:
        raise PolicyError(f"{path}.roles: no role {missing[0]!r} is defined")
    digests = []
    for n, text in enumerate(_strings(f"{path}.token_sha256", spec.get("token_sha256", []))):
        if len(text) != 64 or not set(text.lower()) <= _HEX:
            raise PolicyError(f"{path}.token_sha256[{n}] must be 64 hex digits (a SHA-256)")
        digests.append(bytes.fromhex(text))
    certificates = frozenset(
        _strings(f"{path}.certificate_names", spec.get("certificate_names", []))
    )
    if not digests and not certificates:
        raise PolicyError(f"{path}: give certificate_names or token_sha256, or both")
    caller = Caller(name=name, roles=tuple(roles[r] for r in role_names))
    return _Entry(caller=caller, certificate_names=certificates, token_digests=tuple(digests))
