"""The API V3 application token in `smartcar_application_tokens`, encrypted
(ApplicationTokenRepository).

One row per Smartcar client id. The token is one AES-256-GCM ciphertext bound to its row
(`token_context`), like the owners' pairs in `smartcar_grants`. Every change is one
compare-and-swap statement on `version`: a claim (the first one inserts the row, INSERT …
ON CONFLICT DO NOTHING, so of two replicas racing for it one gets nothing back), storing
a token, releasing a claim, dropping a refused token. So across replicas exactly one
worker holds the claim, and nobody overwrites a newer token with an older one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.dml import Update

from gateway.core.model import ApplicationGrant, ApplicationTokenRecord
from gateway.core.secret import Secret
from storage.crypto import TokenCipher, TokenDecryptionError, key_id_of
from storage.repositories._dialects import conflict_insert
from storage.repositories._sealed import unseal
from storage.schema import smartcar_application_tokens

_tokens = smartcar_application_tokens.c


def token_context(client_id: str) -> bytes:
    """Return the associated data binding a token ciphertext to its row and column."""
    return f"smartcar_application_tokens:{client_id}:token".encode()


class SqlApplicationTokenRepository:
    """Application tokens by client id, encrypted with a TokenCipher."""

    def __init__(self, connection: AsyncConnection, cipher: TokenCipher) -> None:
        self._connection = connection
        self._cipher = cipher

    async def get(self, client_id: str) -> ApplicationTokenRecord | None:
        """Return the client's record with its token decrypted (KeyUnavailable when it is
        under a key this replica lacks), or None when there is none."""
        query = select(smartcar_application_tokens).where(_tokens.client_id == client_id)
        row = (await self._connection.execute(query)).one_or_none()
        return None if row is None else self._to_record(row)

    async def claim(
        self, client_id: str, *, expected_version: int, until: datetime, now: datetime
    ) -> ApplicationTokenRecord | None:
        """Claim the grant until `until` if the record is at `expected_version` (0: absent,
        created here) and unclaimed at `now`; return it (version bumped) or None."""
        if expected_version == 0:  # no record yet: the first to insert it has the claim
            insert = conflict_insert(self._connection, smartcar_application_tokens)
            created = insert.values(client_id=client_id, version=1, claimed_until=until)
            created = created.on_conflict_do_nothing(index_elements=[_tokens.client_id])
            result = await self._connection.execute(created.returning(smartcar_application_tokens))
            row = result.one_or_none()
            return None if row is None else self._to_record(row)
        unclaimed = or_(_tokens.claimed_until.is_(None), _tokens.claimed_until < now)
        statement = _swap(client_id, expected_version).where(unclaimed)
        return await self._swapped(statement.values(claimed_until=until))

    async def store(
        self, client_id: str, *, expected_version: int, grant: ApplicationGrant
    ) -> ApplicationTokenRecord | None:
        """Store a new token and clear the claim if the version still matches."""
        ciphertext = self._cipher.encrypt(
            grant.token.reveal().encode(), context=token_context(client_id)
        )
        statement = _swap(client_id, expected_version).values(
            token=ciphertext,
            key_id=key_id_of(ciphertext),
            issued_at=grant.issued_at,
            expires_at=grant.expires_at,
            claimed_until=None,
        )
        return await self._swapped(statement)

    async def release(
        self, client_id: str, *, expected_version: int
    ) -> ApplicationTokenRecord | None:
        """Clear the claim, keeping the token, if the version still matches."""
        return await self._swapped(_swap(client_id, expected_version).values(claimed_until=None))

    async def discard(
        self, client_id: str, *, expected_version: int
    ) -> ApplicationTokenRecord | None:
        """Drop the token if the version still matches (the claim, if any, stays)."""
        statement = _swap(client_id, expected_version).values(
            token=None, key_id=None, issued_at=None, expires_at=None
        )
        return await self._swapped(statement)

    async def _swapped(self, statement: Update) -> ApplicationTokenRecord | None:
        """Run a compare-and-swap update; return the new record, or None if nothing matched."""
        result = await self._connection.execute(statement.returning(smartcar_application_tokens))
        row = result.one_or_none()
        return None if row is None else self._to_record(row)

    def _to_record(self, row: Row[Any]) -> ApplicationTokenRecord:
        """Return the record a row holds, decrypting its token."""
        columns = row._mapping
        client_id: str = columns["client_id"]
        ciphertext: bytes | None = columns["token"]
        grant = None
        if ciphertext is not None:
            grant = ApplicationGrant(
                token=self._decrypt(client_id, ciphertext),
                issued_at=columns["issued_at"],
                expires_at=columns["expires_at"],
            )
        return ApplicationTokenRecord(
            client_id=client_id,
            grant=grant,
            version=columns["version"],
            claimed_until=columns["claimed_until"],
        )

    def _decrypt(self, client_id: str, ciphertext: bytes) -> Secret:
        """Decrypt a stored token; anything amiss is an error, never a fallback."""
        plaintext = unseal(self._cipher, ciphertext, context=token_context(client_id))
        try:
            return Secret(plaintext.decode())
        except (UnicodeDecodeError, ValueError):
            # Never chain the decoding error: its message could quote the plaintext.
            raise TokenDecryptionError(
                f"the application token of {client_id!r} is malformed"
            ) from None


def _swap(client_id: str, expected_version: int) -> Update:
    """Return an update of the record if it is still at `expected_version`, bumping it."""
    return (
        update(smartcar_application_tokens)
        .where(_tokens.client_id == client_id, _tokens.version == expected_version)
        .values(version=_tokens.version + 1)
    )
