"""Single-use Connect states in the `oauth_states` table, kept only as SHA-256 hashes."""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import OAuthState
from storage.repositories._conflicts import execute_or_conflict
from storage.schema import oauth_states


def state_hash(state: str) -> str:
    """Return the stored form of a state: its hex SHA-256."""
    return hashlib.sha256(state.encode()).hexdigest()


class SqlOAuthStateRepository:
    """Issued states; taking one deletes it, so each can be used once."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, state: OAuthState) -> None:
        """Store a newly issued state; Conflict if it was issued before."""
        statement = insert(oauth_states).values(
            state_hash=state_hash(state.state),
            vehicle_id=state.vehicle_id,
            expires_at=state.expires_at,
        )
        await execute_or_conflict(self._connection, statement, conflict="state issued twice")

    async def take(self, state: str) -> OAuthState | None:
        """Delete and return the state (None if unknown or already used)."""
        statement = (
            delete(oauth_states)
            .where(oauth_states.c.state_hash == state_hash(state))
            .returning(oauth_states.c.vehicle_id, oauth_states.c.expires_at)
        )
        row = (await self._connection.execute(statement)).one_or_none()
        if row is None:
            return None
        return OAuthState(state=state, vehicle_id=row.vehicle_id, expires_at=row.expires_at)
