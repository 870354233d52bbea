"""A simulator's state kept in a file, so a restarted simulator is the same Smartcar.

Without a state file a simulator forgets everything when it stops (tests, benchmarks, the
standalone `vehicle-gateway simulator` unless given `--state-file`). With one, it starts
from what the file holds and writes it back:

- what is kept: the client it serves (id, secret, management token), the simulated clock's
  offset, users and connections (with their permissions), the codes and tokens still
  usable (so a client's stored tokens keep working), the API V3 client secrets and
  application tokens still valid, the registered webhooks (without their delivery logs)
  and their V3 subscriptions, the garage (vehicles added, lock, doors, sleep, plug,
  charging, charge limit) and the monthly billed counts;
- what is not: rate-limit buckets (they start full), armed faults, stats and deliveries in
  flight;
- when: after every request that may change it (anything but a GET, and Connect's
  `GET /oauth/authorize`), before the answer leaves, and when the simulator stops; a GET
  read only moves billed counts, which are written with the next change;
- how: JSON, written to a temporary file in the same directory (mode 0600: it holds
  tokens and the client secret) and renamed over the old one, so a crash leaves the old
  file or the new one, never half of one.

A file this module cannot read raises `StateFileError` naming it; delete it to start afresh.
Files written before API V3 (no `iam`, `webhooks` or `subscriptions`, connections without
permissions, vehicles without a charge state) are still read: what they lack starts as a
new simulator has it, and connections get the default permissions.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clients.simulator.accounts import Accounts
from clients.simulator.clock import SimClock
from clients.simulator.subscriptions import Subscriptions
from clients.simulator.world import World

FORMAT = 1
"""The file's format version; a file of another version is refused."""


class StateFileError(ValueError):
    """The state file cannot be read or written; the message names it and says why."""


@dataclass(frozen=True, kw_only=True)
class StoredClient:
    """The client a state file's simulator served: reuse it, or its tokens are refused."""

    client_id: str
    client_secret: str | None
    management_token: str | None

    def __repr__(self) -> str:
        return f"StoredClient(client_id={self.client_id!r}, secrets=…)"


class StateFile:
    """Where one simulator keeps its state between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._written: bytes | None = None

    def read(self) -> dict[str, Any] | None:
        """Return the stored state, None when there is no file yet."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateFileError(f"{self.path}: cannot read it: {exc.strerror}") from None
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise self._unreadable("not JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise self._unreadable(f"not a simulator state of format {FORMAT}")
        self._written = raw
        return data

    def client(self) -> StoredClient | None:
        """Return the client the stored simulator served (None: no file, or no client)."""
        data = self.read()
        client = None if data is None else data.get("client")
        if not isinstance(client, dict) or not isinstance(client.get("client_id"), str):
            return None
        return StoredClient(
            client_id=client["client_id"],
            client_secret=_optional_str(client.get("client_secret")),
            management_token=_optional_str(client.get("management_token")),
        )

    def restore(self, world: World) -> None:
        """Give `world` the stored state, if there is a file."""
        data = self.read()
        if data is None:
            return
        config = world.config
        if data.get("seed") != config.seed:
            raise self._unreadable(f"it was written for seed {data.get('seed')}, not {config.seed}")
        try:
            world.clock = SimClock(config.start_at_s, offset_s=float(data["clock_offset_s"]))
            now_s = world.clock.now_s()
            world.garage.restore(data["garage"], now_s=now_s)
            world.accounts = Accounts.from_json(data["accounts"], seed=config.seed)
            world.limits.allowance.restore(data["billed"])
            _restore_v3(world, data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise self._unreadable(f"malformed ({type(exc).__name__}: {exc})") from None

    def save(self, world: World) -> None:
        """Write `world`'s state atomically (skipped when nothing changed since the last write)."""
        raw = json.dumps(snapshot(world), separators=(",", ":"), sort_keys=True).encode()
        if raw == self._written:
            return
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = directory / f".{self.path.name}.{os.getpid()}.tmp"
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(raw)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise StateFileError(f"{self.path}: cannot write it: {exc.strerror}") from None
        self._written = raw

    def _unreadable(self, why: str) -> StateFileError:
        return StateFileError(
            f"{self.path}: the simulator's state is unreadable ({why}); "
            "delete the file to start the simulator afresh"
        )


def snapshot(world: World) -> dict[str, Any]:
    """Return the state of `world` a restart needs, as JSON-ready data."""
    config = world.config
    now_s = world.clock.now_s()
    return {
        "format": FORMAT,
        "seed": config.seed,
        "client": {
            "client_id": config.client_id,
            "client_secret": config.client_secret,
            "management_token": config.management_token,
        },
        "clock_offset_s": world.clock.offset_s,
        "garage": world.garage.to_json(),
        "accounts": world.accounts.to_json(now_s=now_s, lifetimes=world.lifetimes),
        "billed": world.limits.allowance.to_json(),
        "iam": world.iam.to_json(now_s=now_s),
        "webhooks": world.webhooks.to_json(),
        "subscriptions": world.subscriptions.to_json(),
    }


def _restore_v3(world: World, data: dict[str, Any]) -> None:
    """Give `world` what API V3 added to the file, when the file has it."""
    config = world.config
    if "iam" in data:
        configured = () if config.client_secret is None else (config.client_secret,)
        world.iam.restore(data["iam"], configured=configured + config.additional_client_secrets)
    world.webhooks.restore(data.get("webhooks", []))
    world.subscriptions = Subscriptions.from_json(data.get("subscriptions", []))


def _optional_str(value: object) -> str | None:
    return value if isinstance(value, str) else None
