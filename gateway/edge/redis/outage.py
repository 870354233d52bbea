"""One log line when Redis goes away and one when it is back, per thing that uses it."""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

_log = logging.getLogger(__name__)


class RedisOutage:
    """Tracks whether Redis answered last time, logging only the changes."""

    def __init__(self, what: str, meanwhile: str) -> None:
        self._what = what
        self._meanwhile = meanwhile
        self.down_now = False

    def down(self, error: RedisError) -> None:
        """Redis did not answer: log it, once per outage."""
        if not self.down_now:
            self.down_now = True
            _log.error(
                "Redis unreachable: %s: %s",
                self._what,
                self._meanwhile,
                extra={"event": "redis_down", "error": type(error).__name__},
            )

    def up(self) -> None:
        """Redis answered: log the recovery once."""
        if self.down_now:
            self.down_now = False
            _log.warning(
                "Redis reachable again: %s shared again",
                self._what,
                extra={"event": "redis_up"},
            )
