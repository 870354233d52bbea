"""Commands on a car (Lock, Unlock, StartCharge, StopCharge, SetChargeLimit), idempotent
per `request_id`.

The request id is recorded (PENDING) before anything is sent, under a unique key, so two
workers cannot both send a command for one id. Every record leaves PENDING before the call
ends, whatever ends it (an answer, an error, the caller cancelling): the last write is
shielded from cancellation. How each outcome is kept:

- success: SUCCEEDED; the vehicle's last command and the state the command changed (its
  lock state, or its charge: `command_effects.after`) are updated;
- a refusal by Smartcar or the car that happened there (door open, not capable, …):
  FAILED with the error, which a retry gets again without a second upstream command;
- sent but unanswered (timeout after sending, Smartcar 5xx, the caller cancelling while it
  was on its way, any unexpected exception after it left): OUTCOME_UNKNOWN, answered as
  UNAVAILABLE with `may_have_succeeded=true` until the car's state settles it (its lock
  state, or its charge: `gateway.core.reconcile`): a retry then gets the settled outcome;
- anything that proves nothing reached the car (our rate limits, Smartcar 429/430 and the
  manufacturer's rate limit, asleep, a connection that never opened, an expired
  authorization, a failure before sending such as a token that cannot be read): the record
  is dropped, so a retry with the same id runs the command afresh; the answer never says
  `may_have_succeeded`.

The same id with another vehicle, action or charge limit is INVALID_ARGUMENT. Lock and
Unlock need `control_security`, the charge commands `control_charge` (refused before
anything is sent when the owner did not grant it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import Awaitable
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

from gateway.core import errors
from gateway.core.audit import written_with
from gateway.core.cache import TelemetryCache
from gateway.core.command_effects import after, effect_field
from gateway.core.errors import (
    CommandInProgress,
    CommandOutcomeUnknown,
    GatewayError,
    InvalidArgument,
    VehicleNotFound,
)
from gateway.core.locks import KeyedLocks
from gateway.core.model import (
    Availability,
    Command,
    CommandAction,
    CommandError,
    CommandRecord,
    CommandResult,
    CommandState,
    FieldReading,
    LastCommand,
    SmartcarAccess,
    UpstreamFailure,
    Vehicle,
)
from gateway.core.permissions import command_permission, ensure_permission, withdraw_permissions
from gateway.core.ports import (
    Clock,
    Conflict,
    SmartcarAPI,
    TokenRejected,
    UnitOfWork,
    UnitOfWorkFactory,
)
from gateway.core.ratelimit import CallKind
from gateway.core.reading_events import store_readings
from gateway.core.reconcile import PENDING_TIMEOUT, CommandReconciler
from gateway.core.status import ensure_connected
from gateway.core.upstream import Upstream
from gateway.core.vehicle_events import ReadingOrigin
from gateway.core.vehicles import require_vehicle

DEFINITIVE_FAILURES: tuple[type[GatewayError], ...] = (
    errors.VehicleStateBlocks,
    errors.VehicleNotCapable,
    errors.PermissionMissing,
    errors.OwnerAccountIssue,
    errors.UpstreamRejected,
)
"""Refusals that happened at Smartcar or the car: kept, and replayed to retries."""

REPLAYED_FAILURES: tuple[type[GatewayError], ...] = (*DEFINITIVE_FAILURES, errors.CommandNotApplied)
"""What a FAILED record is replayed as (by the stored error's kind)."""

LOST_ANSWER = "the command was sent, but its answer was lost: it may have happened"
CANCELLED = "the call was cancelled while the command was on its way: it may have happened"

T = TypeVar("T")
_log = logging.getLogger(__name__)


class _Stage(Enum):
    """How far a command got: what an interruption at this point means for its outcome."""

    NOT_SENT = "not sent"
    """Nothing left for Smartcar yet, or Smartcar answered that it did not act."""
    SENDING = "sending"
    """On its way, unanswered: it may have happened."""
    CONFIRMED = "confirmed"
    """Smartcar confirmed it."""


class CommandService:
    """The command use cases: Lock, Unlock, StartCharge, StopCharge, SetChargeLimit."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        smartcar: SmartcarAPI,
        upstream: Upstream,
        cache: TelemetryCache,
        clock: Clock,
        reconciler: CommandReconciler,
    ) -> None:
        self._uow = uow
        self._smartcar = smartcar
        self._upstream = upstream
        self._cache = cache
        self._clock = clock
        self._reconciler = reconciler
        self._in_flight = KeyedLocks()
        self._writes: set[asyncio.Future[Any]] = set()
        """Durable writes in flight, kept referenced until they end (see `_durably`)."""

    async def run(
        self,
        vehicle_id: str,
        *,
        action: CommandAction,
        request_id: str,
        charge_limit_percent: int | None = None,
    ) -> CommandResult:
        """Send the command once per request id and return (or replay) its outcome.
        `charge_limit_percent` goes with SET_CHARGE_LIMIT (50-100), and only with it."""
        try:
            command = Command(action=action, charge_limit_percent=charge_limit_percent)
        except ValueError as wrong:
            raise InvalidArgument.of("limit_percent", str(wrong)) from None
        request_id = request_id or f"gw-{uuid.uuid4()}"
        async with self._in_flight.hold(request_id):
            return await self._run_once(vehicle_id, command, request_id)

    async def _run_once(self, vehicle_id: str, command: Command, request_id: str) -> CommandResult:
        async with self._uow.reader() as uow:  # plain reads: the claim is written with the charge
            existing = await uow.commands.get(request_id)
            vehicle = await require_vehicle(uow, vehicle_id)
        if existing is not None:
            return await self._replay(existing, vehicle_id, command)
        ensure_connected(vehicle)
        ensure_permission(vehicle, command_permission(command.action))
        record = CommandRecord(
            request_id=request_id,
            vehicle_id=vehicle_id,
            action=command.action,
            charge_limit_percent=command.charge_limit_percent,
            state=CommandState.PENDING,
            created_at=self._clock.now(),
        )
        return await self._execute(vehicle, record)

    async def _execute(self, vehicle: Vehicle, record: CommandRecord) -> CommandResult:
        """Claim the request id with the budget charge (the first durability point), send
        the command, and record how it ended (the second), even if the caller cancels
        meanwhile."""
        stage = _Stage.NOT_SENT
        claimed = False

        async def claim(uow: UnitOfWork) -> None:
            nonlocal claimed
            await uow.commands.add(record)  # Conflict: another worker has the request id
            claimed = True

        async def send(access: SmartcarAccess, smartcar_id: str) -> None:
            nonlocal stage
            stage = _Stage.SENDING
            try:
                await self._smartcar.command(access, smartcar_id, record.command)
            except (GatewayError, TokenRejected) as answered:
                if not isinstance(answered, CommandOutcomeUnknown):
                    stage = _Stage.NOT_SENT  # Smartcar answered: it did not act
                raise
            stage = _Stage.CONFIRMED

        try:
            await self._upstream.call(vehicle, CallKind.COMMAND, send, with_charge=claim)
        except Conflict:
            return await self._replay_stored(record.request_id, vehicle.id, record.command)
        except BaseException as failure:
            if stage is not _Stage.CONFIRMED:
                if claimed:
                    await self._durably(self._record_failure(vehicle, record, failure, stage))
                if stage is _Stage.SENDING and not isinstance(
                    failure, GatewayError | asyncio.CancelledError
                ):
                    raise CommandOutcomeUnknown(LOST_ANSWER) from failure
                raise
            if not isinstance(failure, Exception):  # cancelled (or exiting) after the answer
                await self._durably(self._succeeded(vehicle.id, record))
                raise
            # Smartcar confirmed it; what failed after (counting, health) is ours to log.
            _log.exception("bookkeeping after a confirmed command failed")
        return _result(await self._durably(self._succeeded(vehicle.id, record)), replayed=False)

    async def _record_failure(
        self, vehicle: Vehicle, record: CommandRecord, failure: BaseException, stage: _Stage
    ) -> None:
        """Keep what an unconfirmed command's failure says about its outcome."""
        if stage is _Stage.SENDING:
            await self._finish(record, CommandState.OUTCOME_UNKNOWN, _unknown_error(failure))
        elif isinstance(failure, DEFINITIVE_FAILURES):
            await self._finish(record, CommandState.FAILED, _error_of(failure))
            if isinstance(failure, errors.PermissionMissing):
                async with self._uow() as uow:
                    refused = {command_permission(record.action)}
                    await withdraw_permissions(uow, vehicle.id, refused, now=self._clock.now())
                    await uow.commit()
        else:
            await self._forget(record)

    async def _durably(self, write: Awaitable[T]) -> T:
        """Run a write that must complete even if the caller is cancelled meanwhile: the
        write runs in its own task, which a cancellation of this one does not reach."""
        task = asyncio.ensure_future(write)
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)
        return await asyncio.shield(task)

    async def _finish(
        self, record: CommandRecord, state: CommandState, error: CommandError | None
    ) -> CommandRecord:
        done = dataclasses.replace(record, state=state, completed_at=self._clock.now(), error=error)
        async with self._uow() as uow:
            await uow.commands.update(done)
            await uow.commit()
        return done

    async def _forget(self, record: CommandRecord) -> None:
        async with self._uow() as uow:
            await uow.commands.delete(record.request_id)
            await uow.commit()

    async def _succeeded(self, vehicle_id: str, record: CommandRecord) -> CommandRecord:
        """In one transaction (the second durability point): the command's outcome, the
        vehicle's last command, the state the command changed (`command_effects.after`)
        with the LOCK_STATE_CHANGED event when it changed the stored lock state, and the
        call's audit entry (`audit.written_with`)."""
        at = self._clock.now()
        done = dataclasses.replace(record, state=CommandState.SUCCEEDED, completed_at=at)
        field = effect_field(done.command)
        previous = (await self._cache.readings(vehicle_id)).get(field)
        reading = FieldReading(
            field=field,
            availability=Availability.AVAILABLE,
            value=after(done.command, previous.value if previous else None),
            recorded_at=at,
            fetched_at=at,
        )
        last = LastCommand(action=done.action, request_id=done.request_id, at=at)
        async with self._uow() as uow:
            await uow.commands.update(done)
            if not await uow.vehicles.note_command(vehicle_id, last):
                raise VehicleNotFound(
                    f"no vehicle with id {vehicle_id}", metadata={"vehicle_id": vehicle_id}
                )
            await store_readings(
                uow,
                vehicle_id,
                [reading],
                origin=ReadingOrigin.COMMAND,
                at=at,
                request_id=done.request_id,
            )
            audited = await written_with(uow, at=at)
            await uow.commit()
        if audited is not None:
            audited.written = True
        await self._cache.put(vehicle_id, [reading])
        return done

    async def _replay_stored(
        self, request_id: str, vehicle_id: str, command: Command
    ) -> CommandResult:
        async with self._uow() as uow:
            existing = await uow.commands.get(request_id)
        if existing is None:  # the other worker freed the key again: the caller may retry
            message = "a command with this request_id just ran; retry"
            raise CommandInProgress(message, retry_after_s=1.0)
        return await self._replay(existing, vehicle_id, command)

    async def _replay(
        self, record: CommandRecord, vehicle_id: str, command: Command
    ) -> CommandResult:
        """Answer a repeated request id with the first outcome (an open one settled first
        from the state held, if that proves it)."""
        if record.vehicle_id != vehicle_id or record.command != command:
            raise InvalidArgument.of(
                "request_id",
                f"was already used for {_named(record.command)} of vehicle {record.vehicle_id}",
            )
        if record.state is CommandState.PENDING and not self._abandoned(record.created_at):
            raise CommandInProgress(
                f"command {record.request_id} is still running; retry to get its outcome",
                retry_after_s=1.0,
            )
        if record.state in (CommandState.PENDING, CommandState.OUTCOME_UNKNOWN):
            record = await self._reconciler.settle(record)
        if record.state is CommandState.SUCCEEDED:
            return _result(record, replayed=True)
        raise _replayed_error(record)

    def _abandoned(self, created_at: datetime) -> bool:
        return self._clock.now() - created_at > PENDING_TIMEOUT


