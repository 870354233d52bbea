"""Smartcar token pairs in the `smartcar_grants` table, encrypted (GrantRepository).

Both tokens of a pair are one AES-256-GCM ciphertext, bound to the grant's id: a pair is
never half-written, and a ciphertext copied to another row does not decrypt. Rotation
goes through compare-and-swap updates on `version`, so that across processes exactly one
worker refreshes a pair and nobody overwrites a newer pair with an older one.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Row, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Update

from gateway.core.model import Grant, TokenPair
from gateway.core.secret import Secret
from storage.crypto import TokenCipher, TokenDecryptionError, key_id_of
from storage.repositories._conflicts import execute_or_conflict
from storage.repositories._sealed import unseal
from storage.schema import smartcar_grants

_grants = smartcar_grants.c
_GET = select(smartcar_grants).where(_grants.id == bindparam("grant_id"))


def tokens_context(grant_id: str) -> bytes:
    """Return the associated data binding a tokens ciphertext to its grant row and column."""
    return f"smartcar_grants:{grant_id}:tokens".encode()


def _swap(grant_id: str, expected_version: int) -> Update:
    """Return an update of the grant if it is still at `expected_version`, bumping it."""
    return (
        update(smartcar_grants)
        .where(_grants.id == grant_id, _grants.version == expected_version)
        .values(version=_grants.version + 1)
    )


class SqlGrantRepository:
    """Token pairs, one per Smartcar user authorization, encrypted with a TokenCipher."""

    def __init__(self, connection: AsyncConnection, cipher: TokenCipher) -> None:
        self._connection = connection
        self._cipher = cipher

    async def get(self, grant_id: str) -> Grant | None:
        """Return the grant with its tokens decrypted: KeyUnavailable when they are under a
        key this replica lacks, TokenDecryptionError when they do not decrypt otherwise."""
        row = (await self._connection.execute(_GET, {"grant_id": grant_id})).one_or_none()
        return None if row is None else self._to_grant(row)

    async def by_user(self, smartcar_user_id: str) -> list[Grant]:
        """Return every grant of one Smartcar user, ordered by id."""
        query = (
            select(smartcar_grants)
            .where(_grants.smartcar_user_id == smartcar_user_id)
            .order_by(_grants.id)
        )
        return [self._to_grant(row) for row in await self._connection.execute(query)]

    async def due_for_renewal(self, *, refresh_expires_before: datetime, limit: int) -> list[Grant]:
        """Return up to `limit` grants whose refresh token expires before the given time,
        soonest first (then by id)."""
        query = (
            select(smartcar_grants)
            .where(_grants.refresh_expires_at < refresh_expires_before)
            .order_by(_grants.refresh_expires_at, _grants.id)
            .limit(max(limit, 0))
        )
        return [self._to_grant(row) for row in await self._connection.execute(query)]

    async def add(self, grant: Grant) -> None:
        """Insert a new grant; Conflict if its id exists."""
        statement = insert(smartcar_grants).values(
            id=grant.id,
            smartcar_user_id=grant.smartcar_user_id,
            version=grant.version,
            refresh_claimed_until=grant.refresh_claimed_until,
            **self._token_columns(grant.id, grant.tokens),
        )
        await execute_or_conflict(
            self._connection, statement, conflict=f"grant {grant.id!r} already exists"
        )

    async def claim_refresh(
        self, grant_id: str, *, expected_version: int, until: datetime, now: datetime
    ) -> Grant | None:
        """Claim the refresh of a grant still at `expected_version` and not claimed by another
        worker until after `now`; return it (version bumped), or None if someone else has."""
        unclaimed = or_(
            _grants.refresh_claimed_until.is_(None), _grants.refresh_claimed_until < now
        )
        statement = (
            _swap(grant_id, expected_version).where(unclaimed).values(refresh_claimed_until=until)
        )
        return await self._swapped(statement)

    async def replace_tokens(
        self, grant_id: str, *, expected_version: int, tokens: TokenPair
    ) -> Grant | None:
        """Store a new pair and clear the claim if the version still matches; return the
        updated grant (version bumped), or None if the version moved on."""
        statement = _swap(grant_id, expected_version).values(
            refresh_claimed_until=None, **self._token_columns(grant_id, tokens)
        )
        return await self._swapped(statement)

    async def delete(self, grant_id: str) -> None:
        """Remove the grant and its tokens; vehicles using it lose their link to it."""
        await self._connection.execute(delete(smartcar_grants).where(_grants.id == grant_id))

    async def _swapped(self, statement: Update) -> Grant | None:
        """Run a compare-and-swap update; return the new grant, or None if nothing matched."""
        result = await self._connection.execute(statement.returning(smartcar_grants))
        row = result.one_or_none()
        return None if row is None else self._to_grant(row)

    def _token_columns(self, grant_id: str, tokens: TokenPair) -> dict[str, Any]:
        """Return the columns holding a token pair: one ciphertext, its key, the expiries."""
        plaintext = json.dumps(
            {
                "access_token": tokens.access_token.reveal(),
                "refresh_token": tokens.refresh_token.reveal(),
            }
        ).encode()
        ciphertext = self._cipher.encrypt(plaintext, context=tokens_context(grant_id))
        return {
            "tokens": ciphertext,
            "key_id": key_id_of(ciphertext),
            "access_expires_at": tokens.access_expires_at,
            "refresh_expires_at": tokens.refresh_expires_at,
        }

    def _to_grant(self, row: Row[Any]) -> Grant:
        """Return the grant a row holds, decrypting its tokens."""
        columns = row._mapping
        secrets = self._decrypt(columns["id"], columns["tokens"])
        return Grant(
            id=columns["id"],
            smartcar_user_id=columns["smartcar_user_id"],
            tokens=TokenPair(
                access_token=secrets[0],
                refresh_token=secrets[1],
                access_expires_at=columns["access_expires_at"],
                refresh_expires_at=columns["refresh_expires_at"],
            ),
            version=columns["version"],
            refresh_claimed_until=columns["refresh_claimed_until"],
        )

    def _decrypt(self, grant_id: str, ciphertext: bytes) -> tuple[Secret, Secret]:
        """Decrypt a grant's tokens: (access, refresh); anything amiss is an error."""
        plaintext = unseal(self._cipher, ciphertext, context=tokens_context(grant_id))
        try:
            tokens = json.loads(plaintext)
            return Secret(tokens["access_token"]), Secret(tokens["refresh_token"])
        except (ValueError, TypeError, KeyError):
            # Never chain the parse error: its message could quote the plaintext.
            raise TokenDecryptionError(f"grant {grant_id!r} holds malformed tokens") from None
