"""Token encryption at rest: AES-256-GCM under a keyring of named keys.

A ciphertext carries everything but the key needed to decrypt it:

    byte 0           format version (1)
    byte 1           n, the length of the key id
    bytes 2 .. 2+n   the key id (ASCII)
    next 12 bytes    a random nonce
    the rest         the AES-GCM ciphertext and its 16-byte tag

The associated data is the header plus the caller's context (which row and column the
value belongs to), so a ciphertext copied to another row, or with an edited header, fails
to decrypt. Failing to decrypt raises `TokenDecryptionError`: there is no fallback to
plaintext or to another key, ever.

Keys are configured as `KEY_ID:BASE64URL_32_BYTES` entries separated by commas, the first
being the active (encrypting) key, e.g. `VG_TOKEN_KEYS="k2:…,k1:…"`; older keys stay listed
for as long as rows encrypted under them exist. Without configuration a development key is
generated once under the var directory.

    Exception
    └── TokenDecryptionError   a ciphertext could not be decrypted
        └── UnknownKeyError    it names a key this keyring lacks (rotated in elsewhere?)
    ValueError
    └── KeyConfigError         the key configuration is unusable
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
FORMAT_VERSION = 1
DEV_KEY_FILE = "dev-token-key"
DEV_KEY_ID = "dev"
KEY_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class TokenDecryptionError(Exception):
    """A ciphertext failed to decrypt: unknown key, wrong row, corrupted or tampered."""


class UnknownKeyError(TokenDecryptionError):
    """A ciphertext names a key this keyring does not hold: typically a key that another
    replica, configured first, already encrypts with (`key_id` says which)."""

    def __init__(self, key_id: str) -> None:
        super().__init__(f"no key {key_id!r} in the keyring")
        self.key_id = key_id


class KeyConfigError(ValueError):
    """The token key configuration is malformed (the message never shows key material)."""


class Keyring:
    """Named 256-bit keys; the active one encrypts, every one of them decrypts."""

    __slots__ = ("_active", "_keys")

    def __init__(self, keys: Mapping[str, bytes], *, active: str) -> None:
        for key_id, key in keys.items():
            if not KEY_ID_PATTERN.fullmatch(key_id):
                raise KeyConfigError(f"key id {key_id!r} must match {KEY_ID_PATTERN.pattern}")
            if len(key) != KEY_BYTES:
                raise KeyConfigError(f"key {key_id!r} must be {KEY_BYTES} bytes")
        if active not in keys:
            raise KeyConfigError(f"the active key {active!r} is not in the keyring")
        self._keys = dict(keys)
        self._active = active

    @property
    def active_key_id(self) -> str:
        """Return the id of the key new ciphertexts are made with."""
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Return the ids of every key, the active one first."""
        return (self._active, *(key_id for key_id in self._keys if key_id != self._active))

    def derive(self, purpose: bytes) -> tuple[bytes, ...]:
        """Return one 256-bit key per key for another `purpose` (HKDF-SHA256, `purpose` as
        its info), the active key's first: keys that rotate with these and reveal nothing
        of them (ListVehicles page tokens are signed with such keys)."""
        return tuple(
            HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=purpose).derive(
                self._keys[key_id]
            )
            for key_id in self.key_ids
        )

    @classmethod
    def from_config(cls, value: str) -> Keyring:
        """Parse `KEY_ID:BASE64URL_KEY[,KEY_ID:BASE64URL_KEY…]`; the first key is active."""
        keys: dict[str, bytes] = {}
        entries = [entry.strip() for entry in value.split(",") if entry.strip()]
        for position, entry in enumerate(entries, start=1):
            key_id, separator, encoded = entry.partition(":")
            if not separator or not key_id.strip():
                raise KeyConfigError(f"key entry {position} is not KEY_ID:BASE64URL_KEY")
            key_id = key_id.strip()
            if key_id in keys:
                raise KeyConfigError(f"key id {key_id!r} is listed twice")
            keys[key_id] = _decode_key(key_id, encoded.strip())
        if not keys:
            raise KeyConfigError("no token key is configured")
        return cls(keys, active=next(iter(keys)))

    @classmethod
    def development(cls, var_dir: Path, *, create: bool = True) -> Keyring:
        """Load the development key under `var_dir`, generating it (mode 0600) when missing
        (or, with `create=False`, refusing: KeyConfigError)."""
        path = var_dir / DEV_KEY_FILE
        if not path.exists():
            if not create:
                raise KeyConfigError(f"no development key at {path} (and VG_TOKEN_KEYS is unset)")
            _create_private_file(path, generate_key_entry(DEV_KEY_ID) + "\n")
        if os.name == "posix" and path.stat().st_mode & 0o077:
            raise KeyConfigError(f"{path} must be readable by its owner only (chmod 600)")
        return cls.from_config(path.read_text(encoding="ascii"))

    def __repr__(self) -> str:
        return f"Keyring(active={self._active!r}, key_ids={self.key_ids!r})"