def _named(command: Command) -> str:
    """Name a command for messages: `LOCK`, `SET_CHARGE_LIMIT 80 %`."""
    limit = command.charge_limit_percent
    return command.action.value if limit is None else f"{command.action.value} {limit} %"


def _result(record: CommandRecord, *, replayed: bool) -> CommandResult:
    return CommandResult(
        request_id=record.request_id,
        vehicle_id=record.vehicle_id,
        action=record.action,
        state=record.state,
        completed_at=record.completed_at,
        replayed=replayed,
    )


def _error_of(error: GatewayError) -> CommandError:
    upstream = error.upstream
    return CommandError(
        kind=type(error).__name__,
        message=error.message,
        smartcar_type=upstream.type if upstream else None,
        smartcar_code=upstream.code if upstream else None,
        smartcar_request_id=upstream.request_id if upstream else None,
    )


def _unknown_error(failure: BaseException) -> CommandError:
    """The stored error of a command left unanswered by `failure`."""
    if isinstance(failure, GatewayError):
        return _error_of(failure)
    if isinstance(failure, asyncio.CancelledError):
        return CommandError(kind=CommandOutcomeUnknown.__name__, message=CANCELLED)
    _log.warning(
        "a command's answer was lost to an unexpected %s", type(failure).__name__, exc_info=failure
    )
    return CommandError(kind=CommandOutcomeUnknown.__name__, message=LOST_ANSWER)


def _replayed_error(record: CommandRecord) -> GatewayError:
    """Rebuild the error a command ended with (or an unknown outcome for a lost worker),
    with Smartcar's type, code and request id as the first answer carried them."""
    stored = record.error
    prefix = f"command {record.request_id} (replayed): "
    if record.state is not CommandState.FAILED or stored is None:
        message = stored.message if stored else "the worker sending it stopped"
        return CommandOutcomeUnknown(prefix + message)
    kind = next((k for k in REPLAYED_FAILURES if k.__name__ == stored.kind), None)
    error_class = kind or errors.UpstreamRejected
    upstream = None
    if stored.smartcar_type or stored.smartcar_code or stored.smartcar_request_id:
        upstream = UpstreamFailure(
            type=stored.smartcar_type,
            code=stored.smartcar_code,
            request_id=stored.smartcar_request_id,
        )
    error = error_class(prefix + stored.message, upstream=upstream)
    error.metadata["replayed"] = "true"
    return error
