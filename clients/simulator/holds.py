"""Held answers: what the `hold` fault keeps back until the test releases it.

A `hang` waits a fixed real time, so a test that relies on it races a timer. A `hold`
waits for no clock: the request is processed (a command is carried out), its answer waits
until `POST /sim/holds/release` (or the server stopping), and `GET /sim/holds?total=N`
answers once N answers have been held, so a test knows the request reached Smartcar
before it does anything else (cancel the call, let a deadline pass, release it).
"""

from __future__ import annotations

import asyncio
import contextlib


class Holds:
    """Answers held back by `hold` faults, and an event per release."""

    def __init__(self) -> None:
        self.held = 0
        """Answers waiting now."""
        self.total = 0
        """Answers ever held."""
        self._release = asyncio.Event()
        self._changed = asyncio.Condition()

    async def hold(self, stopping: asyncio.Event) -> None:
        """Wait until the next release (or `stopping`), counted as held meanwhile."""
        release = self._release
        async with self._changed:
            self.held += 1
            self.total += 1
            self._changed.notify_all()
        try:
            waits = [asyncio.ensure_future(release.wait()), asyncio.ensure_future(stopping.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        finally:
            self.held -= 1

    def release(self) -> int:
        """Let every held answer go; return how many were held."""
        released = self.held
        self._release.set()
        self._release = asyncio.Event()
        return released

    async def wait_for_total(self, total: int, *, timeout_s: float) -> bool:
        """Return once `total` answers have been held (True), or after `timeout_s` (False)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(lambda: self.total >= total)
        return self.total >= total

    def to_json(self) -> dict[str, int]:
        """Return the counts as `/sim/holds` answers them."""
        return {"held": self.held, "total": self.total}
