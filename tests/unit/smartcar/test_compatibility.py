"""SmartcarCompatibility: the request it sends, the answers it reads, the ones it refuses."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from clients.smartcar import (
    AuthenticationError,
    Capability,
    Compatibility,
    Secret,
    SmartcarCompatibility,
    SmartcarProtocolError,
    ValidationError,
)
from tests.unit.smartcar.fakes import (
    CLIENT_SECRET,
    CREDENTIALS,
    ENDPOINTS,
    FakeSmartcar,
    fixed_clock,
)

VIN = "5YJ3E1EA7KF317000"
ANSWER = {
    "compatible": True,
    "reason": None,
    "capabilities": [
        {
            "capable": False,
            "endpoint": "/engine/oil",
            "permission": "read_engine_oil",
            "reason": "SMARTCAR_NOT_CAPABLE",
        },
        {"capable": True, "endpoint": "/battery", "permission": "read_battery", "reason": None},
    ],
}


async def test_asks_by_vin_scope_and_country_with_basic_client_credentials(
    fake: FakeSmartcar, compatibility: SmartcarCompatibility
) -> None:
    """GET {api origin}/v2.0/compatibility with the VIN, the space-separated scope and the
    country, the application authenticated by Basic client id and secret."""
    fake.reply(200, json_body=ANSWER, headers={"sc-request-id": "req-7"})
    answer = await compatibility.by_vin(
        VIN, scopes=["read_battery", "read_engine_oil"], country="US"
    )
    request = fake.last
    parts = urlsplit(str(request.url))
    assert (request.method, parts.netloc, parts.path) == (
        "GET",
        "api.sc.test",
        "/v2.0/compatibility",
    )
    assert parse_qs(parts.query) == {
        "vin": [VIN],
        "scope": ["read_battery read_engine_oil"],
        "country": ["US"],
    }
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert (scheme, base64.b64decode(encoded).decode()) == (
        "Basic",
        f"client-123:{CLIENT_SECRET.reveal()}",
    )
    assert answer.meta.request_id == "req-7"
    assert answer.value == Compatibility(
        compatible=True,
        reason=None,
        capabilities=(
            Capability(
                permission="read_engine_oil",
                endpoint="/engine/oil",
                capable=False,
                reason="SMARTCAR_NOT_CAPABLE",
            ),
            Capability(permission="read_battery", endpoint="/battery", capable=True, reason=None),
        ),
    )


async def test_an_incompatible_car_and_an_answer_without_capabilities_are_read(
    fake: FakeSmartcar, compatibility: SmartcarCompatibility
) -> None:
    """`compatible: false` with its reason, and an answer with neither reason nor
    capabilities (API v1.0's shape), are both read: what is absent is none."""
    fake.reply(200, json_body={"compatible": False, "reason": "MAKE_NOT_COMPATIBLE"})
    fake.reply(200, json_body={"compatible": True})
    refused = await compatibility.by_vin(VIN, scopes=["read_odometer"], country="DE")
    bare = await compatibility.by_vin(VIN, scopes=["read_odometer"], country="DE")
    assert refused.value == Compatibility(compatible=False, reason="MAKE_NOT_COMPATIBLE")
    assert bare.value == Compatibility(compatible=True, reason=None)


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"reason": None},
        {"compatible": "yes"},
        {"compatible": True, "capabilities": {"permission": "read_vin"}},
        {"compatible": True, "capabilities": [{"permission": "read_vin", "capable": True}]},
        {"compatible": True, "capabilities": [{"endpoint": "/vin", "capable": True}]},
        {"compatible": False, "reason": "X" * 257},
    ],
)
async def test_a_malformed_answer_is_a_protocol_error(
    fake: FakeSmartcar, compatibility: SmartcarCompatibility, body: Any
) -> None:
    """An answer that is not the documented shape is SmartcarProtocolError, never a crash."""
    fake.reply(200, json_body=body)
    with pytest.raises(SmartcarProtocolError):
        await compatibility.by_vin(VIN, scopes=["read_vin"], country="US")


async def test_smartcars_refusals_are_its_errors_without_the_client_secret(
    fake: FakeSmartcar, compatibility: SmartcarCompatibility
) -> None:
    """A 401 for the client credentials and a 400 for the request are Smartcar's errors,
    and none of them carries the client secret."""
    secret = CLIENT_SECRET.reveal()
    fake.reply(401, json_body={"type": "AUTHENTICATION", "description": f"bad secret {secret}"})
    fake.reply(400, json_body={"type": "VALIDATION", "code": "PARAMETER"})
    with pytest.raises(AuthenticationError) as refused:
        await compatibility.by_vin(VIN, scopes=["read_vin"], country="US")
    with pytest.raises(ValidationError):
        await compatibility.by_vin(VIN, scopes=["read_vin"], country="US")
    assert secret not in repr(refused.value)
    assert secret not in str(refused.value.description)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"vin": "5YJ3E1EA7KF31700"}, "vin"),
        ({"vin": "5YJ3E1EA7KF31700O"}, "vin"),
        ({"vin": "5yj3e1ea7kf317000"}, "vin"),
        ({"country": "USA"}, "country"),
        ({"country": "us"}, "country"),
        ({"scopes": []}, "scopes"),
        ({"scopes": "read_vin"}, "scopes"),
        ({"scopes": ["required:read_vin"]}, "scopes"),
    ],
)
async def test_malformed_arguments_are_refused_before_sending(
    fake: FakeSmartcar, compatibility: SmartcarCompatibility, kwargs: dict[str, Any], named: str
) -> None:
    """Bad arguments are a ValueError naming them, and nothing is sent."""
    arguments: dict[str, Any] = {"vin": VIN, "scopes": ["read_vin"], "country": "US", **kwargs}
    vin = arguments.pop("vin")
    with pytest.raises(ValueError, match=named):
        await compatibility.by_vin(vin, **arguments)
    assert fake.requests == []


async def test_a_rotated_out_secret_is_followed_by_the_next_and_the_accepted_one_kept(
    fake: FakeSmartcar, http: httpx.AsyncClient
) -> None:
    """With more client secrets, a 401 for one tries the next; the accepted one is tried
    first from then on, and only when every secret is refused is the 401 raised."""
    newer = Secret("newer-client-secret")
    client = SmartcarCompatibility(
        http=http,
        credentials=CREDENTIALS,
        endpoints=ENDPOINTS,
        clock=fixed_clock,
        additional_secrets=(newer,),
    )
    refused = {"type": "AUTHENTICATION", "description": "invalid client credentials"}
    fake.reply(401, json_body=refused)
    fake.reply(200, json_body=ANSWER)
    fake.reply(200, json_body=ANSWER)
    fake.reply(401, json_body=refused)
    fake.reply(401, json_body=refused)
    await client.by_vin(VIN, scopes=["read_vin"], country="US")
    await client.by_vin(VIN, scopes=["read_vin"], country="US")
    with pytest.raises(AuthenticationError):
        await client.by_vin(VIN, scopes=["read_vin"], country="US")
    used = [_basic_secret(r) for r in fake.requests]
    assert used == [
        CLIENT_SECRET.reveal(),
        newer.reveal(),
        newer.reveal(),
        newer.reveal(),
        CLIENT_SECRET.reveal(),
    ]


def _basic_secret(request: httpx.Request) -> str:
    """The client secret of a request's Basic authorization."""
    _, _, encoded = request.headers["authorization"].partition(" ")
    return base64.b64decode(encoded).decode().partition(":")[2]
