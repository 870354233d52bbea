"""Throwaway servers for tests: a PostgreSQL cluster on a loopback port, made and removed
by the test session (no Docker here; `make test` installs the Debian packages if missing).

    with PostgresCluster.start(tmp_dir) as cluster:
        url = cluster.create_database("gateway_test")   # postgresql+asyncpg://…

The cluster runs as the `postgres` system user when the tests run as root (PostgreSQL
refuses to run as root), trusts loopback connections, and keeps its data in `tmp_dir`.

The worker processes of one session share a cluster (`shared_postgres`): the first to need
it starts it under a file lock in the session's folder, the others attach to it, and the
process that made the folder stops it (`stop_shared_postgres`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import json
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

# Where scripts/ensure_services.sh unpacks what the machine lacks (Debian packages, never
# installed system-wide): its programs need its libraries on the loader's path.
UNPACKED = Path(__file__).resolve().parents[1] / ".services" / "root"
POSTGRES_ROOTS = (Path("/usr/lib/postgresql"), UNPACKED / "usr" / "lib" / "postgresql")


def _unpacked_libraries() -> list[Path]:
    return sorted(p for p in (UNPACKED / "usr" / "lib").glob("*-linux-gnu*") if p.is_dir())


def program_environment(program: Path | str) -> dict[str, str]:
    """The environment to run `program` in: the unpacked libraries first when it is unpacked."""
    environment = dict(os.environ)
    if str(program).startswith(str(UNPACKED)):
        paths = [str(p) for p in _unpacked_libraries()]
        if environment.get("LD_LIBRARY_PATH"):
            paths.append(environment["LD_LIBRARY_PATH"])
        environment["LD_LIBRARY_PATH"] = os.pathsep.join(paths)
    return environment


def postgres_bin() -> Path | None:
    """Return the newest PostgreSQL bin directory installed or unpacked, if any."""
    for root in POSTGRES_ROOTS:
        if root.is_dir():
            versions = sorted(
                (p for p in root.iterdir() if (p / "bin" / "pg_ctl").exists()),
                key=lambda p: int(p.name) if p.name.isdigit() else 0,
            )
            if versions:
                return versions[-1] / "bin"
    found = shutil.which("pg_ctl")
    return Path(found).parent if found else None


def _unprivileged_user() -> str:
    """The user a root test session runs PostgreSQL as (it refuses to run as root)."""
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "nobody"  # no system PostgreSQL: its user does not exist either
    return "postgres"


def redis_binary() -> Path | None:
    """Return the redis-server installed or unpacked, if any."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    unpacked = UNPACKED / "usr" / "bin" / "redis-server"
    return unpacked if unpacked.exists() else None


def promtool_binary() -> Path | None:
    """Return the promtool installed or unpacked (scripts/ensure_promtool.sh), if any."""
    found = shutil.which("promtool")
    if found:
        return Path(found)
    unpacked = UNPACKED / "usr" / "bin" / "promtool"
    return unpacked if unpacked.exists() else None


