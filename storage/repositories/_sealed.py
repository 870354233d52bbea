"""Opening a stored ciphertext the way every repository of tokens must: a key this replica
lacks is the core's `KeyUnavailable` (another replica, configured first, already encrypts
with it), anything else that fails to decrypt propagates as `TokenDecryptionError`."""

from __future__ import annotations

from gateway.core.errors import KeyUnavailable
from storage.crypto import TokenCipher, UnknownKeyError

KEY_RETRY_AFTER_S = 1.0
"""The RetryInfo of KEY_UNAVAILABLE: soon, and (the load balancer drains us) elsewhere."""


def unseal(cipher: TokenCipher, ciphertext: bytes, *, context: bytes) -> bytes:
    """Decrypt a stored ciphertext made for `context`; KeyUnavailable for a missing key."""
    try:
        return cipher.decrypt(ciphertext, context=context)
    except UnknownKeyError as missing:
        raise KeyUnavailable(
            f"this replica lacks token key {missing.key_id!r}: another replica serves "
            "the call; restart this one with the key in VG_TOKEN_KEYS",
            metadata={"key_id": missing.key_id},
            retry_after_s=KEY_RETRY_AFTER_S,
        ) from None
