"""Settling commands whose outcome is unknown, from the state the car reports.

A command that was sent but never answered (a timeout, Smartcar 5xx, a reset, the caller
cancelling, the worker dying) is kept OUTCOME_UNKNOWN. The field the command changes
settles it (`verdict`): the lock status for Lock and Unlock, the charge for the charge
commands (`command_effects` says which field and what each reading proves):

- a reading recorded after the command was sent that shows the requested state:
  SUCCEEDED, completed when the car reported it; the vehicle's last command follows;
- a reading of the opposite state (unlocked after a Lock, NOT_CHARGING after a start,
  another limit after a set-limit) recorded once the command cannot be on its way any
  more (`ReconcilePolicy.settle` after sending, Smartcar's documented maximum latency):
  FAILED, replayed as `CommandNotApplied`;
- nothing else proves anything: not a reading from before the command, nor one recorded
  after a later command of the same car was sent (that one may have changed the state),
  nor one from long after (`horizon`: the car may have been locked by hand since), nor a
  reading that shows neither (FULLY_CHARGED, a car that reports no limit).

When it looks, and what that costs:

- for free, at every replay of the request id and at every pass: the reading already
  held (webhooks, scheduler polls and other callers' reads keep it current);
- by asking the car, from the background job (`run_once`, one leased replica, at the
  scheduler's interval), at fixed ages of the command (`checks`: 1, 6 and 30 minutes
  after sending): one read of that field per age at most, and none while a reading
  fetched after that age is held. Reads take the normal telemetry path at the scheduler's
  priority (`CallKind.POLL`): the per-vehicle buckets, Smartcar cooldowns, sleep backoff
  and the app-wide bucket's reserve for commands all apply; a read our limits refuse
  costs nothing and is tried again at the next pass. The reads are part of the command
  (`ReadPurpose.COMMAND_CHECK`): they may spend the reserve the budget keeps for commands,
  but never take a car past its monthly allowance (the budget refuses them, asking
  nothing). So an unknown outcome costs at most three billed requests per replica running
  the job.

A PENDING record older than `PENDING_TIMEOUT` belongs to a worker that stopped: it becomes
OUTCOME_UNKNOWN and is settled like any other.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.core.cache import TelemetryCache
from gateway.core.command_effects import describe, effect_field, shows
from gateway.core.errors import CommandNotApplied, GatewayError, RateLimited
from gateway.core.model import (
    Availability,
    CommandError,
    CommandRecord,
    CommandState,
    FieldReading,
    LastCommand,
    TelemetryValue,
)
from gateway.core.ports import Clock, UnitOfWorkFactory
from gateway.core.purpose import ReadPurpose
from gateway.core.telemetry import TelemetryService
from gateway.core.vehicles import require_vehicle

_log = logging.getLogger(__name__)

PENDING_TIMEOUT = timedelta(minutes=5)
"""A PENDING record older than this belongs to a worker that stopped: outcome unknown."""
STOPPED_WORKER = "the worker sending it stopped before the answer came"


@dataclass(frozen=True, slots=True, kw_only=True)
class ReconcilePolicy:
    """When the car is asked about an unknown outcome, and what its answer proves."""

    checks: tuple[timedelta, ...] = (
        timedelta(minutes=1),
        timedelta(minutes=6),
        timedelta(minutes=30),
    )
    """Ages of the command at which its field is read (once each at most)."""
    settle: timedelta = timedelta(minutes=5)
    """How long after sending the opposite state proves failure: Smartcar's maximum
    response latency ("expect a maximum response latency of 300 seconds")."""
    horizon: timedelta = timedelta(hours=1)
    """After this, readings prove nothing (a hand on the key) and the car is not asked."""
    batch: int = 100
    """Open outcomes looked at per pass."""


def verdict(
    record: CommandRecord,
    reading: FieldReading | None,
    *,
    next_sent_at: datetime | None,
    policy: ReconcilePolicy,
) -> CommandState | None:
    """Return what a reading of the command's field proves about it: SUCCEEDED, FAILED,
    or None when it proves nothing."""
    if reading is None or reading.availability is not Availability.AVAILABLE:
        return None
    recorded = reading.recorded_at
    if reading.value is None or recorded is None:
        return None
    sent = record.created_at
    if recorded <= sent or recorded >= sent + policy.horizon:
        return None
    if next_sent_at is not None and recorded >= next_sent_at:
        return None
    happened = shows(record.command, reading.value)
    if happened is None:
        return None
    if happened:
        return CommandState.SUCCEEDED
    return CommandState.FAILED if recorded >= sent + policy.settle else None


@dataclass(slots=True)
class ReconcileReport:
    """What one pass did."""

    looked_at: int = 0
    asked: int = 0
    succeeded: int = 0
    failed: int = 0


class CommandReconciler:
    """Settles unknown command outcomes from the car's state."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        telemetry: TelemetryService,
        cache: TelemetryCache,
        clock: Clock,
        policy: ReconcilePolicy = ReconcilePolicy(),
    ) -> None:
        self._uow = uow
        self._telemetry = telemetry
        self._cache = cache
        self._clock = clock
        self._policy = policy
        self._asked: dict[str, int] = {}
        """Per request id: how many of `policy.checks` this process has asked the car for."""

    async def run_once(self) -> ReconcileReport:
        """Look at every open outcome: settle it from what is held, else ask the car when
        one of its checks is due."""
        now = self._clock.now()
        async with self._uow.reader() as uow:
            records = await uow.commands.unresolved(
                sent_after=now - self._policy.horizon,
                pending_before=now - PENDING_TIMEOUT,
                limit=self._policy.batch,
            )
        report = ReconcileReport()
        open_ids = set()
        for record in records:
            report.looked_at += 1
            settled = await self.settle(record)
            if settled.state is CommandState.OUTCOME_UNKNOWN:
                open_ids.add(record.request_id)
                settled = await self._ask(settled, now, report)
            report.succeeded += settled.state is CommandState.SUCCEEDED
            report.failed += settled.state is CommandState.FAILED
        self._asked = {k: v for k, v in self._asked.items() if k in open_ids}
        return report

    async def settle(
        self, record: CommandRecord, reading: FieldReading | None = None
    ) -> CommandRecord:
        """Resolve an open outcome if `reading` (default: the reading of the command's field
        held now) proves it; return the record as it now stands. An abandoned PENDING
        becomes unknown."""
        if record.state is CommandState.PENDING:
            record = await self._abandoned(record)
        if record.state is not CommandState.OUTCOME_UNKNOWN:
            return record
        field = effect_field(record.command)
        if reading is None:
            reading = (await self._cache.refresh(record.vehicle_id)).get(field)
        async with self._uow.reader() as uow:
            next_sent_at = await uow.commands.next_sent_at(
                record.vehicle_id, after=record.created_at, request_id=record.request_id
            )
        state = verdict(record, reading, next_sent_at=next_sent_at, policy=self._policy)
        if state is None or reading is None or reading.recorded_at is None:
            return record
        return await self._resolve(record, state, reading)

    async def _ask(
        self, record: CommandRecord, now: datetime, report: ReconcileReport
    ) -> CommandRecord:
        """Read the command's field if a check is due and not yet asked for; settle from it."""
        due = [age for age in self._policy.checks if record.created_at + age <= now]
        if not due or self._asked.get(record.request_id, 0) >= len(due):
            return record
        if now >= record.created_at + self._policy.horizon:  # no reading could prove it now
            return record
        asked_before = self._asked.get(record.request_id, 0)
        self._asked[record.request_id] = len(due)
        since = record.created_at + due[-1]
        field = effect_field(record.command)
        try:
            answer = await self._telemetry.get(
                record.vehicle_id,
                fields=frozenset({field}),
                max_age=now - since,
                purpose=ReadPurpose.COMMAND_CHECK,
            )
        except RateLimited:  # refused before asking (limits, budget): it cost nothing
            self._asked[record.request_id] = asked_before
            return record
        except GatewayError as failed:  # asleep, unreachable, Smartcar failing: next check
            _log.debug("reconciliation read failed: %s", failed.reason)
            return record
        report.asked += not answer.from_cache
        return await self.settle(record, answer.readings.get(field))

    async def _abandoned(self, record: CommandRecord) -> CommandRecord:
        """Mark a PENDING record whose worker stopped as OUTCOME_UNKNOWN (if still PENDING)."""
        if self._clock.now() - record.created_at <= PENDING_TIMEOUT:
            return record
        unknown = dataclasses.replace(
            record,
            state=CommandState.OUTCOME_UNKNOWN,
            completed_at=self._clock.now(),
            error=CommandError(kind="CommandOutcomeUnknown", message=STOPPED_WORKER),
        )
        async with self._uow() as uow:
            changed = await uow.commands.resolve(unknown, was=CommandState.PENDING)
            current = unknown if changed else await uow.commands.get(record.request_id)
            await uow.commit()
        return current or unknown

    async def _resolve(
        self, record: CommandRecord, state: CommandState, reading: FieldReading
    ) -> CommandRecord:
        """Write the verdict (unless another worker settled it first); a success also
        becomes the vehicle's last command, unless a later one already is."""
        recorded_at = reading.recorded_at
        assert recorded_at is not None  # by `verdict`, which needs a time and a value
        assert reading.value is not None
        succeeded = state is CommandState.SUCCEEDED
        done = dataclasses.replace(
            record,
            state=state,
            completed_at=recorded_at if succeeded else record.completed_at,
            error=None if succeeded else _not_applied(record, reading.value),
        )
        async with self._uow() as uow:
            # The vehicle row first, then the command: the order every writer keeps.
            vehicle = await require_vehicle(uow, record.vehicle_id, for_update=succeeded)
            if not await uow.commands.resolve(done, was=CommandState.OUTCOME_UNKNOWN):
                return await uow.commands.get(record.request_id) or record
            last = vehicle.last_command
            if succeeded and (last is None or last.at < recorded_at):
                latest = LastCommand(action=done.action, request_id=done.request_id, at=recorded_at)
                await uow.vehicles.update(dataclasses.replace(vehicle, last_command=latest))
            await uow.commit()
        _log.info(
            "command outcome settled from the car's state",
            extra={"event": "command_reconciled", "vehicle": record.vehicle_id, "state": state},
        )
        return done


def _not_applied(record: CommandRecord, shown: TelemetryValue) -> CommandError:
    """The stored error of a command the car's state (`shown`) proves did not happen."""
    command = record.command
    name = command.action.value.lower().replace("_", " ")
    message = (
        f"the car still reported {describe(command, shown)} once the {name} could no "
        "longer be on its way: it did not happen; send a new command to try again"
    )
    return CommandError(kind=CommandNotApplied.__name__, message=message)
