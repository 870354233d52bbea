"""Re-encryption under a new active key, on a real SQLite database: every pair moves, its
tokens and version stay as they were (a token rotation in flight is never disturbed)."""

from __future__ import annotations

import base64
from pathlib import Path

from storage.crypto import Keyring, TokenCipher
from storage.database import create_engine, migrate
from storage.keys import key_usage, reencrypt
from storage.uow import unit_of_work_factory
from tests.integration.storage.builders import grant

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
