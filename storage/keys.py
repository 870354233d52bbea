"""Token key rotation: which key each stored ciphertext is under (the owners' token pairs in
`smartcar_grants`, the application tokens in `smartcar_application_tokens`), and
re-encryption of those under older keys with the active one, in small batches, while the
service serves.

Re-encryption never bumps a row's `version` and writes only where the row still holds
the very ciphertext it read (compare-and-swap on the bytes). So it cannot disturb a token
rotation or grant in flight: a worker that claimed the row still finds its version, and a
token that was replaced meanwhile is skipped (it is under the active key already).

The procedure, with several replicas and no downtime:

1. `vehicle-gateway keys generate` → a new entry `NEW:…`; append it to `VG_TOKEN_KEYS`
   and roll the replicas (every replica can now decrypt under it);
2. move it to the front (it becomes the active key), roll the replicas again;
3. `vehicle-gateway keys rotate` re-encrypts what is left under older keys;
4. `vehicle-gateway keys status` shows nothing under the old key: remove it, roll again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from storage.crypto import TokenCipher, key_id_of
from storage.repositories.application_tokens import token_context
from storage.repositories.grants import tokens_context
from storage.schema import smartcar_application_tokens, smartcar_grants


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """A column of ciphertexts: its table, row id, key id column and the context that
    binds each ciphertext to its row."""

    table: Table
    row_id: Column[Any]
    ciphertext: Column[Any]
    key_id: Column[Any]
    context: Callable[[str], bytes]


SEALED_COLUMNS = (
    SealedColumn(
        smartcar_grants,
        smartcar_grants.c.id,
        smartcar_grants.c.tokens,
        smartcar_grants.c.key_id,
        tokens_context,
    ),
    SealedColumn(
        smartcar_application_tokens,
        smartcar_application_tokens.c.client_id,
        smartcar_application_tokens.c.token,
        smartcar_application_tokens.c.key_id,
        token_context,
    ),
)
"""Every encrypted column: key usage counts them all, re-encryption moves them all."""


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What one re-encryption run did."""

    reencrypted: int
    """Ciphertexts now under the active key that were under another."""
    skipped: int
    """Ciphertexts that changed while being re-encrypted (a token rotation or grant wrote
    them anew)."""
    batches: int


async def key_usage(engine: AsyncEngine) -> dict[str, int]:
    """Return how many stored ciphertexts (token pairs, application tokens) each key id
    holds."""
    usage: dict[str, int] = {}
    async with engine.connect() as connection:
        for sealed in SEALED_COLUMNS:
            query = (
                select(sealed.key_id, func.count())
                .where(sealed.key_id.is_not(None))
                .group_by(sealed.key_id)
            )
            for key_id, count in await connection.execute(query):
                usage[str(key_id)] = usage.get(str(key_id), 0) + int(count)
    return usage


async def reencrypt(
    engine: AsyncEngine, cipher: TokenCipher, *, batch_size: int = 100
) -> RotationReport:
    """Re-encrypt every ciphertext not under the active key, `batch_size` rows per
    transaction."""
    reports = [
        await _reencrypt_column(engine, cipher, sealed, batch_size=batch_size)
        for sealed in SEALED_COLUMNS
    ]
    return RotationReport(
        reencrypted=sum(r.reencrypted for r in reports),
        skipped=sum(r.skipped for r in reports),
        batches=sum(r.batches for r in reports),
    )


async def _reencrypt_column(
    engine: AsyncEngine, cipher: TokenCipher, sealed: SealedColumn, *, batch_size: int
) -> RotationReport:
    """Re-encrypt one column's ciphertexts not under the active key, in batches."""
    active = cipher.active_key_id
    reencrypted = skipped = batches = 0
    after = ""
    while True:
        query = (
            select(sealed.row_id, sealed.ciphertext)
            .where(sealed.key_id != active, sealed.row_id > after)
            .order_by(sealed.row_id)
            .limit(max(batch_size, 1))
        )
        async with engine.begin() as connection:
            rows = (await connection.execute(query)).all()
            for row_id, old in rows:
                context = sealed.context(row_id)
                new = cipher.encrypt(cipher.decrypt(old, context=context), context=context)
                swap = (
                    update(sealed.table)
                    .where(sealed.row_id == row_id, sealed.ciphertext == old)
                    .values({sealed.ciphertext: new, sealed.key_id: key_id_of(new)})
                )
                if (await connection.execute(swap)).rowcount == 1:
                    reencrypted += 1
                else:
                    skipped += 1
        if not rows:
            return RotationReport(reencrypted=reencrypted, skipped=skipped, batches=batches)
        batches += 1
        after = rows[-1][0]
