"""Token key rotation: which key each stored token pair is under, and re-encryption of the
pairs under older keys with the active one, in small batches, while the service serves.

Re-encryption never bumps a grant's `version` and writes only where the row still holds
the very ciphertext it read (compare-and-swap on the bytes). So it cannot disturb a token
rotation in flight: a rotation that claimed the grant still finds its version, and a pair
that a rotation replaced meanwhile is skipped (it is under the active key already).

The procedure, with several replicas and no downtime:

1. `vehicle-gateway keys generate` → a new entry `NEW:…`; append it to `VG_TOKEN_KEYS`
   and roll the replicas (every replica can now decrypt under it);
2. move it to the front (it becomes the active key), roll the replicas again;
3. `vehicle-gateway keys rotate` re-encrypts what is left under older keys;
4. `vehicle-gateway keys status` shows nothing under the old key: remove it, roll again.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.crypto import TokenCipher, key_id_of
from storage.repositories.grants import tokens_context
from storage.schema import smartcar_grants

_grants = smartcar_grants.c


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What one re-encryption run did."""

    reencrypted: int
    """Pairs now under the active key that were under another."""
    skipped: int
    """Pairs that changed while being re-encrypted (a token rotation wrote them anew)."""
    batches: int


async def key_usage(engine: AsyncEngine) -> dict[str, int]:
    """Return how many stored token pairs each key id holds."""
    query = select(_grants.key_id, func.count()).group_by(_grants.key_id)
    async with engine.connect() as connection:
        rows = await connection.execute(query)
        return {str(key_id): int(count) for key_id, count in rows}


async def reencrypt(
    engine: AsyncEngine, cipher: TokenCipher, *, batch_size: int = 100
) -> RotationReport:
    """Re-encrypt every pair not under the active key, `batch_size` rows per transaction."""
    active = cipher.active_key_id
    reencrypted = skipped = batches = 0
    after = ""
    while True:
        query = (
            select(_grants.id, _grants.tokens)
            .where(_grants.key_id != active, _grants.id > after)
            .order_by(_grants.id)
            .limit(max(batch_size, 1))
        )
        async with engine.begin() as connection:
            rows = (await connection.execute(query)).all()
            for grant_id, old in rows:
                context = tokens_context(grant_id)
                new = cipher.encrypt(cipher.decrypt(old, context=context), context=context)
                swap = (
                    update(smartcar_grants)
                    .where(_grants.id == grant_id, _grants.tokens == old)
                    .values(tokens=new, key_id=key_id_of(new))
                )
                if (await connection.execute(swap)).rowcount == 1:
                    reencrypted += 1
                else:
                    skipped += 1
        if not rows:
            return RotationReport(reencrypted=reencrypted, skipped=skipped, batches=batches)
        batches += 1
        after = rows[-1][0]
