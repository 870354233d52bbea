"""Throwaway servers for tests: a PostgreSQL cluster on a loopback port, made and removed
by the test session (no Docker here; `make test` installs the Debian packages if missing).

    with PostgresCluster.start(tmp_dir) as cluster:
        url = cluster.create_database("gateway_test")   # postgresql+asyncpg://…

The cluster runs as the `postgres` system user when the tests run as root (PostgreSQL
refuses to run as root), trusts loopback connections, and keeps its data in `tmp_dir`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

POSTGRES_ROOTS = (Path("/usr/lib/postgresql"),)


def postgres_bin() -> Path | None:
    """Return the newest PostgreSQL bin directory installed, if any."""
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
    def start(cls, directory: Path) -> Iterator[PostgresCluster]:
        """Create, start and (at the end) stop and remove a cluster under `directory`."""
        binaries = postgres_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed (make test installs it)")
        as_user = "postgres" if os.geteuid() == 0 else None
        directory.mkdir(parents=True, exist_ok=True)
        if as_user is not None:
            shutil.chown(directory, user=as_user)
        cluster = cls(bin=binaries, data=directory / "data", port=free_port(), as_user=as_user)
        cluster._run(
            "initdb", "-D", str(cluster.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        cluster._run(
            "pg_ctl",
            "-D",
            str(cluster.data),
            "-l",
            str(directory / "postgres.log"),
            "-w",
            "-o",
            f"-c listen_addresses=127.0.0.1 -p {cluster.port} -k {directory} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=300",
            "start",
        )
        try:
            yield cluster
        finally:
            cluster._run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "-w", "stop")

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of a database of this cluster."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create a database (dropping an older one of that name); return its URL."""
        for statement in (f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"'):
            self._run(
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
                statement,
            )
        return self.url(name)

    def _run(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if self.as_user is not None:
            command = ["runuser", "-u", self.as_user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{program} failed ({done.returncode}): {done.stderr.strip()}")


@dataclass
class RedisServer:
    """A throwaway redis-server on a loopback port, without persistence."""

    process: subprocess.Popen[bytes]
    port: int

    @classmethod
    @contextlib.contextmanager
    def start(cls, directory: Path) -> Iterator[RedisServer]:
        """Start redis-server in `directory`; stop it at the end."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (make test installs it)")
        port = free_port()
        process = subprocess.Popen(
            [
                binary,
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
