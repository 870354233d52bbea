"""ListVehicles page tokens: signed, bound to their filter, survive key rotation, and refuse
everything the gateway did not issue with INVALID_ARGUMENT naming `page_token`."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.core.errors import InvalidArgument
from gateway.core.model import ConnectionStatus
from gateway.core.paging import PageTokens

OLD_KEY = b"o" * 32
NEW_KEY = b"n" * 32


def b64(raw: bytes) -> str:
    """Return unpadded URL-safe base64, the alphabet page tokens are written in."""
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


FORGED_PAGE_TOKENS = {
    "nested": b64(b"[" * 10_000 + b"]" * 10_000),
    "lone-surrogate": b64(b'{"after": "\\ud800", "status": null}'),
    "unsigned": b64(json.dumps({"after": "car-1", "status": None}).encode()),
    "oversized": "A" * 10_000,
    "garbage": "garbage",
}
"""Page tokens the gateway never issued, each sendable over gRPC: the first three are what
the unsigned JSON tokens of old accepted (INTERNAL for the first two)."""


def _refused(tokens: PageTokens, token: str, status: ConnectionStatus | None = None) -> str:
    """Return the description of the violation a refused token gets."""
    with pytest.raises(InvalidArgument) as caught:
        tokens.resume_after(token, status)
    (violation,) = caught.value.violations
    assert violation.field == "page_token"
    return violation.description


def test_a_token_resumes_after_its_vehicle_under_its_filter() -> None:
    """A token issued for a page resumes after its last vehicle; no token starts at the top."""
    tokens = PageTokens((NEW_KEY,))
    token = tokens.issue("car-9", ConnectionStatus.ACTIVE)
    assert tokens.resume_after(token, ConnectionStatus.ACTIVE) == "car-9"
    assert tokens.resume_after("", None) is None
    assert tokens.resume_after(tokens.issue("car-1", None), None) == "car-1"


def test_a_token_is_refused_under_another_filter() -> None:
    """A token from an ACTIVE listing does not page an unfiltered one."""
    tokens = PageTokens((NEW_KEY,))
    token = tokens.issue("car-9", ConnectionStatus.ACTIVE)
    assert "another status filter" in _refused(tokens, token, None)
    assert "another status filter" in _refused(tokens, token, ConnectionStatus.EXPIRED)


def test_a_token_signed_before_a_key_rotation_still_pages() -> None:
    """Tokens are signed with the first key and accepted under any configured key."""
    before = PageTokens((OLD_KEY,)).issue("car-3", None)
    after = PageTokens((NEW_KEY, OLD_KEY))
    assert after.resume_after(before, None) == "car-3"
    assert after.resume_after(after.issue("car-4", None), None) == "car-4"


def test_a_token_signed_with_an_unknown_key_is_refused() -> None:
    """A well-formed token under a key the gateway does not hold is not one it issued."""
    foreign = PageTokens((b"f" * 32,)).issue("car-3", None)
    assert "not a token this service issued" in _refused(PageTokens((NEW_KEY,)), foreign)


def test_every_tampered_character_is_refused() -> None:
    """Changing any one character of a token makes it a token the gateway did not issue."""
    tokens = PageTokens((NEW_KEY,))
    token = tokens.issue("car-9", ConnectionStatus.ACTIVE)
    for position in range(len(token)):
        replacement = "A" if token[position] != "A" else "B"
        tampered = token[:position] + replacement + token[position + 1 :]
        with pytest.raises(InvalidArgument):
            tokens.resume_after(tampered, ConnectionStatus.ACTIVE)


@pytest.mark.parametrize(
    "token",
    [
        *FORGED_PAGE_TOKENS.values(),
        "not a token!",
        "\ud800",
        "tok\ud800en",
        "x" * 513,
        b64(b"\x01"),
        b64(b"\x01" + b"\0" * 32),
        b64(b"\x02ACTIVE\0car-1" + b"\0" * 32),
        "A",
        "AAAAA",
    ],
    ids=lambda t: repr(t)[:24],
)
def test_anything_the_gateway_did_not_sign_is_refused(token: str) -> None:
    """Garbage, unsigned JSON (nested, lone surrogates), truncation, oversize: all refused
    as `page_token` is not a token this service issued, nothing parsed before the signature."""
    assert _refused(PageTokens((NEW_KEY,)), token) == "is not a token this service issued"


def test_issued_tokens_are_short_and_opaque() -> None:
    """A token for the longest id stays well under the 512-character cap and shows no JSON."""
    token = PageTokens((NEW_KEY,)).issue("v" * 128, ConnectionStatus.NOT_CONNECTED)
    assert len(token) < 512
    assert "{" not in base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("latin-1")


def test_short_keys_are_refused() -> None:
    """A signing key under 128 bits is a configuration bug, refused at construction."""
    with pytest.raises(ValueError, match="128 bits"):
        PageTokens((b"short",))


def test_a_positional_token_resumes_its_listing_only() -> None:
    """A token of another listing (ListRentals) resumes after its position under the same
    listing and filters; under other filters, or given to ListVehicles, it is refused, and
    a ListVehicles token is refused there."""
    tokens = PageTokens((NEW_KEY,))
    listing = "rentals\0car-1\0\0"
    token = tokens.issue_position(listing, "1700000000000000:r-9")
    assert tokens.resume_position(token, listing) == "1700000000000000:r-9"
    assert tokens.resume_position("", listing) is None
    with pytest.raises(InvalidArgument, match="other filters"):
        tokens.resume_position(token, "rentals\0car-2\0\0")
    assert "another listing" in _refused(tokens, token)
    with pytest.raises(InvalidArgument, match="another listing"):
        tokens.resume_position(tokens.issue("car-1", None), listing)


def test_a_positional_token_survives_key_rotation_and_refuses_forgeries() -> None:
    """Signed with the old key, a positional token still works once a new key signs; one
    signed by a key not configured, or forged, is not a token this service issued."""
    listing = "rentals\0\0\0"
    old = PageTokens((OLD_KEY,)).issue_position(listing, "1:r-1")
    assert PageTokens((NEW_KEY, OLD_KEY)).resume_position(old, listing) == "1:r-1"
    for forged in (*FORGED_PAGE_TOKENS.values(), old):
        with pytest.raises(InvalidArgument, match="not a token this service issued"):
            PageTokens((NEW_KEY,)).resume_position(forged, listing)
