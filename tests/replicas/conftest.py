"""Where the replica tests run under pytest-xdist.

Each of them starts a simulator and gateway processes and waits on real time: tens of
seconds each, little CPU. Left in collection order they all fall at the front of one
worker's share (xdist's work stealing first hands each worker one contiguous share of the
collection, and steals from the back of a queue), so they ran one after another, over
three minutes on one worker, while the others ran everything else. Here they are spread
over the front of the workers' shares, so that they wait side by side from the start.
Only the order changes: every test still runs, on a worker of its own choosing.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(trylast=True)  # after any deselection: the shares are of what is left
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the replica tests at the front of the workers' shares, in turn."""
    workers = int(getattr(config, "workerinput", {}).get("workercount", 1))
    ours = [item for item in items if HERE in item.path.parents]
    if workers < 2 or not ours or len(items) < 2 * workers * len(ours):
        return
    others = iter([item for item in items if HERE not in item.path.parents])
    share_starts = [k * len(items) // workers for k in range(workers)]
    placed = {share_starts[j % workers] + j // workers: item for j, item in enumerate(ours)}
    items[:] = [placed.get(position) or next(others) for position in range(len(items))]
