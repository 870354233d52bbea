"""The application token repository's contract, on SQLite, PostgreSQL and the fake alike:
the first claim creates the record, every change is a compare-and-swap on its version,
claims lapse, and the token is encrypted at rest and bound to its row."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.core.errors import KeyUnavailable
from gateway.core.model import ApplicationGrant, ApplicationTokenRecord
from gateway.core.secret import Secret
from storage.crypto import Keyring, TokenCipher, TokenDecryptionError
from storage.schema import smartcar_application_tokens
from storage.uow import unit_of_work_factory
from tests.integration.storage.builders import BERLIN_SUMMER, T0, at
from tests.integration.storage.conftest import Backend
from tests.integration.storage.test_tokens_at_rest import database_bytes

CLIENT = "fleet-app"


def app_grant(value: str = "app-token-1") -> ApplicationGrant:
    """An hour-long application token issued at T0."""
    return ApplicationGrant(token=Secret(value), issued_at=T0, expires_at=at(3600))


async def claimed(
    backend: Backend, *, version: int = 0, until_s: float = 30
) -> ApplicationTokenRecord:
    """Claim the record at `version` until T0 + `until_s`; it must succeed."""
    async with backend.factory() as uow:
        record = await uow.application_tokens.claim(
            CLIENT, expected_version=version, until=at(until_s), now=T0
        )
        await uow.commit()
    assert record is not None
    return record


async def test_there_is_no_record_before_the_first_claim(backend: Backend) -> None:
    """get answers None for a client id never claimed."""
    async with backend.factory() as uow:
        assert await uow.application_tokens.get(CLIENT) is None


async def test_the_first_claim_creates_the_record_and_only_one_wins(backend: Backend) -> None:
    """Claiming at version 0 creates the record at version 1, claimed; a second claim at
    version 0 (a racing replica) gets nothing."""
    first = await claimed(backend)
    assert first == ApplicationTokenRecord(
        client_id=CLIENT, grant=None, version=1, claimed_until=at(30)
    )
    async with backend.factory() as uow:
        again = await uow.application_tokens.claim(
            CLIENT, expected_version=0, until=at(60), now=at(1)
        )
        assert again is None
        assert await uow.application_tokens.get(CLIENT) == first


async def test_storing_a_token_clears_the_claim_and_reads_back_in_utc(backend: Backend) -> None:
    """store at the claimed version keeps the token and its times (handed back in UTC) and
    clears the claim; a store at an older version changes nothing."""
    claim = await claimed(backend)
    written = ApplicationGrant(
        token=Secret("app-token-1"),
        issued_at=T0.astimezone(BERLIN_SUMMER),
        expires_at=at(3600).astimezone(BERLIN_SUMMER),
    )
    async with backend.factory() as uow:
        stored = await uow.application_tokens.store(
            CLIENT, expected_version=claim.version, grant=written
        )
        stale = await uow.application_tokens.store(
            CLIENT, expected_version=claim.version, grant=app_grant("late")
        )
        await uow.commit()
    assert stored == ApplicationTokenRecord(client_id=CLIENT, grant=app_grant(), version=2)
    assert stale is None
    async with backend.factory() as uow:
        found = await uow.application_tokens.get(CLIENT)
    assert found == stored
    assert found is not None
    assert found.grant is not None
    assert found.grant.expires_at.utcoffset() == timedelta(0)


async def test_a_claim_holds_until_it_lapses(backend: Backend) -> None:
    """A claim until T0+30 s refuses claimants up to that instant and yields after it."""
    claim = await claimed(backend)
    async with backend.factory() as uow:
        repo = uow.application_tokens
        assert await repo.claim(CLIENT, expected_version=1, until=at(60), now=at(29)) is None
        assert await repo.claim(CLIENT, expected_version=1, until=at(60), now=at(30)) is None
        late = await repo.claim(CLIENT, expected_version=1, until=at(90), now=at(31))
    assert claim.version == 1
    assert late == ApplicationTokenRecord(
        client_id=CLIENT, grant=None, version=2, claimed_until=at(90)
    )


async def test_a_claim_on_a_stale_version_or_a_missing_record_loses(backend: Backend) -> None:
    """Claims at a version the record has left, or of a record that was never created at a
    version above 0, get nothing and change nothing."""
    claim = await claimed(backend)
    async with backend.factory() as uow:
        repo = uow.application_tokens
        await repo.release(CLIENT, expected_version=claim.version)
        assert await repo.claim(CLIENT, expected_version=1, until=at(60), now=T0) is None
        assert await repo.claim("other-app", expected_version=3, until=at(60), now=T0) is None
        assert await repo.get("other-app") is None


async def test_release_keeps_the_token_and_discard_drops_it(backend: Backend) -> None:
    """release clears the claim and keeps the token; discard drops the token; each bumps the
    version and refuses a stale one."""
    claim = await claimed(backend)
    async with backend.factory() as uow:
        repo = uow.application_tokens
        with_token = await repo.store(CLIENT, expected_version=claim.version, grant=app_grant())
        assert with_token is not None
        reclaimed = await repo.claim(CLIENT, expected_version=2, until=at(60), now=T0)
        assert reclaimed is not None
        assert reclaimed.grant == app_grant()
        released = await repo.release(CLIENT, expected_version=3)
        assert released == ApplicationTokenRecord(client_id=CLIENT, grant=app_grant(), version=4)
        assert await repo.release(CLIENT, expected_version=3) is None
        dropped = await repo.discard(CLIENT, expected_version=4)
        assert dropped == ApplicationTokenRecord(client_id=CLIENT, grant=None, version=5)
        assert await repo.discard(CLIENT, expected_version=4) is None
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.application_tokens.get(CLIENT) == dropped


async def test_concurrent_first_claims_have_one_winner(backend: Backend) -> None:
    """Ten units of work racing to create and claim the record: exactly one succeeds."""

    async def claim() -> ApplicationTokenRecord | None:
        async with backend.factory() as uow:
            record = await uow.application_tokens.claim(
                CLIENT, expected_version=0, until=at(30), now=T0
            )
            await uow.commit()
            return record

    results = await asyncio.gather(*(claim() for _ in range(10)))
    assert sum(result is not None for result in results) == 1


# --- at rest (SQLite file) ------------------------------------------------------------------


async def test_the_token_is_never_plaintext_in_the_database_files(
    engine: AsyncEngine, cipher: TokenCipher, db_path: Path
) -> None:
    """The stored token appears in no byte of the .db, -wal or -shm files; its row names
    its key and holds one ciphertext."""
    factory = unit_of_work_factory(engine, cipher)
    async with factory() as uow:
        claim = await uow.application_tokens.claim(
            "client-VISIBLE-MARKER", expected_version=0, until=at(30), now=T0
        )
        assert claim is not None
        await uow.application_tokens.store(
            "client-VISIBLE-MARKER", expected_version=1, grant=app_grant("app-PLAIN-MARKER")
        )
        await uow.commit()
    raw = database_bytes(db_path)
    assert b"client-VISIBLE-MARKER" in raw
    assert b"app-PLAIN-MARKER" not in raw
    assert "app-PLAIN-MARKER".encode("utf-16-le") not in raw
    async with engine.connect() as connection:
        row = (
            await connection.execute(text("SELECT key_id, token FROM smartcar_application_tokens"))
        ).one()
    assert row.key_id == "k1"
    assert row.token.startswith(b"\x01\x02k1")


async def test_a_token_moved_to_another_row_or_under_a_missing_key_does_not_decrypt(
    engine: AsyncEngine, cipher: TokenCipher
) -> None:
    """Another client's ciphertext copied into a row fails to decrypt; a token under a key
    this replica lacks is KEY_UNAVAILABLE, naming the key."""
    factory = unit_of_work_factory(engine, cipher)
    async with factory() as uow:
        for client_id in ("app-1", "app-2"):
            await uow.application_tokens.claim(client_id, expected_version=0, until=at(30), now=T0)
            await uow.application_tokens.store(
                client_id, expected_version=1, grant=app_grant(f"{client_id}-token")
            )
        await uow.commit()
    table = smartcar_application_tokens
    async with engine.begin() as connection:
        blob = (
            (await connection.execute(table.select().where(table.c.client_id == "app-1")))
            .one()
            .token
        )
        await connection.execute(
            update(table).where(table.c.client_id == "app-2").values(token=blob)
        )
    async with factory() as uow:
        with pytest.raises(TokenDecryptionError):
            await uow.application_tokens.get("app-2")
    other = unit_of_work_factory(engine, TokenCipher(Keyring({"k2": b"k" * 32}, active="k2")))
    async with other() as uow:
        with pytest.raises(KeyUnavailable) as missing:
            await uow.application_tokens.get("app-1")
    assert missing.value.metadata == {"key_id": "k1"}
