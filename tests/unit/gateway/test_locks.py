"""KeyedLocks: one lock per key while it is used, none kept after."""

from __future__ import annotations

import asyncio

import pytest

from gateway.core.locks import KeyedLocks


async def test_holders_of_one_key_take_turns_and_other_keys_do_not_wait() -> None:
    """A second holder of a key waits for the first; a holder of another key does not."""
    locks = KeyedLocks()
    order: list[str] = []
    first_in = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with locks.hold("car-1"):
            order.append("first in")
            first_in.set()
            await release_first.wait()
            order.append("first out")

    async def second() -> None:
        async with locks.hold("car-1"):
            order.append("second in")

    async def other() -> None:
        async with locks.hold("car-2"):
            order.append("other in")

    holder = asyncio.create_task(first())
    await first_in.wait()
    waiter = asyncio.create_task(second())
    await other()
    release_first.set()
    await asyncio.gather(holder, waiter)
    assert order == ["first in", "other in", "first out", "second in"]


async def test_no_lock_is_kept_once_its_last_user_leaves() -> None:
    """After holders and waiters are gone (an error included), no key is kept."""
    locks = KeyedLocks()
    release = asyncio.Event()

    async def hold_until_released() -> None:
        async with locks.hold("car-1"):
            await release.wait()

    tasks = [asyncio.create_task(hold_until_released()) for _ in range(3)]
    await asyncio.sleep(0)
    assert len(locks) == 1
    release.set()
    await asyncio.gather(*tasks)
    with pytest.raises(RuntimeError):
        async with locks.hold("car-2"):
            raise RuntimeError("the holder failed")
    assert len(locks) == 0


async def test_a_newcomer_after_a_release_still_waits_for_the_woken_waiter() -> None:
    """While a released lock's next waiter has not yet run, a newcomer queues behind it
    instead of getting a fresh lock of its own (never two holders of one key)."""
    locks = KeyedLocks()
    inside = 0
    most = 0
    release = asyncio.Event()

    async def hold() -> None:
        nonlocal inside, most
        async with locks.hold("req-1"):
            inside += 1
            most = max(most, inside)
            await release.wait()
            await asyncio.sleep(0)
            inside -= 1

    first = asyncio.create_task(hold())
    await asyncio.sleep(0)
    second = asyncio.create_task(hold())
    await asyncio.sleep(0)
    release.set()
    await asyncio.sleep(0)  # the first leaves; the second is woken but has not run yet
    third = asyncio.create_task(hold())
    await asyncio.gather(first, second, third)
    assert most == 1
    assert len(locks) == 0
