"""The instants test clocks start at.

Every clock in a test — the gateway's ManualClock and the simulator's — starts at an instant
named here or in the test itself, never at the real time, so the suite passes on any day: the
last minutes of a month or a year and a leap day included (CI also runs the unit tier under
libfaketime at such instants).
"""

from __future__ import annotations

from datetime import UTC, datetime

# Mid-month, mid-week, mid-day: far from every calendar boundary the policies care about.
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
START_S = START.timestamp()
