"""Fixtures of the integration tier: a client of the session's Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.services import RedisServer


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    """A client of the session's Redis (tests keep apart by key prefixes of their own)."""
    client = Redis.from_url(redis_server.url)
    yield client
    await client.aclose()
