"""The caller of a gRPC call: who it is (client certificate or bearer token) and whether the
access policy lets it make this call.

`AccessGuard.admit` runs first in every call frame (gateway.edge.grpc.interceptors), before the
request is looked at by anything else:

1. a client certificate verified by the TLS handshake (mTLS) names the caller by the DNS
   names among its subject alternative names (URI SANs too when the policy says
   `uri_sans`); never by its subject common name or an email SAN, which a CA fills in with
   less care; a certificate whose names belong to two callers is refused;
2. otherwise `authorization: Bearer <token>` metadata names it, accepted only over TLS or
   from a loopback peer (a token sent in clear over a network is as good as published);
3. no identity the policy knows → Unauthenticated; a method (or, for GetTelemetry, a
   field; for WatchVehicleEvents, a kind of event revealing a field) the caller's roles do
   not allow → AccessDenied. The rental RPCs answer readings too: those of fields the
   caller's roles may not read are left out (`visible_fields`), and so are the events
   that would reveal them (a lock state, a fuel or charge level) from WatchVehicleEvents.

Without a policy the gateway runs in development mode: every caller is `anonymous` and may
do anything. `gateway.app` allows that only on a loopback address and says so loudly.
"""

from __future__ import annotations

import functools
import ipaddress
import tomllib
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import grpc
import grpc.aio
from cryptography import x509

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.core import validation
from gateway.core.access import (
    ALL_FIELDS,
    GATEWAY_SERVICE,
    AccessPolicy,
    Caller,
    PolicyError,
    Role,
)
from gateway.core.errors import AccessDenied, Refusal, Unauthenticated
from gateway.core.model import TelemetryField
from gateway.core.vehicle_events import KIND_FIELDS, VehicleEventKind
from gateway.edge.grpc.convert import TELEMETRY_FIELDS
from gateway.edge.grpc.convert_events import requested_kinds

AUTHORIZATION_KEY = "authorization"
ANONYMOUS = Caller(name="anonymous", roles=(Role(methods=frozenset({"*"})),))
"""The caller of every call in development mode (no policy)."""

_GET_TELEMETRY = f"/{GATEWAY_SERVICE}/GetTelemetry"
_WATCH_EVENTS = f"/{GATEWAY_SERVICE}/WatchVehicleEvents"
_PEM_CERTIFICATE_KEY = "x509_pem_cert"
_LOOPBACK_PEERS = ("ipv4:127.", "ipv6:[::1]", "unix:")

caller: ContextVar[str | None] = ContextVar("caller", default=None)
"""The name of the caller of the gRPC call being served, for logs and the audit trail."""

_admitted: ContextVar[Caller | None] = ContextVar("admitted", default=None)
"""The caller the guard admitted for the call being served, with its roles."""

Context = grpc.aio.ServicerContext[Any, Any]


class AccessGuard:
    """Authenticates each call's caller and applies the access policy to it."""

    def __init__(self, policy: AccessPolicy | None) -> None:
        self._policy = policy

    @property
    def development(self) -> bool:
        """Tell whether there is no policy: every caller is anonymous and allowed."""
        return self._policy is None

    def admit(self, call: Context, method: str, request: Any) -> Caller:
        """Return the call's caller if the policy allows the call; raise otherwise."""
        who = ANONYMOUS if self._policy is None else self._identify(self._policy, call)
        caller.set(who.name)
        _admitted.set(who)
        if not who.allows(method):
            raise AccessDenied(
                f"caller {who.name!r} may not call {method}",
                refusal=Refusal.METHOD_DENIED,
                metadata={"caller": who.name, "method": method},
            )
        if method == _GET_TELEMETRY and isinstance(request, pb.GetTelemetryRequest):
            self._check_fields(who, method, request)
        if method == _WATCH_EVENTS and isinstance(request, pb.WatchVehicleEventsRequest):
            self._check_event_kinds(who, method, request)
        return who

    def _identify(self, policy: AccessPolicy, call: Context) -> Caller:
        context = call.auth_context() or {}
        secure = list(context.get("transport_security_type", ())) == [b"ssl"]
        names = certificate_names(context, uri_sans=policy.uri_sans)
        if names:
            found = policy.by_certificate(names)  # raises when the names are two callers'
            if found is not None:
                return found
        token = _bearer_token(call.invocation_metadata() or ())
        if token is not None:
            if not secure and not call.peer().startswith(_LOOPBACK_PEERS):
                raise Unauthenticated(
                    "a bearer token is accepted only over TLS or loopback",
                    refusal=Refusal.TOKEN_IN_CLEAR,
                )
            found = policy.by_token(token)
            if found is not None:
                return found
            raise Unauthenticated(
                "the bearer token is not known to the access policy", refusal=Refusal.TOKEN_UNKNOWN
            )
        if names:
            raise Unauthenticated(
                "the client certificate names no caller of the access policy",
                refusal=Refusal.CERTIFICATE_UNKNOWN,
            )
        raise Unauthenticated(
            "present a client certificate or an 'authorization: Bearer' token",
            refusal=Refusal.NO_CREDENTIALS,
        )

    @staticmethod
    def _check_fields(who: Caller, method: str, request: pb.GetTelemetryRequest) -> None:
        # Only as many values as a valid request may hold: a longer list is refused whole
        # (INVALID_ARGUMENT) before anything else loops over it.
        readable = who.readable_fields(method)
        if readable == ALL_FIELDS:
            return
        first = request.fields[: validation.MAX_TELEMETRY_FIELDS + 1]
        wanted = {TELEMETRY_FIELDS[v] for v in first if v in TELEMETRY_FIELDS}
        if not request.fields:
            wanted = set(ALL_FIELDS)
        refused = sorted(f.name for f in wanted - readable)
        if refused:
            raise AccessDenied(
                f"caller {who.name!r} may not read {', '.join(refused)}",
                refusal=Refusal.FIELDS_DENIED,
                metadata={"caller": who.name, "fields": ",".join(refused)},
            )

    @staticmethod
    def _check_event_kinds(who: Caller, method: str, request: pb.WatchVehicleEventsRequest) -> None:
        """Refuse event kinds asked for by name that reveal a field the caller may not read
        (asking for every kind streams those it may see)."""
        readable = who.readable_fields(method)
        refused = sorted(
            kind.value
            for kind in requested_kinds(request)
            if kind in KIND_FIELDS and KIND_FIELDS[kind] not in readable
        )
        if refused:
            fields = sorted({KIND_FIELDS[VehicleEventKind(k)].name for k in refused})
            raise AccessDenied(
                f"caller {who.name!r} may not see {', '.join(refused)} events: they show "
                f"{', '.join(fields)}, which it may not read",
                refusal=Refusal.FIELDS_DENIED,
                metadata={"caller": who.name, "fields": ",".join(fields)},
            )


