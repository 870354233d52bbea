"""Session-wide fixtures: a throwaway PostgreSQL cluster for the tiers that run against
both SQLite and PostgreSQL, and a throwaway Redis for the shared rate limits.

`VG_TEST_POSTGRES_URL` points the tests at an existing server instead (a database there
is created per test). Without either, PostgreSQL tests are skipped locally and fail in CI
(`CI` set), where `make test` has installed PostgreSQL.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from gateway.edge.logs import JsonFormatter
from tests.services import PostgresCluster, RedisServer, postgres_bin, redis_binary


class Postgres:
    """Where scratch databases come from."""

    def __init__(self, cluster: PostgresCluster | None, url: str | None) -> None:
        self._cluster = cluster
        self._url = url
        self._template = _migrated_template(cluster) if cluster is not None else None

    def new_database(self) -> str:
        """Create a fresh database; return its SQLAlchemy URL.

        On the session's own cluster each is a copy of one database migrated once, so a
        gateway starting on it finds the newest schema and nothing to do; migration tests
        downgrade and upgrade their copy as they like.
        """
        name = f"t_{secrets.token_hex(6)}"
        if self._cluster is not None:
            return self._cluster.create_database(name, template=self._template)
        assert self._url is not None
        return _create_on(self._url, name)


def _migrated_template(cluster: PostgresCluster) -> str:
    """Create the database every test database copies, migrated to the newest revision."""
    from storage.database import create_engine, migrate

    name = "vg_migrated"
    engine = create_engine(cluster.create_database(name))

    async def upgrade() -> None:
        try:
            await migrate(engine)
        finally:
            await engine.dispose()  # a template must have no connection open

    _run_apart(upgrade)
    return name


def _create_on(url: str, name: str) -> str:
    """Create database `name` on the server of `url` (through asyncpg); return its URL."""
    import asyncpg  # type: ignore[import-untyped]

    parsed = make_url(url)

    async def create() -> None:
        connection = await asyncpg.connect(
            host=parsed.host,
            port=parsed.port,
            user=parsed.username,
            password=parsed.password,
            database=parsed.database or "postgres",
        )
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    _run_apart(create)
    return parsed.set(database=name).render_as_string(hide_password=False)


def _run_apart(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to its end on a loop in a thread of its own: the test that first asks
    for PostgreSQL (from an async fixture) may be running its own loop in this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(lambda: asyncio.run(work())).result()


def _memory_backed_tmp() -> str | None:
    """The memory-backed shared folder when this machine has one: a few hundred throwaway
    databases (a copy of the template each, ~8 MB) are written and removed at memory
    speed. mkdtemp makes the cluster's own private folder inside it."""
    shm = Path("/dev/shm")  # noqa: S108 - only the parent of a mkdtemp folder
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the session: the configured one, or a throwaway cluster."""
    configured = os.environ.get("VG_TEST_POSTGRES_URL")
    if configured:
        yield Postgres(None, configured)
        return
    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: `make test` installs it")
        pytest.skip("PostgreSQL is not installed here (make test installs it)")
    # Not under pytest's tmp dirs: they are private to this user, and the server runs as
    # `postgres` when the tests run as root.
    directory = Path(tempfile.mkdtemp(prefix="vg-postgres-", dir=_memory_backed_tmp()))
    try:
        with PostgresCluster.start(directory) as cluster:
            yield Postgres(cluster, None)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A throwaway redis-server for the session (skipped locally when not installed)."""
    if redis_binary() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed: `make test` installs it")
        pytest.skip("redis-server is not installed here (make test installs it)")
    directory = Path(tempfile.mkdtemp(prefix="vg-redis-"))
    try:
        with RedisServer.start(directory) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of the process, at DEBUG, as the service formats it (JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
