"""Session-wide fixtures: a throwaway PostgreSQL cluster for the tiers that run against
both SQLite and PostgreSQL, and a throwaway Redis for the shared rate limits.

One cluster serves the whole session, all xdist workers included: the process that runs
the session makes a private folder for it (`VG_TEST_SESSION_DIR`, inherited by the
workers), the first worker to need PostgreSQL starts the cluster there, and the session's
process stops it and removes the folder when the session ends, failed or not.

The session's processes (and the ones they start) trust one throwaway certificate and no
public authority (`SSL_CERT_FILE`): the tests reach nothing but loopback, and each HTTP
client a gateway or a test makes loads the trust store, which for the machine's ~140
authorities costs ~50 ms of CPU, about 500 times a run. A test that reached a public
HTTPS server by mistake fails instead of depending on the network.

`VG_TEST_POSTGRES_URL` points the tests at an existing server instead (a database there
is created per test). Without either, PostgreSQL tests are skipped locally and fail in CI
(`CI` set), where `make test` has installed PostgreSQL.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from gateway.edge.logs import JsonFormatter
from tests.pki import CertificateAuthority
from tests.services import (
    PostgresCluster,
    RedisServer,
    postgres_bin,
    redis_binary,
    run_apart,
    shared_postgres,
    stop_shared_postgres,
)

SESSION_DIR = "VG_TEST_SESSION_DIR"
"""The folder of the session's shared services, made by the process that runs the session."""
_OWN_SESSION_DIR = pytest.StashKey[Path]()
_TRUST_BEFORE = pytest.StashKey[str | None]()


class Postgres:
    """Where scratch databases come from."""

    def __init__(
        self, cluster: PostgresCluster | None, url: str | None, *, template: str | None = None
    ) -> None:
        self._cluster = cluster
        self._url = url
        if cluster is not None and template is None:
            template = _migrated_template(cluster)
        self._template = template

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

    run_apart(upgrade)
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

    run_apart(create)
    return parsed.set(database=name).render_as_string(hide_password=False)


def _memory_backed_tmp() -> str | None:
    """The memory-backed shared folder when this machine has one: a few hundred throwaway
    databases (a copy of the template each, ~8 MB) are written and removed at memory
    speed. mkdtemp makes the session's own private folder inside it."""
    shm = Path("/dev/shm")  # noqa: S108 - only the parent of a mkdtemp folder
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def pytest_configure(config: pytest.Config) -> None:
    """In the process that runs the session (not in its xdist workers, which inherit its
    variables): make the private folder the session's shared services live in, and the
    trust store of one throwaway certificate."""
    if os.environ.get(SESSION_DIR):
        return
    # Not under pytest's tmp dirs: they are per worker and private to this user, and the
    # server runs as `postgres` when the tests run as root.
    directory = Path(tempfile.mkdtemp(prefix="vg-session-", dir=_memory_backed_tmp()))
    os.environ[SESSION_DIR] = str(directory)
    config.stash[_OWN_SESSION_DIR] = directory
    trust = directory / "trust.pem"
    trust.write_bytes(CertificateAuthority("vehicle-gateway test session").certificate)
    config.stash[_TRUST_BEFORE] = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(trust)


def pytest_unconfigure(config: pytest.Config) -> None:
    """After every worker has finished: stop what the session started, remove its folder."""
    directory = config.stash.get(_OWN_SESSION_DIR, None)
    if directory is None:
        return
    try:
        stop_shared_postgres(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        del os.environ[SESSION_DIR]
        trust_before = config.stash[_TRUST_BEFORE]
        if trust_before is None:
            os.environ.pop("SSL_CERT_FILE", None)
        else:
            os.environ["SSL_CERT_FILE"] = trust_before


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the session: the configured one, or the session's throwaway
    cluster (shared by its workers; each test database is a copy of one migrated once)."""
    configured = os.environ.get("VG_TEST_POSTGRES_URL")
    if configured:
        yield Postgres(None, configured)
        return
    if postgres_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: `make test` installs it")
        pytest.skip("PostgreSQL is not installed here (make test installs it)")
    cluster, template = shared_postgres(Path(os.environ[SESSION_DIR]), _migrated_template)
    yield Postgres(cluster, None, template=template)


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated to the newest revision once per worker, which each SQLite
    test of the rpc tier and each storage test's `engine` copies (as each PostgreSQL test
    copies a migrated template database): a gateway starting on it finds nothing to
    migrate. Migrating from nothing is the storage migration tests' subject, and
    `vehicle-gateway serve` starts from nothing in the walkthrough and container tests."""
    from storage.database import create_engine, migrate

    path = tmp_path_factory.mktemp("migrated") / "gateway.db"

    async def upgrade() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await migrate(engine)
        finally:
            await engine.dispose()

    run_apart(upgrade)
    return path


def copy_of(template: Path, database: Path) -> Path:
    """Copy a SQLite `template` to `database`, in an owner-only folder as the gateway makes
    its own (0700, the file 0600); return `database`."""
    database.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    shutil.copyfile(template, database)
    database.chmod(0o600)
    return database


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
