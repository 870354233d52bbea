"""Page tokens (ListVehicles, ListRentals): opaque, bounded, signed, and bound to the
listing and its filter.

A token is the URL-safe base64 (unpadded) of

    byte 0        format version: 1 for ListVehicles, 2 for any other listing
    version 1     the status filter (`ConnectionStatus` value, empty for none), a NUL byte,
                  and the id of the last vehicle of the page (UTF-8)
    version 2     the first 16 bytes of the SHA-256 of the listing's name and filters
                  (`issue_position`), then the position of the page's last item (UTF-8)
    last 32 bytes HMAC-SHA256 of everything before, under a signing key

Tokens are signed with the first key and verified with any of them, in constant time:
`gateway.app` derives one key per configured token-encryption key (HKDF, see
`storage.crypto.Keyring.derive`), so every replica sharing the keyring accepts every other's
tokens, and a token issued before a key rotation still works after it. Without keys a
random one is made: tokens then work only within the process (tests, a lone gateway).

Anything else — too long, not base64, a wrong signature, a payload the gateway would never
sign — is `InvalidArgument` naming `page_token`, and nothing of it is parsed before the
signature holds: nesting, surrogates or huge numbers never reach a parser.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence

from gateway.core import validation
from gateway.core.errors import InvalidArgument
from gateway.core.model import ConnectionStatus

KEY_PURPOSE = b"vehicle-gateway page tokens v1"
"""The HKDF `info` the signing keys are derived for; no other use derives the same keys."""

_VERSION = 1
_POSITION_VERSION = 2
_LISTING_BYTES = 16
_TAG_BYTES = hashlib.sha256().digest_size
_FIELD = "page_token"


class PageTokens:
    """Issue and check page tokens (ListVehicles', and those of other listings)."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        """`keys`: the signing keys, the one to sign with first; empty: a random key."""
        self._keys = tuple(keys) or (secrets.token_bytes(32),)
        if any(len(key) < 16 for key in self._keys):
            raise ValueError("page token keys must be at least 128 bits")

    def issue(self, after_id: str, status: ConnectionStatus | None) -> str:
        """Return the ListVehicles token for the page after `after_id` under this filter."""
        return self._signed(bytes([_VERSION]) + _filter(status) + b"\0" + after_id.encode())

    def resume_after(self, token: str, status: ConnectionStatus | None) -> str | None:
        """Return the vehicle id a ListVehicles token resumes after (None for no token), or
        raise InvalidArgument naming `page_token`."""
        payload = self._payload(token, _VERSION)
        if payload is None:
            return None
        filtered, _, after_id = payload.partition(b"\0")
        if filtered != _filter(status):
            raise InvalidArgument.of(_FIELD, "belongs to a listing with another status filter")
        return after_id.decode()

    def issue_position(self, listing: str, position: str) -> str:
        """Return the token for the page after `position` of `listing` (a string naming the
        listing and its filters, which the token is bound to)."""
        return self._signed(bytes([_POSITION_VERSION]) + _listing(listing) + position.encode())

    def resume_position(self, token: str, listing: str) -> str | None:
        """Return the position a token of `listing` resumes after (None for no token), or
        raise InvalidArgument naming `page_token`."""
        payload = self._payload(token, _POSITION_VERSION)
        if payload is None:
            return None
        if payload[:_LISTING_BYTES] != _listing(listing):
            raise InvalidArgument.of(_FIELD, "belongs to another listing or other filters")
        try:
            return payload[_LISTING_BYTES:].decode()
        except UnicodeDecodeError:  # signed by us, so never; but no crash on a bug either
            raise _not_issued() from None

    def _signed(self, payload: bytes) -> str:
        tag = hmac.digest(self._keys[0], payload, "sha256")
        return base64.urlsafe_b64encode(payload + tag).decode("ascii").rstrip("=")

    def _payload(self, token: str, version: int) -> bytes | None:
        """The signed payload of a token of `version`, without its version byte (None for
        no token); InvalidArgument for anything the gateway did not issue."""
        if not token:
            return None
        if validation.page_token(_FIELD, token) is not None:
            raise _not_issued()
        payload = self._verified(token)
        if payload[0] != version:
            raise InvalidArgument.of(_FIELD, "belongs to another listing")
        return payload[1:]

    def _verified(self, token: str) -> bytes:
        """Return the payload of a token one of the keys signed, or raise."""
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise _not_issued() from None
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if len(raw) <= _TAG_BYTES or payload[0] not in (_VERSION, _POSITION_VERSION):
            raise _not_issued()
        if not any(
            hmac.compare_digest(tag, hmac.digest(key, payload, "sha256")) for key in self._keys
        ):
            raise _not_issued()
        return payload

    def __repr__(self) -> str:
        return f"PageTokens(keys={len(self._keys)})"


def _listing(listing: str) -> bytes:
    """Return the fixed-size digest binding a token to its listing and filters."""
    return hashlib.sha256(listing.encode()).digest()[:_LISTING_BYTES]


def _filter(status: ConnectionStatus | None) -> bytes:
    """Return the status filter as the token carries it."""
    return status.value.encode("ascii") if status is not None else b""


def _not_issued() -> InvalidArgument:
    return InvalidArgument.of(_FIELD, "is not a token this service issued")