def free_port() -> int:
    """Return a TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running throwaway cluster."""

    bin: Path
    data: Path
    port: int
    as_user: str | None

    @classmethod
    @contextlib.contextmanager
    def start(cls, directory: Path, *, durable: bool = False) -> Iterator[PostgresCluster]:
        """Create, start and (at the end) stop and remove a cluster under `directory`."""
        cluster = cls.create(directory, durable=durable)
        try:
            yield cluster
        finally:
            cluster.stop()

    @classmethod
    def create(cls, directory: Path, *, durable: bool = False) -> PostgresCluster:
        """Create and start a cluster under `directory`; the caller stops it (`stop`).
        `durable` keeps PostgreSQL's own durability settings (each commit flushed to
        disk), for benchmarks that measure what a durable commit costs."""
        binaries = postgres_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed (make test installs it)")
        as_user = _unprivileged_user() if os.geteuid() == 0 else None
        directory.mkdir(parents=True, exist_ok=True)
        if as_user is not None:
            shutil.chown(directory, user=as_user)
        cluster = cls(bin=binaries, data=directory / "data", port=free_port(), as_user=as_user)
        cluster._run(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        # Durability is worth nothing in a throwaway cluster; neither is autovacuum, whose
        # workers would visit each of the hundreds of short-lived test databases in turn.
        # Shared memory segments are files in the data folder (not /dev/shm, where an
        # immediate stop would leave them behind). One cluster serves every worker of a
        # session, each running gateways with connection pools.
        speed = "" if durable else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
        cluster._run(
            "pg_ctl",
            "-D",
            str(cluster.data),
            "-l",
            str(directory / "postgres.log"),
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {directory} {speed}"
            "-c autovacuum=off -c dynamic_shared_memory_type=mmap -c max_connections=1200",
            "start",
        )
        return cluster

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def to_json(self) -> dict[str, Any]:
        """What another process of the session needs to use (and stop) this cluster."""
        return {**asdict(self), "bin": str(self.bin), "data": str(self.data)}

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> PostgresCluster:
        """The cluster `to_json` described."""
        return cls(
            bin=Path(fields["bin"]),
            data=Path(fields["data"]),
            port=int(fields["port"]),
            as_user=fields["as_user"],
        )

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of a database of this cluster."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """Create a database (dropping an older one of that name), a copy of `template` when
        given; return its URL."""
        import asyncpg  # type: ignore[import-untyped]

        async def create() -> None:
            connection = await asyncpg.connect(
                host="127.0.0.1", port=self.port, user="postgres", database="postgres"
            )
            try:
                copy = f' TEMPLATE "{template}"' if template else ""
                # PostgreSQL 15 copies a template through the WAL by default; copying its
                # files (as older versions do) costs the server a third less per database.
                if template and connection.get_server_version().major >= 15:
                    copy += " STRATEGY FILE_COPY"
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
                await connection.execute(f'CREATE DATABASE "{name}"{copy}')
            finally:
                await connection.close()

        run_apart(create)
        return self.url(name)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env=program_environment(self.bin),
        )
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")


def run_apart(work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a coroutine to its end on a loop in a thread of its own: the test that first asks
    for PostgreSQL (from an async fixture) may be running its own loop in this thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        thread.submit(lambda: asyncio.run(work())).result()


SHARED_CLUSTER = "postgres.json"
"""In a session's folder: how to reach the cluster its first worker started."""


def shared_postgres(
    session: Path, prepare: Callable[[PostgresCluster], str]
) -> tuple[PostgresCluster, str]:
    """The session's cluster and what `prepare` returned for it (the name of its migrated
    template database). The first process to ask starts and prepares it, holding a lock in
    `session` (the folder the session made for its services); the others wait for the lock
    and attach. Whatever happens, `stop_shared_postgres` stops it."""
    # The server's user must reach its folder inside the session's (private) one.
    session.chmod(0o711)
    with (session / "postgres.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        described = session / SHARED_CLUSTER
        if described.exists():
            shared = json.loads(described.read_text())
            return PostgresCluster.from_json(shared["cluster"]), str(shared["template"])
        directory = session / "postgres"
        try:
            cluster = PostgresCluster.create(directory)
            template = prepare(cluster)
        except BaseException:
            stop_shared_postgres(session)
            shutil.rmtree(directory, ignore_errors=True)  # the next to ask starts afresh
            raise
        scratch = described.with_suffix(".tmp")
        scratch.write_text(json.dumps({"cluster": cluster.to_json(), "template": template}))
        scratch.replace(described)
        return cluster, template


def stop_shared_postgres(session: Path) -> None:
    """Stop the cluster a process started in `session`, if one is running there."""
    data = session / "postgres" / "data"
    binaries = postgres_bin()
    if (data / "postmaster.pid").exists() and binaries is not None:
        as_user = _unprivileged_user() if os.geteuid() == 0 else None
        PostgresCluster(bin=binaries, data=data, port=0, as_user=as_user).stop()


@dataclass
class RedisServer:
    """A throwaway redis-server on a loopback port, without persistence."""

    process: subprocess.Popen[bytes]
    port: int

    @classmethod
    @contextlib.contextmanager
    def start(cls, directory: Path) -> Iterator[RedisServer]:
        """Start redis-server in `directory`; stop it at the end."""
        binary = redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        port = free_port()
        process = subprocess.Popen(
            [
                str(binary),
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(directory),
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=program_environment(binary),
        )
        server = cls(process=process, port=port)
        try:
            server.wait_ready()
            yield server
        finally:
            server.stop()

    @property
    def url(self) -> str:
        """The redis:// URL of database 0."""
        return f"redis://127.0.0.1:{self.port}/0"

    def wait_ready(self, timeout_s: float = 10.0) -> None:
        """Wait until the server accepts connections."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return
            time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """Stop the server (it holds nothing worth keeping)."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