def visible_fields(method: str) -> frozenset[TelemetryField]:
    """Return the telemetry fields the current call's caller may see in what `method`
    (its short name) answers: the `telemetry_fields` of its roles that allow the method.
    Rental readings are filtered by it, as GetTelemetry's fields are checked. Outside a
    call the guard admitted: none (a servicer wired without the guard shows no readings)."""
    who = _admitted.get()
    if who is None:
        return frozenset()
    return who.readable_fields(f"/{GATEWAY_SERVICE}/{method}")


def certificate_names(context: Mapping[str, Iterable[bytes]], *, uri_sans: bool) -> tuple[str, ...]:
    """Return the names a verified client certificate gives its holder: its DNS SANs, then
    (with `uri_sans`) its URI SANs; () without a certificate.

    Read from the certificate itself rather than grpc's `x509_subject_alternative_name`
    property, which mixes DNS, URI, email and IP SANs and so cannot tell them apart.
    """
    pem = next(iter(context.get(_PEM_CERTIFICATE_KEY, ())), None)
    if not pem:
        return ()
    dns, uris = _subject_alternative_names(bytes(pem))
    return dns + uris if uri_sans else dns


@functools.lru_cache(maxsize=1024)
def _subject_alternative_names(pem: bytes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return a PEM certificate's DNS and URI SANs (cached: callers reuse certificates)."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except (ValueError, x509.ExtensionNotFound):
        return (), ()
    names = extension.value
    dns = tuple(names.get_values_for_type(x509.DNSName))
    uris = tuple(names.get_values_for_type(x509.UniformResourceIdentifier))
    return dns, uris


def describe_peer(call: Context) -> str:
    """Name who made a refused call without a caller: its certificate's names, else its
    address (never a token)."""
    names = certificate_names(call.auth_context() or {}, uri_sans=True)
    if names:
        return ",".join(names)
    peer = call.peer() or "unknown"
    return peer.rsplit(":", 1)[0] if peer.startswith(("ipv4:", "ipv6:")) else peer


def _bearer_token(metadata: Iterable[tuple[str, Any]]) -> str | None:
    for key, value in metadata:
        if key == AUTHORIZATION_KEY and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class AccessConfigError(ValueError):
    """The access policy or TLS files cannot be used; the message names the file."""


def load_policy(path: Path) -> AccessPolicy:
    """Read the TOML access policy at `path`."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return AccessPolicy.from_mapping(data)
    except OSError as exc:
        raise AccessConfigError(f"access policy {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, PolicyError) as exc:
        raise AccessConfigError(f"access policy {path}: {exc}") from None


def server_credentials(
    *, certificate: Path, key: Path, client_ca: Path | None
) -> grpc.ServerCredentials:
    """Return TLS credentials for the gRPC port; with `client_ca`, mTLS: every caller must
    present a certificate that CA signed (grpc cannot ask for one without requiring it)."""
    try:
        chain, private_key = certificate.read_bytes(), key.read_bytes()
        roots = client_ca.read_bytes() if client_ca is not None else None
    except OSError as exc:
        raise AccessConfigError(f"TLS file {exc.filename}: {exc.strerror or exc}") from None
    return grpc.ssl_server_credentials(
        [(private_key, chain)], root_certificates=roots, require_client_auth=roots is not None
    )


def is_loopback(listen: str) -> bool:
    """Tell whether a HOST:PORT listen address binds only the loopback interface."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
