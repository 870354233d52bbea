"""ListVehicles page tokens: opaque, bounded, signed, and bound to the listing's filter.

A token is the URL-safe base64 (unpadded) of

    byte 0        format version (1)
    then          the status filter (`ConnectionStatus` value, empty for none), a NUL byte,
                  and the id of the last vehicle of the page (UTF-8)
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
_TAG_BYTES = hashlib.sha256().digest_size
_FIELD = "page_token"


class PageTokens:
    """Issue and check the page tokens of ListVehicles."""

    __slots__ = ("_keys",)

    def __init__(self, keys: Sequence[bytes] = ()) -> None:
        """`keys`: the signing keys, the one to sign with first; empty: a random key."""
        self._keys = tuple(keys) or (secrets.token_bytes(32),)
        if any(len(key) < 16 for key in self._keys):
            raise ValueError("page token keys must be at least 128 bits")

    def issue(self, after_id: str, status: ConnectionStatus | None) -> str:
        """Return the token for the page after `after_id` under this filter."""
        payload = bytes([_VERSION]) + _filter(status) + b"\0" + after_id.encode()
        tag = hmac.digest(self._keys[0], payload, "sha256")
        return base64.urlsafe_b64encode(payload + tag).decode("ascii").rstrip("=")

    def resume_after(self, token: str, status: ConnectionStatus | None) -> str | None:
        """Return the vehicle id a token resumes after (None for no token), or raise
        InvalidArgument naming `page_token`."""
        if not token:
            return None
        if validation.page_token(_FIELD, token) is not None:
            raise _not_issued()
        payload = self._verified(token)
        filtered, _, after_id = payload[1:].partition(b"\0")
        if filtered != _filter(status):
            raise InvalidArgument.of(_FIELD, "belongs to a listing with another status filter")
        return after_id.decode()

    def _verified(self, token: str) -> bytes:
        """Return the payload of a token one of the keys signed, or raise."""
        try:
            raw = base64.b64decode(token + "=" * (-len(token) % 4), altchars=b"-_", validate=True)
        except (binascii.Error, ValueError):
            raise _not_issued() from None
        payload, tag = raw[:-_TAG_BYTES], raw[-_TAG_BYTES:]
        if len(raw) <= _TAG_BYTES or payload[0] != _VERSION:
            raise _not_issued()
        if not any(
            hmac.compare_digest(tag, hmac.digest(key, payload, "sha256")) for key in self._keys
        ):
            raise _not_issued()
        return payload

    def __repr__(self) -> str:
        return f"PageTokens(keys={len(self._keys)})"


def _filter(status: ConnectionStatus | None) -> bytes:
    """Return the status filter as the token carries it."""
    return status.value.encode("ascii") if status is not None else b""


def _not_issued() -> InvalidArgument:
    return InvalidArgument.of(_FIELD, "is not a token this service issued")
