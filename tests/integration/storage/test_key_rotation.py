"""Re-encryption under a new active key, on a real SQLite database: every pair and
application token moves, its tokens and version stay as they were (a token rotation in
flight is never disturbed)."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

from gateway.core.model import ApplicationGrant, ApplicationTokenRecord
from gateway.core.secret import Secret
from storage.crypto import Keyring, TokenCipher
from storage.database import create_engine, migrate
from storage.keys import key_usage, reencrypt
from storage.uow import unit_of_work_factory
from tests.integration.storage.builders import T0, grant

OLD = "old:" + base64.urlsafe_b64encode(b"o" * 32).decode().rstrip("=")
NEW = "new:" + base64.urlsafe_b64encode(b"n" * 32).decode().rstrip("=")


async def test_reencryption_moves_every_pair_and_keeps_tokens_and_versions(
    tmp_path: Path,
) -> None:
    """Five pairs under `old` end under `new` in batches of two; each decrypts to the same
    tokens at the same version, and a second run has nothing left to do."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    try:
        await migrate(engine)
        before = [grant(f"g{n}", version=n + 3) for n in range(5)]
        old_uow = unit_of_work_factory(engine, TokenCipher(Keyring.from_config(OLD)))
        async with old_uow() as uow:
            for g in before:
                await uow.grants.add(g)
            await uow.commit()
        assert await key_usage(engine) == {"old": 5}
        both = TokenCipher(Keyring.from_config(f"{NEW},{OLD}"))
        report = await reencrypt(engine, both, batch_size=2)
        assert (report.reencrypted, report.skipped, report.batches) == (5, 0, 3)
        assert await key_usage(engine) == {"new": 5}
        new_only = unit_of_work_factory(engine, TokenCipher(Keyring.from_config(NEW)))
        async with new_only() as uow:
            after = [await uow.grants.get(g.id) for g in before]
        assert after == before
        again = await reencrypt(engine, both, batch_size=2)
        assert (again.reencrypted, again.batches) == (0, 0)
    finally:
        await engine.dispose()


async def test_the_application_token_is_counted_and_reencrypted_too(tmp_path: Path) -> None:
    """Key usage counts the application tokens beside the pairs (a row without a token
    counts for no key); re-encryption moves them, keeping token, times and version."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    try:
        await migrate(engine)
        old_uow = unit_of_work_factory(engine, TokenCipher(Keyring.from_config(OLD)))
        app_token = ApplicationGrant(
            token=Secret("app-token-1"), issued_at=T0, expires_at=T0 + timedelta(hours=1)
        )
        async with old_uow() as uow:
            await uow.grants.add(grant("g1"))
            for client_id in ("app-with-token", "app-without"):
                await uow.application_tokens.claim(client_id, expected_version=0, until=T0, now=T0)
            await uow.application_tokens.store(
                "app-with-token", expected_version=1, grant=app_token
            )
            await uow.commit()
        assert await key_usage(engine) == {"old": 2}
        both = TokenCipher(Keyring.from_config(f"{NEW},{OLD}"))
        report = await reencrypt(engine, both, batch_size=10)
        assert (report.reencrypted, report.skipped, report.batches) == (2, 0, 2)
        assert await key_usage(engine) == {"new": 2}
        new_only = unit_of_work_factory(engine, TokenCipher(Keyring.from_config(NEW)))
        async with new_only() as uow:
            moved = await uow.application_tokens.get("app-with-token")
            empty = await uow.application_tokens.get("app-without")
        assert moved == ApplicationTokenRecord(
            client_id="app-with-token", grant=app_token, version=2
        )
        assert empty is not None
        assert empty.grant is None
    finally:
        await engine.dispose()
