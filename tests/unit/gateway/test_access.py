"""The access policy on its own: parsing (every error names its entry), roles, callers by
certificate name or token digest."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.access import AccessPolicy, PolicyError, token_digest
from gateway.core.errors import Refusal, Unauthenticated
from gateway.core.model import TelemetryField

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
UNLOCK = "/vehiclegateway.v1.VehicleGateway/Unlock"
TELEMETRY = "/vehiclegateway.v1.VehicleGateway/GetTelemetry"


def policy(**overrides: Any) -> dict[str, Any]:
    """A valid policy document, with top-level keys replaced by `overrides`."""
    document: dict[str, Any] = {
        "roles": {
            "billing": {"methods": ["GetTelemetry"], "telemetry_fields": ["ODOMETER"]},
            "probe": {"methods": ["grpc.health.v1.Health/*"]},
            "admin": {"methods": ["*"]},
        },
        "callers": [
            {
                "name": "billing-service",
                "roles": ["billing", "probe"],
                "certificate_names": ["billing.internal"],
                "token_sha256": [token_digest("billing-secret")],
            },
            {"name": "ops", "roles": ["admin"], "certificate_names": ["ops.internal"]},
        ],
    }
    document.update(overrides)
    return document


def test_callers_are_found_by_certificate_name_or_token() -> None:
    """A certificate name or the token whose digest is listed finds the caller; others none."""
    parsed = AccessPolicy.from_mapping(policy())
    by_certificate = parsed.by_certificate(["something-else", "billing.internal"])
    assert by_certificate is not None
    assert by_certificate.name == "billing-service"
    by_token = parsed.by_token("billing-secret")
    assert by_token is not None
    assert by_token.name == "billing-service"
    assert parsed.by_token("billing-secret ") is None
    assert parsed.by_certificate(["stranger.internal"]) is None


def test_roles_allow_short_full_and_wildcard_method_names() -> None:
    """Short names mean the gateway's RPCs, `service/*` a whole service, `*` everything."""
    parsed = AccessPolicy.from_mapping(policy())
    billing = parsed.by_token("billing-secret")
    ops = parsed.by_certificate(["ops.internal"])
    assert billing is not None
    assert ops is not None
    assert billing.allows(TELEMETRY)
    assert billing.allows(HEALTH_CHECK)
    assert not billing.allows(UNLOCK)
    assert ops.allows(UNLOCK)
    assert ops.allows(HEALTH_CHECK)
    assert billing.readable_fields(TELEMETRY) == {TelemetryField.ODOMETER}
    assert ops.readable_fields(TELEMETRY) == set(TelemetryField)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"users": []}, "unknown top-level key 'users'"),
        ({"roles": {"x": {"methods": "Unlock"}}}, r"roles\.x\.methods must be a list"),
        ({"roles": {"x": {"telemetry_fields": ["SPEED"]}}}, r"roles\.x\.telemetry_fields"),
        ({"roles": {"x": {"method": ["Unlock"]}}}, r"roles\.x: unknown key 'method'"),
        ({"callers": {"name": "x"}}, "array of tables"),
        ({"callers": [{"roles": [], "certificate_names": ["a"]}]}, r"callers\[0\]\.name"),
        ({"callers": [{"name": "x", "roles": ["ghost"]}]}, "no role 'ghost'"),
        ({"callers": [{"name": "x", "token_sha256": ["abc"]}]}, r"token_sha256\[0\]"),
        ({"callers": [{"name": "x"}]}, "give certificate_names or token_sha256"),
        (
            {"callers": [{"name": "x", "certificate_names": ["a"]}] * 2},
            "'x' is named twice",
        ),
        ({"certificates": {"uri_sans": "yes"}}, r"certificates\.uri_sans must be true or false"),
        ({"certificates": {"emails": True}}, "certificates: unknown key 'emails'"),
        (
            {"callers": [{"name": "x", "certificate_names": ["a", "spiffe://fleet/x"]}]},
            r"callers\[0\]\.certificate_names: 'spiffe://fleet/x' is a URI.*uri_sans = true",
        ),
    ],
)
def test_a_malformed_policy_names_the_entry(overrides: dict[str, Any], message: str) -> None:
    """Each mistake is refused with the path of the entry that holds it."""
    with pytest.raises(PolicyError, match=message):
        AccessPolicy.from_mapping(policy(**overrides))


def test_the_policy_repr_shows_callers_not_digests() -> None:
    """The repr names the callers and holds no token digest."""
    text = repr(AccessPolicy.from_mapping(policy()))
    assert "billing-service" in text
    assert token_digest("billing-secret") not in text


def test_a_certificate_naming_two_callers_names_nobody() -> None:
    """Names that belong to two callers are refused (UNAUTHENTICATED), never resolved to
    whichever caller the policy lists first."""
    parsed = AccessPolicy.from_mapping(policy())
    with pytest.raises(Unauthenticated) as refused:
        parsed.by_certificate(["billing.internal", "ops.internal"])
    assert refused.value.refusal is Refusal.CERTIFICATE_AMBIGUOUS
    assert "more than one caller" in refused.value.message


def test_uri_names_are_accepted_only_when_the_policy_says_so() -> None:
    """`[certificates] uri_sans = true` lets callers list URI SANs (SPIFFE ids); without
    it the policy says URI SANs name nobody."""
    spiffe = {"name": "fleet", "roles": ["admin"], "certificate_names": ["spiffe://fleet/a"]}
    parsed = AccessPolicy.from_mapping(policy(callers=[spiffe], certificates={"uri_sans": True}))
    assert parsed.uri_sans
    found = parsed.by_certificate(["spiffe://fleet/a"])
    assert found is not None
    assert found.name == "fleet"
    assert not AccessPolicy.from_mapping(policy()).uri_sans
