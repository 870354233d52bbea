"""AES-256-GCM token encryption: keyring configuration, binding, tampering, rotation."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from pathlib import Path

import pytest

from storage.crypto import (
    DEV_KEY_FILE,
    KeyConfigError,
    Keyring,
    TokenCipher,
    TokenDecryptionError,
    generate_key_entry,
    key_id_of,
    load_keyring,
)

CONTEXT = b"smartcar_grants:g1:tokens"
PLAINTEXT = b'{"access_token": "a-secret", "refresh_token": "r-secret"}'
KEY_1 = secrets.token_bytes(32)
KEY_2 = secrets.token_bytes(32)


def b64(key: bytes) -> str:
    """Return a key as unpadded base64url, the configuration format."""
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


def cipher(*key_ids: str) -> TokenCipher:
    """Return a cipher over the named test keys, the first one active."""
    keys = {"k1": KEY_1, "k2": KEY_2}
    return TokenCipher(Keyring({key_id: keys[key_id] for key_id in key_ids}, active=key_ids[0]))


def flip(data: bytes, index: int) -> bytes:
    """Return `data` with one bit of byte `index` flipped."""
    changed = bytearray(data)
    changed[index] ^= 0x01
    return bytes(changed)


def test_round_trip() -> None:
    """What is encrypted for a context decrypts for that context."""
    sealed = cipher("k1").encrypt(PLAINTEXT, context=CONTEXT)
    assert PLAINTEXT not in sealed
    assert cipher("k1").decrypt(sealed, context=CONTEXT) == PLAINTEXT


def test_each_encryption_uses_a_fresh_nonce() -> None:
    """Encrypting the same plaintext twice gives different ciphertexts."""
    one = cipher("k1")
    assert one.encrypt(PLAINTEXT, context=CONTEXT) != one.encrypt(PLAINTEXT, context=CONTEXT)


def test_another_row_cannot_decrypt_it() -> None:
    """A ciphertext bound to one grant row fails for another row or column."""
    sealed = cipher("k1").encrypt(PLAINTEXT, context=CONTEXT)
    for wrong in (b"smartcar_grants:g2:tokens", b"smartcar_grants:g1:other", b""):
        with pytest.raises(TokenDecryptionError):
            cipher("k1").decrypt(sealed, context=wrong)


@pytest.mark.parametrize("index", [2, 3, 5, 20, -1])
def test_a_tampered_ciphertext_fails(index: int) -> None:
    """Flipping any bit (key id, nonce, body, tag) makes decryption fail."""
    sealed = cipher("k1", "k2").encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(TokenDecryptionError):
        cipher("k1", "k2").decrypt(flip(sealed, index), context=CONTEXT)


def test_a_relabelled_ciphertext_fails() -> None:
    """Pointing the header at another known key fails: the header is authenticated."""
    sealed = cipher("k1", "k2").encrypt(PLAINTEXT, context=CONTEXT)
    relabelled = sealed.replace(b"k1", b"k2", 1)
    with pytest.raises(TokenDecryptionError, match="authentication"):
        cipher("k1", "k2").decrypt(relabelled, context=CONTEXT)


@pytest.mark.parametrize("garbage", [b"", b"\x01", b"\x02\x02k1" + bytes(40), b"\x01\x02k1abc"])
def test_malformed_ciphertexts_fail(garbage: bytes) -> None:
    """Empty, truncated or unknown-format blobs raise TokenDecryptionError."""
    with pytest.raises(TokenDecryptionError):
        cipher("k1").decrypt(garbage, context=CONTEXT)


def test_an_unknown_key_fails_without_fallback() -> None:
    """A ciphertext under a key the keyring lacks raises, naming the key id."""
    sealed = cipher("k2").encrypt(PLAINTEXT, context=CONTEXT)
    with pytest.raises(TokenDecryptionError, match="'k2'"):
        cipher("k1").decrypt(sealed, context=CONTEXT)


def test_rotation_reads_old_keys_and_writes_with_the_new_one() -> None:
    """After adding k2 in front of k1, old ciphertexts still decrypt and new ones use k2."""
    old = cipher("k1").encrypt(PLAINTEXT, context=CONTEXT)
    rotated = TokenCipher(Keyring.from_config(f"k2:{b64(KEY_2)},k1:{b64(KEY_1)}"))
    assert key_id_of(old) == "k1"
    assert rotated.decrypt(old, context=CONTEXT) == PLAINTEXT
    assert rotated.active_key_id == "k2"
    assert key_id_of(rotated.encrypt(PLAINTEXT, context=CONTEXT)) == "k2"


def test_config_lists_keys_active_first() -> None:
    """The configuration parses id:key pairs, with or without padding and spaces."""
    padded = base64.urlsafe_b64encode(KEY_1).decode()
    keyring = Keyring.from_config(f" k2:{b64(KEY_2)} , k1:{padded},")
    assert keyring.active_key_id == "k2"
    assert keyring.key_ids == ("k2", "k1")
    assert Keyring.from_config(generate_key_entry("fresh")).key_ids == ("fresh",)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "no token key"),
        (" , ", "no token key"),
        (b64(KEY_1), "entry 1"),
        (f":{b64(KEY_1)}", "entry 1"),
        (f"k1:{b64(KEY_1)},k1:{b64(KEY_2)}", "twice"),
        (f"k1:{b64(KEY_1[:16])}", "32 bytes"),
        (f"k1:{b64(KEY_1)}!!", "base64url"),
        (f"bad id:{b64(KEY_1)}", "must match"),
    ],
    # Named, not shown: the values hold the test's random keys.
    ids=["empty", "commas", "no-id", "empty-id", "twice", "short", "not-base64url", "bad-id"],
)
def test_bad_config_is_refused_without_showing_keys(value: str, message: str) -> None:
    """Malformed configurations raise KeyConfigError whose message shows no key material."""
    with pytest.raises(KeyConfigError, match=message) as raised:
        Keyring.from_config(value)
    assert b64(KEY_1)[:12] not in str(raised.value)
    assert b64(KEY_2)[:12] not in str(raised.value)


def test_keyring_checks_its_keys() -> None:
    """Keys must be 32 bytes and the active id one of them."""
    with pytest.raises(KeyConfigError, match="32 bytes"):
        Keyring({"k1": b"short"}, active="k1")
    with pytest.raises(KeyConfigError, match="active"):
        Keyring({"k1": KEY_1}, active="k9")


def test_reprs_show_no_key_material() -> None:
    """Keyring and cipher reprs name key ids only."""
    both = cipher("k2", "k1")
    shown = repr(both) + str(both) + repr(Keyring({"k1": KEY_1}, active="k1"))
    assert "k2" in shown
    for key in (KEY_1, KEY_2):
        assert b64(key)[:8] not in shown
        assert repr(key)[2:12] not in shown
        assert key.hex()[:12] not in shown


def test_development_key_is_created_private_and_reused(tmp_path: Path) -> None:
    """Without configuration a key file is created with mode 0600 and reused afterwards."""
    var = tmp_path / "var"
    first = load_keyring(None, var_dir=var)
    key_file = var / DEV_KEY_FILE
    content = key_file.read_bytes()
    sealed = TokenCipher(first).encrypt(PLAINTEXT, context=CONTEXT)
    second = Keyring.development(var)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert key_file.read_bytes() == content
    assert TokenCipher(second).decrypt(sealed, context=CONTEXT) == PLAINTEXT
    assert sorted(path.name for path in var.iterdir()) == [DEV_KEY_FILE]


def test_development_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    """A development key file other users can read is not used."""
    Keyring.development(tmp_path)
    os.chmod(tmp_path / DEV_KEY_FILE, 0o644)
    with pytest.raises(KeyConfigError, match="chmod 600"):
        Keyring.development(tmp_path)


def test_configured_keys_win_over_the_development_key(tmp_path: Path) -> None:
    """With a configuration the development key is neither made nor used."""
    keyring = load_keyring(f"k1:{b64(KEY_1)}", var_dir=tmp_path)
    assert keyring.key_ids == ("k1",)
    assert not (tmp_path / DEV_KEY_FILE).exists()


def test_derived_keys_follow_the_keyring_and_reveal_none_of_it() -> None:
    """`derive` gives one 256-bit key per key, the active one's first, the same on every
    replica with the same keys, distinct per purpose and from the keys themselves."""
    rotated = Keyring({"k1": KEY_1, "k2": KEY_2}, active="k2")
    derived = rotated.derive(b"page tokens")
    assert derived == Keyring({"k2": KEY_2, "k1": KEY_1}, active="k2").derive(b"page tokens")
    assert derived[1:] == Keyring({"k1": KEY_1}, active="k1").derive(b"page tokens")
    assert [len(key) for key in derived] == [32, 32]
    assert not {KEY_1, KEY_2} & set(derived)
    assert set(derived).isdisjoint(rotated.derive(b"another purpose"))
