"""Driving a feed (`gateway.core.watch.Feed`) in tests without real time: its poller's
sleep naps until the test says `tick`, and streams are read in the background."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Protocol

STEP_TIMEOUT_S = 5.0
"""A bound on waiting for an event that must come; never reached when the code is right."""


class _Row(Protocol):
    @property
    def id(self) -> int | None: ...


class Naps:
    """The poller's sleep: it naps until the test calls `tick`; no real time passes."""

    def __init__(self) -> None:
        self.taken = 0
        self.cancelled = 0
        self.asleep = asyncio.Event()
        self._wake = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        """Nap until woken (or cancelled)."""
        self.taken += 1
        self._wake.clear()
        self.asleep.set()
        try:
            await self._wake.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            self.asleep.clear()
            raise

    def wake(self) -> None:
        """Wake the napping poller without waiting for its next nap."""
        self._wake.set()

    async def tick(self) -> None:
        """Wake the napping poller; return once it has polled and naps again."""
        await asyncio.wait_for(self.asleep.wait(), STEP_TIMEOUT_S)
        self.asleep.clear()
        self._wake.set()
        await asyncio.wait_for(self.asleep.wait(), STEP_TIMEOUT_S)


class Stream:
    """One open stream, read in the background: what it received, and how it ended."""

    def __init__(self, changes: AsyncIterator[_Row]) -> None:
        self.changes = changes
        self.received: list[int] = []
        self.ended: BaseException | None = None
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for change in self.changes:
                self.received.append(change.id or 0)
        except Exception as exc:  # noqa: BLE001 - kept for the test to assert on
            self.ended = exc

    async def close(self) -> None:
        """Hang up, as a caller cancelling its call does."""
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until `condition` holds.

    First 1,000 bare loop turns (enough for fakes); then, for feeds over a real database
    whose answers arrive as I/O, turns that yield a millisecond each, up to about 20 s on
    a loaded machine. A bound against hanging, not a timing: no test asserts how soon."""
    for turn in range(21_000):
        if condition():
            return
        await asyncio.sleep(0 if turn < 1_000 else 0.001)
    raise AssertionError("the condition never held")
