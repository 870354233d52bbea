"""Per-key locks that exist only while used: one `asyncio.Lock` per key (a vehicle, a
request id), made on the first holder's arrival and dropped when the last holder or waiter
leaves, so a long-running process keeps none for keys it is done with.

    async with locks.hold("car-1"):
        ...  # alone among this process's holders of "car-1"

Per-process only: across replicas the database (or Redis) is the arbiter.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLocks:
    """A lock per key, counted by its holders and waiters."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """How many keys have a holder or a waiter now."""
        return len(self._locks)

    def busy(self, key: str) -> bool:
        """Tell whether `key`'s lock has a holder (or waiter) now: a new holder would wait."""
        return key in self._locks

    def users(self, key: str) -> int:
        """How many hold or wait for `key`'s lock now."""
        return self._locks.get(key, (None, 0))[1]

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Hold `key`'s lock for the block (waiting for earlier holders first)."""
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)
