"""Tokens at rest: never plaintext in the database file, bound to their row, rotatable."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.errors import KeyUnavailable
from storage.crypto import Keyring, TokenCipher, TokenDecryptionError
from storage.schema import smartcar_grants
from storage.uow import unit_of_work_factory
from tests.integration.storage.builders import (
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    grant,
    tokens,
    vehicle,
)


def database_bytes(db_path: Path) -> bytes:
    """Return the raw bytes of the database file and its WAL and shared-memory files."""
    files = [db_path, *(db_path.with_name(db_path.name + suffix) for suffix in ("-wal", "-shm"))]
    return b"".join(path.read_bytes() for path in files if path.exists())


async def test_no_token_is_ever_plaintext_in_the_database_files(
    engine: AsyncEngine, cipher: TokenCipher, db_path: Path
) -> None:
    """After writing and rotating a grant, no token appears in the .db, -wal or -shm bytes."""
    factory = unit_of_work_factory(engine, cipher)
    async with factory() as uow:
        await uow.grants.add(grant("g1", smartcar_user_id="user-VISIBLE-MARKER"))
        await uow.vehicles.add(vehicle("v1", grant_id="g1"))
        await uow.commit()
    async with factory() as uow:
        fresh = tokens("access-NEW-PLAIN-MARKER", "refresh-NEW-PLAIN-MARKER")
        assert await uow.grants.replace_tokens("g1", expected_version=1, tokens=fresh)
        await uow.commit()
    raw = database_bytes(db_path)
    assert b"user-VISIBLE-MARKER" in raw  # the rows did reach the files we are searching
    for token in (ACCESS_TOKEN, REFRESH_TOKEN, "access-NEW-PLAIN-MARKER", "refresh-NEW-PLAIN"):
        assert token.encode() not in raw
        assert token.encode("utf-16-le") not in raw


async def test_the_row_names_its_key_and_holds_one_ciphertext(
    engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """key_id says which key encrypted the pair; the blob starts with the same key id."""
    async with unit_of_work_factory(engine, cipher)() as uow:
        await uow.grants.add(grant("g1"))
        await uow.commit()
    async with engine.connect() as connection:
        row = (await connection.execute(text("SELECT key_id, tokens FROM smartcar_grants"))).one()
    assert row.key_id == "k1"
    assert row.tokens.startswith(b"\x01\x02k1")


async def test_a_ciphertext_moved_to_another_row_does_not_decrypt(
    engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """Copying g1's tokens into g2's row makes reading g2 fail, never return g1's tokens."""
    factory = unit_of_work_factory(engine, cipher)
    async with factory() as uow:
        await uow.grants.add(grant("g1"))
        await uow.grants.add(grant("g2", tokens=tokens("other-access", "other-refresh")))
        await uow.commit()
    stolen = smartcar_grants.select().where(smartcar_grants.c.id == "g1")
    async with engine.begin() as connection:
        blob = (await connection.execute(stolen)).one().tokens
        await connection.execute(
            update(smartcar_grants).where(smartcar_grants.c.id == "g2").values(tokens=blob)
        )
    async with factory() as uow:
        assert await uow.grants.get("g1") == grant("g1")
        with pytest.raises(TokenDecryptionError):
            await uow.grants.get("g2")


async def test_a_corrupted_ciphertext_is_an_error(engine: AsyncEngine, cipher: TokenCipher) -> None:
    """A damaged tokens column raises TokenDecryptionError on every read path."""
    factory = unit_of_work_factory(engine, cipher)
    async with factory() as uow:
        await uow.grants.add(grant("g1"))
        await uow.commit()
    async with engine.begin() as connection:
        await connection.execute(update(smartcar_grants).values(tokens=b"\x01\x02k1" + bytes(40)))
    async with factory() as uow:
        with pytest.raises(TokenDecryptionError):
            await uow.grants.get("g1")
        with pytest.raises(TokenDecryptionError):
            await uow.grants.by_user("user-1")


async def test_rows_written_under_an_old_key_are_read_and_rewritten_under_the_new(
    engine: AsyncEngine,
) -> None:
    """With k2 added in front, k1 rows still read, and replacing tokens re-encrypts with k2;
    a replica still without k2 then gets KeyUnavailable naming it (not a decryption bug)."""
    key_1 = secrets.token_bytes(32)
    before = TokenCipher(Keyring({"k1": key_1}, active="k1"))
    after = TokenCipher(Keyring({"k2": secrets.token_bytes(32), "k1": key_1}, active="k2"))
    async with unit_of_work_factory(engine, before)() as uow:
        await uow.grants.add(grant("g1"))
        await uow.commit()
    async with unit_of_work_factory(engine, after)() as uow:
        assert await uow.grants.get("g1") == grant("g1")
        assert await uow.grants.replace_tokens("g1", expected_version=1, tokens=tokens())
        await uow.commit()
    async with engine.connect() as connection:
        key_id = (await connection.execute(text("SELECT key_id FROM smartcar_grants"))).scalar()
    assert key_id == "k2"
    async with unit_of_work_factory(engine, before)() as uow:
        with pytest.raises(KeyUnavailable, match="'k2'") as missing:
            await uow.grants.get("g1")
    assert missing.value.metadata == {"key_id": "k2"}


async def test_loaded_grants_and_units_of_work_show_no_tokens(
    engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """The repr of a grant read from the database, and of its unit of work, hide the tokens."""
    async with unit_of_work_factory(engine, cipher)() as uow:
        await uow.grants.add(grant("g1"))
        loaded = await uow.grants.get("g1")
        shown = repr(loaded) + str(loaded) + repr(uow) + repr(uow.grants)
    assert ACCESS_TOKEN not in shown
    assert REFRESH_TOKEN not in shown
