"""Running the simulator: on the caller's event loop, or on its own loop in a thread.

`serve_simulator` binds before it yields (port 0 picks a free port) and, on exit, stops
listening, wakes handlers sleeping for latency or a hang, and gives in-flight requests at
most `SHUTDOWN_TIMEOUT_S` before cancelling them, so a test never waits out a hang.
`SimulatorThread` runs the same server for synchronous callers such as the official SDK.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from aiohttp import web

from clients.simulator.app import create_app
from clients.simulator.config import SimulatorConfig
from clients.simulator.state_file import StateFile, StateFileError
from clients.simulator.world import World

SHUTDOWN_TIMEOUT_S = 1.0

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class RunningSimulator:
    """A simulator that is listening: where to reach it, and its world (same loop only)."""

    host: str
    port: int
    world: World

    @property
    def base_url(self) -> str:
        """Return the origin, e.g. `http://127.0.0.1:54321` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@asynccontextmanager
async def serve_simulator(
    config: SimulatorConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_file: Path | None = None,
) -> AsyncIterator[RunningSimulator]:
    """Serve a simulator on `host:port` for the duration of the `async with` block; with a
    `state_file`, start from the state stored there and keep it there (see `state_file`)."""
    world = World(config or SimulatorConfig())
    stored = None if state_file is None else StateFile(state_file)
    if stored is not None:
        stored.restore(world)
        stored.save(world)  # the file exists from the start, with this run's client
    app = create_app(world, state_file=stored)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        yield RunningSimulator(host=host, port=bound_port, world=world)
    finally:
        world.stopping.set()
        await runner.cleanup()
        if stored is not None:
            try:
                stored.save(world)
            except StateFileError as exc:  # stopping anyway: say so, do not mask the exit
                _log.warning("simulator state not saved: %s", exc)


class SimulatorThread:
    """The simulator on its own event loop in a daemon thread, for synchronous callers."""

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout_s: float = 10.0,
    ) -> None:
        self._config = config or SimulatorConfig()
        self._host = host
        self._port = port
        self._startup_timeout_s = startup_timeout_s
        self._ready = threading.Event()
        self._running: RunningSimulator | None = None
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="smartcar-simulator", daemon=True)

    @property
    def base_url(self) -> str:
        """Return the origin of the running simulator."""
        return self._require_running().base_url

    @property
    def port(self) -> int:
        """Return the port the simulator listens on."""
        return self._require_running().port

    def __enter__(self) -> Self:
        """Start the thread and wait until the simulator listens (or failed to)."""
        self._thread.start()
        if not self._ready.wait(self._startup_timeout_s):
            raise TimeoutError("the simulator did not start in time")
        if self._error is not None:
            raise RuntimeError("the simulator failed to start") from self._error
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop the simulator and join its thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=SHUTDOWN_TIMEOUT_S + 5)

    def _require_running(self) -> RunningSimulator:
        """Return the running simulator, or fail if the thread was not entered."""
        if self._running is None:
            raise RuntimeError("the simulator thread is not running; use it as a context manager")
        return self._running

    def _run(self) -> None:
        """Thread body: run the server until told to stop."""
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - handed to the caller of __enter__
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        """Serve until the stop event is set."""
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve_simulator(self._config, host=self._host, port=self._port) as running:
            self._running = running
            self._ready.set()
            await self._stop.wait()