def load_keyring(configured: str | None, *, var_dir: Path, create: bool = True) -> Keyring:
    """Return the configured keyring, or the development key when nothing is configured
    (generated when missing, unless `create` is False)."""
    if configured is None:
        return Keyring.development(var_dir, create=create)
    return Keyring.from_config(configured)


def generate_key_entry(key_id: str) -> str:
    """Return a new random key as a configuration entry `KEY_ID:BASE64URL_KEY`."""
    encoded = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")
    return f"{key_id}:{encoded.rstrip('=')}"


class TokenCipher:
    """Encrypt and decrypt small secrets with AES-256-GCM, bound to a context."""

    __slots__ = ("_aeads", "_keyring")

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self._aeads = {key_id: AESGCM(key) for key_id, key in keyring._keys.items()}

    @property
    def active_key_id(self) -> str:
        """Return the id of the key `encrypt` uses."""
        return self._keyring.active_key_id

    def encrypt(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt under the active key with a fresh nonce; `context` must match to decrypt."""
        key_id = self._keyring.active_key_id
        header = _header(key_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        return header + nonce + self._aeads[key_id].encrypt(nonce, plaintext, header + context)

    def decrypt(self, ciphertext: bytes, *, context: bytes) -> bytes:
        """Decrypt a ciphertext made for `context`, or raise TokenDecryptionError."""
        key_id, header_length = _parse_header(ciphertext)
        aead = self._aeads.get(key_id)
        if aead is None:
            raise UnknownKeyError(key_id)
        body = ciphertext[header_length:]
        if len(body) < NONCE_BYTES + TAG_BYTES:
            raise TokenDecryptionError("the ciphertext is truncated")
        nonce, sealed = body[:NONCE_BYTES], body[NONCE_BYTES:]
        try:
            return aead.decrypt(nonce, sealed, ciphertext[:header_length] + context)
        except InvalidTag as exc:
            raise TokenDecryptionError(
                "the ciphertext failed authentication (wrong key or row, or tampered)"
            ) from exc

    def __repr__(self) -> str:
        return f"TokenCipher({self._keyring!r})"


def key_id_of(ciphertext: bytes) -> str:
    """Return the id of the key a ciphertext was made with (for re-encryption sweeps)."""
    return _parse_header(ciphertext)[0]


def _parse_header(ciphertext: bytes) -> tuple[str, int]:
    """Return the key id a ciphertext names and the length of its header."""
    if len(ciphertext) < 2 or ciphertext[0] != FORMAT_VERSION:
        raise TokenDecryptionError("not a token ciphertext of a known format")
    header_length = 2 + ciphertext[1]
    try:
        key_id = ciphertext[2:header_length].decode("ascii")
    except UnicodeDecodeError as exc:
        raise TokenDecryptionError("the ciphertext names no readable key id") from exc
    if len(ciphertext) < header_length or not KEY_ID_PATTERN.fullmatch(key_id):
        raise TokenDecryptionError("the ciphertext names no readable key id")
    return key_id, header_length


def _header(key_id: str) -> bytes:
    """Return the ciphertext header: the format version and the key id."""
    encoded = key_id.encode("ascii")
    return bytes([FORMAT_VERSION, len(encoded)]) + encoded


def _decode_key(key_id: str, encoded: str) -> bytes:
    """Decode one base64url key (padding optional) and check its length."""
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
    except ValueError as exc:  # binascii.Error included
        raise KeyConfigError(f"key {key_id!r} is not valid base64url") from exc
    if len(key) != KEY_BYTES:
        raise KeyConfigError(f"key {key_id!r} must decode to {KEY_BYTES} bytes")
    return key


def _create_private_file(path: Path, content: str) -> None:
    """Create `path` with mode 0600 and its full content at once; keep it if it exists."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        # link() never replaces: when two processes race, the first key wins for both.
        with contextlib.suppress(FileExistsError):
            os.link(temporary, path)
    finally:
        os.unlink(temporary)
