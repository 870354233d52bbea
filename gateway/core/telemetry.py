"""GetTelemetry: serve from cache within `max_age`, else ONE batch asking only for what is stale.

Freshness is judged against the request's arrival: a reading is fresh when it was fetched
no earlier than `arrival - max_age`. Concurrent misses on one vehicle queue on a per-vehicle
lock; the first fetches, and the others, re-checking after it, find its readings fresh
(they were fetched after those requests arrived) and make no upstream call. So N concurrent
reads of a stale vehicle cost one batch, even with `max_age` = 0.

What a vehicle cannot report (NOT_CAPABLE) is remembered for a day; a field whose
permission the owner did not grant is answered PERMISSION_MISSING without asking Smartcar;
a field Smartcar could not read this time is UNAVAILABLE, carrying the last known value
with its age. On API V3, which answers Smartcar's stored view, a value the car recorded
before the caller's `max_age` (beyond a short grace) is UNAVAILABLE too, with its value,
age and the reason OLDER_THAN_MAX_AGE: an old value never passes for a fresh one. The
rest still return.

Every read has a purpose (`ReadPurpose`, INTERACTIVE unless the caller says otherwise),
which sets how far into the car's monthly allowance it may go (`gateway.core.budget`). A
read the budget refuses (an interactive one that would cut into the reserve kept for
commands and rental readings, or any past the allowance) asks Smartcar nothing: the
fields it wanted are answered with their last values and ages, UNAVAILABLE with the
refusal's reason (REQUEST_BUDGET_RESERVED, REQUEST_ALLOWANCE_EXHAUSTED); with none of them
held, the refusal itself is raised (RESOURCE_EXHAUSTED, retry when the month turns).

A car that waits for its owner (NEEDS_REAUTHENTICATION, `gateway.core.reauthentication`)
is asked nothing either, except by the scheduler's probe (`ReadPurpose.OWNER_PROBE`): stale
fields are answered with their last values and ages, UNAVAILABLE with the reason
REAUTHENTICATION_REQUIRED, and with none of them held the call fails
`ReauthenticationRequired` (FAILED_PRECONDITION, carrying Smartcar's resolution). The read
that meets Smartcar's CONNECTED_SERVICES_ACCOUNT error is answered the same way.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gateway.core import packing
from gateway.core.budget import BudgetLedger
from gateway.core.cache import HOT_VEHICLES, TelemetryCache
from gateway.core.errors import (
    GatewayError,
    OwnerAccountIssue,
    RateLimited,
    ReauthenticationRequired,
    RequestAllowanceExhausted,
    RequestBudgetReserved,
    VehicleAsleep,
)
from gateway.core.locks import KeyedLocks
from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.model import (
    Availability,
    BatchReading,
    ConnectionStatus,
    FieldReading,
    FieldResult,
    SmartcarAccess,
    SmartcarApi,
    Telemetry,
    TelemetryField,
    UpstreamFailure,
    Vehicle,
)
from gateway.core.permissions import FIELD_PERMISSIONS, withdraw_permissions
from gateway.core.ports import Clock, SmartcarAPI, UnitOfWorkFactory
from gateway.core.purpose import ReadPurpose
from gateway.core.read_spacing import ReadSpacing, SpacedReads
from gateway.core.reading_events import LowLevelPolicy, origin_of, store_readings
from gateway.core.reauthentication import REAUTHENTICATION_REQUIRED
from gateway.core.sleep import asleep_until
from gateway.core.snapshots import VehicleSnapshots
from gateway.core.status import awaiting_owner
from gateway.core.tracing import (
    NO_TRACING,
    TELEMETRY_CACHE_HIT,
    TELEMETRY_CACHE_MISS,
    TELEMETRY_COALESCED,
    TELEMETRY_COALESCED_WAIT,
    Attributes,
    Tracing,
)
from gateway.core.upstream import Upstream

ALL_FIELDS = frozenset(TelemetryField)
ASLEEP_REASON = "VEHICLE_STATE:ASLEEP"
OLDER_THAN_MAX_AGE = "OLDER_THAN_MAX_AGE"
"""The reason of a V3 value Smartcar holds but the car recorded before the caller's
`max_age` (see `TelemetryPolicy.stored_value_grace`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TelemetryPolicy:
    """How old a reading may be when the caller does not say, and how long capability
    answers (NOT_CAPABLE) are trusted."""

    default_max_age: timedelta = timedelta(minutes=5)
    capability_ttl: timedelta = timedelta(days=1)
    sleep_backoff: timedelta = timedelta(minutes=15)
    """After ASLEEP, the car is not asked again for at least this long (unless an event
    wakes it); the wait grows with how long the car has been silent, up to the cap."""
    sleep_backoff_cap: timedelta = timedelta(hours=6)
    vehicle_sync_interval: timedelta = timedelta(seconds=2)
    """A read answered from cache judges the vehicle (permissions, existence) by a copy
    that is brought up to date with the database this often (see `VehicleSnapshots`);
    anything that asks Smartcar re-reads the vehicle first."""
    stored_value_grace: timedelta = timedelta(minutes=5)
    """API V3 answers Smartcar's stored view: a value the car recorded more than this
    before the oldest the caller accepts is answered UNAVAILABLE with its value and age
    (`OLDER_THAN_MAX_AGE`) instead of passing for fresh. The grace covers the ordinary lag
    between a car recording a value and Smartcar holding it."""
    fetch_claim_ttl: timedelta = timedelta(seconds=20)
    """With shared telemetry: how long one replica's claim to fetch a vehicle holds (and
    how long the others wait for its answer) before another may ask Smartcar itself."""
    cache_vehicles: int = 100_000
    """How many vehicles' readings the in-memory cache holds, and how many vehicles' grants
    cached reads keep a copy of (least recently used dropped past it, loaded from storage
    again on their next use)."""
    cache_hot_vehicles: int = HOT_VEHICLES
    """Of those, how many (the most recently loaded or changed) the cache also holds as
    objects; the others are answered from their packed form. Not a setting: the kept
    answers are sized for the default (see `HOT_VEHICLES`); tests make it small."""
    spacing: ReadSpacing = dataclasses.field(default_factory=ReadSpacing)
    """How interactive reads' share of a car's budget is released through the month
    (`gateway.core.read_spacing`; applies when the budget is paced)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchClaim:
    """How this replica may fetch a vehicle the others may be fetching too.

    - nothing shared (no Redis): fetch, there is nothing to release;
    - `token`: this replica holds the claim; fetch, then release it with the token;
    - `waited`: another replica held it, and has answered (or given up) by now: look at
      the shared readings again, and fetch only if they still are too old.
    """

    token: str | None = None
    waited: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class _Read:
    """One GetTelemetry request: the fields wanted, the oldest fetch that still counts as
    fresh (judged against the request's arrival), and that arrival."""

    wanted: frozenset[TelemetryField]
    oldest_ok: datetime
    arrival: datetime
    held_when_limited: bool = False
    """Answer a rate limit's refusal from what is held (GetTelemetry's
    `held_when_rate_limited`)."""


class TelemetryService:
    """The GetTelemetry use case."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        smartcar: SmartcarAPI,
        upstream: Upstream,
        cache: TelemetryCache,
        clock: Clock,
        policy: TelemetryPolicy = TelemetryPolicy(),
        metrics: Metrics = NO_METRICS,
        levels: LowLevelPolicy = LowLevelPolicy(),
        ledger: BudgetLedger | None = None,
        tracing: Tracing = NO_TRACING,
    ) -> None:
        """`levels`: when a stored fuel or charge level makes a LOW_FUEL or LOW_CHARGE
        event (`gateway.core.reading_events`); `ledger`: the budget interactive reads are
        spaced against (`gateway.core.read_spacing`; without it they are not spaced);
        `tracing`: where cache hits, misses and coalesced waits are recorded."""
        self._tracing = tracing
        self._spaced = (
            None if ledger is None else SpacedReads(ledger=ledger, spacing=policy.spacing)
        )
        self._metrics = metrics
        self._levels = levels
        self._uow = uow
        self._smartcar = smartcar
        self._upstream = upstream
        self._cache = cache
        self._clock = clock
        self._policy = policy
        self._locks = KeyedLocks()
        self._answers = _FreshAnswers(policy.capability_ttl)
        self._withheld: dict[TelemetryField, bytes] = {}
        """Each field's PERMISSION_MISSING reading, encoded by the cache's encoder."""
        self._vehicles = VehicleSnapshots(
            uow=uow,
            clock=clock,
            sync_interval=policy.vehicle_sync_interval,
            size=policy.cache_vehicles,
        )

    async def get(
        self,
        vehicle_id: str,
        *,
        fields: frozenset[TelemetryField],
        max_age: timedelta | None,
        purpose: ReadPurpose = ReadPurpose.INTERACTIVE,
        held_when_limited: bool = False,
    ) -> Telemetry:
        """Return `fields` (all when empty) of the vehicle, none older than `max_age`.

        `purpose` sets what the read may spend of the car's budget and its priority at the
        rate limits (see `ReadPurpose`). `held_when_limited`: a rate limit's refusal
        (`RateLimited`) is answered from what is held, the stale fields marked RATE_LIMITED,
        instead of raised (raised still when none of them is held).
        """
        arrival = self._clock.now()
        read = _Read(
            wanted=fields or ALL_FIELDS,
            oldest_ok=arrival - (self._policy.default_max_age if max_age is None else max_age),
            arrival=arrival,
            held_when_limited=held_when_limited,
        )
        answer = await self._from_cache(vehicle_id, read, purpose)
        if answer is None:
            attributes = {"vg.vehicle_id": vehicle_id, "vg.telemetry.purpose": purpose.value}
            with self._tracing.span(TELEMETRY_CACHE_MISS, attributes) as span:
                answer = await self._fetch_under_claim(vehicle_id, read, purpose)
                span.set("vg.telemetry.fetched_fields", _names(answer.fetched))
        return answer

    async def _from_cache(
        self, vehicle_id: str, read: _Read, purpose: ReadPurpose
    ) -> Telemetry | None:
        """Answer from the readings held when none wanted is stale, or when an interactive
        read of the car was refused for its budget a moment ago and some stale field is held
        (no lock, no database round trip while the vehicle's copy is current); None when
        Smartcar must be asked.

        A vehicle held only packed (not among the `HOT_VEHICLES` most recently loaded or
        changed) is judged by its packed fetch times and answered without unpacking, with
        its readings as held encoded (`Telemetry.encoded`); they are unpacked only if the
        answer's readings are looked at."""
        await self._vehicles.sync()
        granted = self._vehicles.permissions(vehicle_id)
        if granted is not None:
            packed = self._from_packed(vehicle_id, granted, read)
            if packed is not None:
                self._hit(vehicle_id)
                return packed
        granted, held = await self._held(vehicle_id, granted)
        kept = self._answers.fresh(vehicle_id, read, granted, held)
        if kept is not None:
            self._hit(vehicle_id)
            return kept
        stale = self._stale(granted, read, held)
        if not stale:
            self._hit(vehicle_id)
            answer = self._answer(vehicle_id, granted, read.wanted, held, from_cache=True)
            self._answers.keep(read.wanted, granted, held, answer)
            return answer
        refused = self._remembered_refusal(vehicle_id, read, purpose)
        if refused is None or not any(held.get(f) for f in stale):
            return None
        self._metrics.telemetry_read(cached=True, coalesced=False)
        self._metrics.budget_refused(purpose=purpose.value)
        if self._tracing.enabled:
            attributes = {"vg.vehicle_id": vehicle_id, "vg.telemetry.reason": refused.reason}
            self._tracing.event(TELEMETRY_CACHE_HIT, attributes)
        readings = {**held, **_marked(stale, held, refused.reason)}
        return self._answer(vehicle_id, granted, read.wanted, readings, from_cache=True)

    def _hit(self, vehicle_id: str) -> None:
        """Count a read answered from the cache as it stands."""
        self._metrics.telemetry_read(cached=True, coalesced=False)
        if self._tracing.enabled:
            self._tracing.event(TELEMETRY_CACHE_HIT, {"vg.vehicle_id": vehicle_id})

    def _from_packed(
        self, vehicle_id: str, granted: frozenset[str], read: _Read
    ) -> Telemetry | None:
        """The answer for a vehicle held only packed when nothing wanted is stale, without
        unpacking; None when it is held as objects, not held, or something is stale."""
        packed = self._cache.cold(vehicle_id)
        if packed is None:
            return None
        fetched = self._fresh_packed(granted, read, packed)
        if fetched is None:
            return None
        return Telemetry(
            vehicle_id=vehicle_id,
            readings=_PackedAnswer(granted, read.wanted, packed),
            from_cache=True,
            encoded=self._encoded(granted, read.wanted, packed, fetched),
        )

    def _remembered_refusal(
        self, vehicle_id: str, read: _Read, purpose: ReadPurpose
    ) -> RequestBudgetReserved | None:
        """The budget refusal of an interactive read of the car still remembered (None for
        other purposes, or without spacing)."""
        if self._spaced is None or purpose is not ReadPurpose.INTERACTIVE:
            return None
        return self._spaced.remembered(vehicle_id, read.arrival)

    async def _fetch_under_claim(
        self, vehicle_id: str, read: _Read, purpose: ReadPurpose
    ) -> Telemetry:
        """Under the vehicle's lock, and the replicas' claim when telemetry is shared: look
        again (another caller, replica, poll or webhook may have the readings by now), leave
        a sleeping car alone, else ask Smartcar for what is still stale."""
        async with self._turn(vehicle_id):
            vehicle = await self._fresh_vehicle(vehicle_id)
            readings, stale = await self._current(vehicle, read, shared_too=False)
            if not stale:  # fetched by another caller while this one waited
                return self._from_held(vehicle, read, readings, coalesced=True)
            if vehicle.asleep_until is not None and vehicle.asleep_until > read.arrival:
                readings.update(_marked(stale, readings, ASLEEP_REASON))
                return self._from_held(vehicle, read, readings, coalesced=False)
            if _waits_for_owner(vehicle, purpose):
                refused = awaiting_owner(vehicle)
                return self._from_last(
                    vehicle, read, stale, readings, refused, REAUTHENTICATION_REQUIRED
                )
            claim = await self._claim(vehicle_id)
            try:
                if claim.waited:  # another replica was fetching: its answer may do
                    readings, stale = await self._current(vehicle, read, shared_too=True)
                    if not stale:
                        return self._from_held(vehicle, read, readings, coalesced=True)
                return await self._fetch_and_answer(vehicle, read, stale, readings, purpose)
            finally:
                if claim.token is not None and self._cache.shared is not None:
                    await self._cache.shared.release(vehicle_id, claim.token)

    @asynccontextmanager
    async def _turn(self, vehicle_id: str) -> AsyncIterator[None]:
        """Hold the vehicle's lock for the block; with tracing on, a wait behind another
        caller's fetch of the vehicle is a span of its own."""
        if not (self._tracing.enabled and self._locks.busy(vehicle_id)):
            async with self._locks.hold(vehicle_id):
                yield
            return
        async with AsyncExitStack() as stack:
            with self._tracing.span(TELEMETRY_COALESCED_WAIT, {"vg.vehicle_id": vehicle_id}):
                await stack.enter_async_context(self._locks.hold(vehicle_id))
            yield

    async def _current(
        self, vehicle: Vehicle, read: _Read, *, shared_too: bool
    ) -> tuple[dict[TelemetryField, FieldReading], frozenset[TelemetryField]]:
        """The readings held now and the wanted fields still stale among them: this
        replica's first (unless `shared_too`), then the shared readings if any is stale."""
        readings: dict[TelemetryField, FieldReading] = {}
        stale = read.wanted
        if not shared_too:
            readings = dict(await self._cache.readings(vehicle.id))
            stale = self._stale(vehicle.permissions, read, readings)
        if stale:  # perhaps another replica, the scheduler or a webhook has it
            readings = dict(await self._cache.refresh(vehicle.id))
            stale = self._stale(vehicle.permissions, read, readings)
        return readings, stale

    async def _fetch_and_answer(
        self,
        vehicle: Vehicle,
        read: _Read,
        stale: frozenset[TelemetryField],
        readings: dict[TelemetryField, FieldReading],
        purpose: ReadPurpose,
    ) -> Telemetry:
        """Ask Smartcar for the stale fields; a car found asleep, or a read the budget
        refuses, is answered with the last readings, marked (the error itself when none of
        them is held)."""
        self._metrics.telemetry_read(cached=False, coalesced=False)
        try:
            await self._check_spacing(vehicle, stale, read, purpose)
            readings.update(await self._fetch(vehicle, stale, readings, purpose))
        except VehicleAsleep as asleep:
            await self._note_asleep(vehicle.id)
            return self._from_last(vehicle, read, stale, readings, asleep, ASLEEP_REASON)
        except (RequestBudgetReserved, RequestAllowanceExhausted) as refused:
            self._metrics.budget_refused(purpose=purpose.value)
            if isinstance(refused, RequestBudgetReserved):
                self._remember_refusal(vehicle.id, refused, read, purpose)
            return self._from_last(vehicle, read, stale, readings, refused, refused.reason)
        except RateLimited as limited:
            if not read.held_when_limited:
                raise
            return self._from_last(vehicle, read, stale, readings, limited, limited.reason)
        except (OwnerAccountIssue, ReauthenticationRequired) as refused:
            return self._from_last(
                vehicle, read, stale, readings, refused, REAUTHENTICATION_REQUIRED
            )
        if vehicle.api is SmartcarApi.V3:
            bound = read.oldest_ok - self._policy.stored_value_grace
            readings.update(_older_than_asked(stale, readings, bound))
        return self._answer(
            vehicle.id, vehicle.permissions, read.wanted, readings, from_cache=False, fetched=stale
        )

    def _remember_refusal(
        self, vehicle_id: str, refused: RequestBudgetReserved, read: _Read, purpose: ReadPurpose
    ) -> None:
        """Remember an interactive read's budget refusal (`SpacedReads.remember`)."""
        if self._spaced is not None and purpose is ReadPurpose.INTERACTIVE:
            self._spaced.remember(vehicle_id, refused, read.arrival)

    async def _check_spacing(
        self, vehicle: Vehicle, stale: frozenset[TelemetryField], read: _Read, purpose: ReadPurpose
    ) -> None:
        """Raise spacing's refusal of an interactive read that may not ask Smartcar yet."""
        if self._spaced is None or purpose is not ReadPurpose.INTERACTIVE:
            return
        cost = self._smartcar.read_cost(vehicle.api, stale)
        refused = await self._spaced.refusal(vehicle, cost, read.arrival)
        if refused is not None:
            raise refused

    def _from_last(
        self,
        vehicle: Vehicle,
        read: _Read,
        stale: frozenset[TelemetryField],
        readings: dict[TelemetryField, FieldReading],
        error: GatewayError,
        reason: str,
    ) -> Telemetry:
        """Answer with the last readings, the stale ones marked UNAVAILABLE for `reason`
        (with their values and ages); raise `error`, why Smartcar was not asked, when
        none of the stale fields has a reading to show."""
        if not any(readings.get(f) for f in stale):
            raise error
        readings.update(_marked(stale, readings, reason))
        return self._answer(vehicle.id, vehicle.permissions, read.wanted, readings, from_cache=True)

    def _from_held(
        self,
        vehicle: Vehicle,
        read: _Read,
        readings: Mapping[TelemetryField, FieldReading],
        *,
        coalesced: bool,
    ) -> Telemetry:
        """Answer from readings already held (counted as a cache hit)."""
        self._metrics.telemetry_read(cached=True, coalesced=coalesced)
        if coalesced:
            self._tracing.event(TELEMETRY_COALESCED, {"vg.vehicle_id": vehicle.id})
        return self._answer(vehicle.id, vehicle.permissions, read.wanted, readings, from_cache=True)

    async def _claim(self, vehicle_id: str) -> FetchClaim:
        """Claim this vehicle's fetch among the replicas (see `FetchClaim`)."""
        shared = self._cache.shared
        if shared is None:
            return FetchClaim()
        ttl_s = self._policy.fetch_claim_ttl.total_seconds()
        token = await shared.claim(vehicle_id, ttl_s=ttl_s)
        if token is None:
            attributes: Attributes = {"vg.vehicle_id": vehicle_id, "vg.wait.other_replica": True}
            with self._tracing.span(TELEMETRY_COALESCED_WAIT, attributes):
                await shared.wait(vehicle_id, timeout_s=ttl_s)
            return FetchClaim(waited=True)
        return FetchClaim(token=token)

    def _stale(
        self,
        granted: frozenset[str],
        read: _Read,
        readings: Mapping[TelemetryField, FieldReading],
    ) -> frozenset[TelemetryField]:
        """Return the wanted fields Smartcar must be asked for."""
        return frozenset(
            f
            for f in read.wanted
            if FIELD_PERMISSIONS[f] in granted and not self._fresh(readings.get(f), read.oldest_ok)
        )

    def _encoded(
        self,
        granted: frozenset[str],
        wanted: frozenset[TelemetryField],
        packed: bytes,
        fetched: tuple[int, ...],
    ) -> tuple[bytes, ...] | None:
        """The answer's readings as held encoded, for packed readings `_fresh_packed`
        passed (every granted field wanted has a reading) and what it read of them; None
        when they were not encoded."""
        encode = self._cache.encode
        if encode is None:
            return None
        answer = []
        for field in packing.FIELD_ORDER:
            if field not in wanted:
                continue
            if FIELD_PERMISSIONS[field] in granted:
                chunk = packing.encoded(packed, fetched, field)
                if chunk is None:
                    return None
            else:
                chunk = self._withheld.get(field)
                if chunk is None:
                    chunk = self._withheld[field] = encode(_PERMISSION_MISSING[field])
            answer.append(chunk)
        return tuple(answer)

    def _fresh_packed(
        self, granted: frozenset[str], read: _Read, packed: bytes
    ) -> tuple[int, ...] | None:
        """When none of the wanted fields is stale (`_stale`), judged from the packed
        readings' fetch times alone, what `packing.fetches` read of them; else None."""
        fetched = packing.fetches(packed)
        oldest_ok = packing.micros(read.oldest_ok)
        capable_since: int | None = None
        for field in read.wanted:
            if FIELD_PERMISSIONS[field] not in granted:
                continue
            slot = packing.FIELD_SLOT[field]
            kind = fetched[slot]
            if kind == packing.AVAILABLE:
                if fetched[slot + 1] < oldest_ok:
                    return None
            elif kind == packing.NOT_CAPABLE:
                if capable_since is None:
                    now = self._clock.now()
                    capable_since = packing.micros(now - self._policy.capability_ttl)
                if fetched[slot + 1] < capable_since:
                    return None
            else:
                return None
        return fetched

    def _fresh(self, reading: FieldReading | None, oldest_ok: datetime) -> bool:
        if reading is None or reading.fetched_at is None:
            return False
        if reading.availability is Availability.NOT_CAPABLE:
            return reading.fetched_at >= self._clock.now() - self._policy.capability_ttl
        return reading.availability is Availability.AVAILABLE and reading.fetched_at >= oldest_ok

    async def _fetch(
        self,
        vehicle: Vehicle,
        stale: frozenset[TelemetryField],
        known: Mapping[TelemetryField, FieldReading],
        purpose: ReadPurpose,
    ) -> dict[TelemetryField, FieldReading]:
        """Ask Smartcar for the stale fields in one batch; store what it answered."""

        async def read(access: SmartcarAccess, smartcar_id: str) -> BatchReading:
            return await self._smartcar.read(access, smartcar_id, stale)

        billed = self._smartcar.read_cost(vehicle.api, stale)
        batch = await self._upstream.call(
            vehicle,
            purpose.call_kind,
            read,
            billed=billed,
            tier=purpose.tier,
            awaiting_owner=purpose is ReadPurpose.OWNER_PROBE,
        )
        fetched_at = self._clock.now()
        fresh = {f: self._reading(f, batch.results.get(f), known.get(f), fetched_at) for f in stale}
        await self._note_item_limits(vehicle, batch)
        refused = {
            FIELD_PERMISSIONS[f]
            for f, reading in fresh.items()
            if reading.availability is Availability.PERMISSION_MISSING
        }
        if refused:
            async with self._uow() as uow:
                await withdraw_permissions(uow, vehicle.id, refused, now=fetched_at)
                await uow.commit()
        asleep = any(_is_asleep(r.failure) for r in batch.results.values())
        if asleep:
            await self._note_asleep(vehicle.id)
        durable = [r for r in fresh.values() if _durable(r)]
        if durable:
            await self._store(vehicle.id, durable, fetched_at, awake=not asleep, purpose=purpose)
        return fresh

    def _reading(
        self,
        field: TelemetryField,
        result: FieldResult | None,
        last: FieldReading | None,
        fetched_at: datetime,
    ) -> FieldReading:
        """Turn one batch item into the reading to answer (and maybe store)."""
        if result is not None and result.availability is Availability.AVAILABLE:
            return FieldReading(
                field=field,
                availability=Availability.AVAILABLE,
                value=result.value,
                recorded_at=result.recorded_at,
                fetched_at=fetched_at,
            )
        reason = _reason(result)
        availability = Availability.UNAVAILABLE if result is None else result.availability
        if availability is Availability.UNAVAILABLE and last is not None:
            return dataclasses.replace(last, availability=availability, reason=reason)
        return FieldReading(
            field=field, availability=availability, fetched_at=fetched_at, reason=reason
        )

    async def _note_item_limits(self, vehicle: Vehicle, batch: BatchReading) -> None:
        """A 429 inside a batch item, or the manufacturer's rate limit (UPSTREAM:RATE_LIMIT),
        still puts the vehicle in cooldown."""
        for result in batch.results.values():
            failure = result.failure
            if failure is not None and _is_rate_limit(failure):
                await self._upstream.cool_down(vehicle.id, retry_after_s=failure.retry_after_s)
                return

    async def _note_asleep(self, vehicle_id: str) -> None:
        """Leave a sleeping car alone, so it is not woken again (`gateway.core.sleep`)."""
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.vehicles.get(vehicle_id, for_update=True)
            if current is not None:
                until = asleep_until(
                    now=now,
                    last_heard=current.last_telemetry_at,
                    backoff=self._policy.sleep_backoff,
                    cap=self._policy.sleep_backoff_cap,
                )
                await uow.vehicles.update(dataclasses.replace(current, asleep_until=until))
            await uow.commit()

    async def _store(
        self,
        vehicle_id: str,
        readings: list[FieldReading],
        at: datetime,
        *,
        awake: bool,
        purpose: ReadPurpose,
    ) -> None:
        """Keep the readings, with the events their changes make (`reading_events`); a car
        that answered is awake, so its sleep mark goes."""
        async with self._uow() as uow:
            # The vehicle row first, then its readings: the order every writer keeps, so
            # two writers of one car (two replicas, a poll and a command) cannot deadlock.
            await uow.vehicles.note_telemetry(vehicle_id, at=at, awake=awake)
            await store_readings(
                uow, vehicle_id, readings, origin=origin_of(purpose), at=at, levels=self._levels
            )
            await uow.commit()
        await self._cache.put(vehicle_id, readings)

    def _answer(
        self,
        vehicle_id: str,
        granted: frozenset[str],
        wanted: frozenset[TelemetryField],
        readings: Mapping[TelemetryField, FieldReading],
        *,
        from_cache: bool,
        fetched: frozenset[TelemetryField] = frozenset(),
    ) -> Telemetry:
        return Telemetry(
            vehicle_id=vehicle_id,
            readings=_answered(granted, wanted, readings),
            from_cache=from_cache,
            fetched=fetched,
        )

    async def _held(
        self, vehicle_id: str, granted: frozenset[str] | None
    ) -> tuple[frozenset[str], Mapping[TelemetryField, FieldReading]]:
        """What the owner granted (`granted`, when already known) and the cached readings;
        what is not held yet is loaded (NotFound for an unknown vehicle), both in one read
        of the database."""
        readings = self._cache.held(vehicle_id)
        if granted is None or readings is None:
            async with self._uow.reader() as uow:
                if granted is None:
                    granted = (await self._vehicles.load(uow, vehicle_id)).permissions
                if readings is None:
                    readings = self._cache.keep(vehicle_id, await uow.telemetry.latest(vehicle_id))
        return granted, readings

    async def _fresh_vehicle(self, vehicle_id: str) -> Vehicle:
        """The vehicle as the database has it now (kept as the copy too)."""
        async with self._uow.reader() as uow:
            return await self._vehicles.load(uow, vehicle_id)


def _answered(
    granted: frozenset[str],
    wanted: frozenset[TelemetryField],
    readings: Mapping[TelemetryField, FieldReading],
) -> dict[TelemetryField, FieldReading]:
    """The answer's reading of each wanted field: the one held, or why there is none."""
    answer = {}
    for field in sorted(wanted):
        if FIELD_PERMISSIONS[field] not in granted:
            answer[field] = _PERMISSION_MISSING[field]
        else:
            reading = readings.get(field)
            answer[field] = _NO_READING_YET[field] if reading is None else reading
    return answer


class _PackedAnswer(Mapping[TelemetryField, FieldReading]):
    """A cached answer's readings, unpacked from the cache's packed form when first looked
    at (a caller answering with `Telemetry.encoded` never does)."""

    __slots__ = ("_granted", "_packed", "_readings", "_wanted")

    def __init__(
        self, granted: frozenset[str], wanted: frozenset[TelemetryField], packed: bytes
    ) -> None:
        self._granted = granted
        self._wanted = wanted
        self._packed = packed
        self._readings: dict[TelemetryField, FieldReading] | None = None

    def _unpacked(self) -> dict[TelemetryField, FieldReading]:
        if self._readings is None:
            self._readings = _answered(self._granted, self._wanted, packing.unpack(self._packed))
        return self._readings

    def __getitem__(self, field: TelemetryField) -> FieldReading:
        return self._unpacked()[field]

    def __iter__(self) -> Iterator[TelemetryField]:
        return iter(self._unpacked())

    def __len__(self) -> int:
        return len(self._wanted)

    def __repr__(self) -> str:
        return repr(self._unpacked())


def _waits_for_owner(vehicle: Vehicle, purpose: ReadPurpose) -> bool:
    """Tell whether the car waits for its owner and this read may not ask whether they
    acted (only the scheduler's probe may)."""
    return (
        vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION
        and purpose is not ReadPurpose.OWNER_PROBE
    )


def _names(fields: Iterable[TelemetryField]) -> str:
    """The fields' names, sorted and comma-separated (a span attribute)."""
    return ",".join(sorted(f.value for f in fields))


def _is_asleep(failure: UpstreamFailure | None) -> bool:
    return failure is not None and (failure.type, failure.code) == ("VEHICLE_STATE", "ASLEEP")


_PERMISSION_MISSING = {
    field: FieldReading(
        field=field,
        availability=Availability.PERMISSION_MISSING,
        reason=f"the owner did not grant {FIELD_PERMISSIONS[field]}",
    )
    for field in TelemetryField
}
"""The answer for a field whose permission the owner withheld: one object per field, so
answers built from it can be kept (`gateway.edge.grpc.answers`)."""

_NO_READING_YET = {
    field: FieldReading(field=field, availability=Availability.UNAVAILABLE, reason="no reading yet")
    for field in TelemetryField
}
"""The answer for a field never read: one object per field, as above."""


def _marked(
    fields: Iterable[TelemetryField], known: Mapping[TelemetryField, FieldReading], reason: str
) -> dict[TelemetryField, FieldReading]:
    """The answer for fields Smartcar was not asked for this time (the car sleeps, the
    budget refused): the last values with their age, UNAVAILABLE for `reason`."""
    marked = {}
    for field in fields:
        last = known.get(field)
        if last is None:
            last = FieldReading(field=field, availability=Availability.UNAVAILABLE)
        marked[field] = dataclasses.replace(
            last, availability=Availability.UNAVAILABLE, reason=reason
        )
    return marked


def _older_than_asked(
    fields: Iterable[TelemetryField],
    readings: Mapping[TelemetryField, FieldReading],
    bound: datetime,
) -> dict[TelemetryField, FieldReading]:
    """The fields Smartcar answered with a value the car recorded before `bound`: marked
    UNAVAILABLE, keeping the value and its `recorded_at`, so the caller sees its age."""
    marked = {}
    for field in fields:
        reading = readings.get(field)
        if (
            reading is not None
            and reading.availability is Availability.AVAILABLE
            and reading.recorded_at is not None
            and reading.recorded_at < bound
        ):
            marked[field] = dataclasses.replace(
                reading, availability=Availability.UNAVAILABLE, reason=OLDER_THAN_MAX_AGE
            )
    return marked


def _is_rate_limit(failure: UpstreamFailure) -> bool:
    """Smartcar's rate limit, or the manufacturer's: nothing was asked of the car."""
    return failure.type == "RATE_LIMIT" or (failure.type, failure.code) == (
        "UPSTREAM",
        "RATE_LIMIT",
    )


def _durable(reading: FieldReading) -> bool:
    """Values and capability answers are worth keeping; passing failures are not."""
    return reading.availability in (Availability.AVAILABLE, Availability.NOT_CAPABLE)


def _reason(result: FieldResult | None) -> str:
    if result is None:
        return "missing from Smartcar's answer"
    failure = result.failure
    if failure is None:
        return result.availability.value
    parts = [p for p in (failure.type, failure.code) if p]
    return ":".join(parts) or "upstream error"


_ANSWERS_KEPT = HOT_VEHICLES
"""Cached answers `_FreshAnswers` keeps at most (as many as the cache keeps unpacked)."""


@dataclass(frozen=True, slots=True)
class _KeptAnswer:
    """A cached answer, what it was built from, and until when it holds: while the
    owner's grants and the held readings are the very objects it was built from, it is
    fresh for a read whose oldest acceptable fetch is at or before `fresh_since` (the
    oldest fetch among its granted fields), up to `capable_until` (when the oldest
    NOT_CAPABLE verdict among them must be asked again)."""

    granted: frozenset[str]
    held: Mapping[TelemetryField, FieldReading]
    fresh_since: datetime
    capable_until: datetime | None
    answer: Telemetry


class _FreshAnswers:
    """The last answer served from the cache per vehicle and field set, so the next
    read of the same readings checks one time instead of every field, and builds nothing.

    Readings are immutable and the cache replaces a vehicle's mapping when one changes
    (`TelemetryCache`), as `VehicleSnapshots` replaces its grants: an answer is kept with
    the two objects it was built from and handed out only while both are still the ones
    held. At most `_ANSWERS_KEPT` are kept, the least recently used dropped first."""

    def __init__(self, capability_ttl: timedelta) -> None:
        self._capability_ttl = capability_ttl
        self._kept: OrderedDict[tuple[str, frozenset[TelemetryField]], _KeptAnswer] = OrderedDict()

    def fresh(
        self,
        vehicle_id: str,
        read: _Read,
        granted: frozenset[str],
        held: Mapping[TelemetryField, FieldReading],
    ) -> Telemetry | None:
        """The kept answer for this read, when it was built from `granted` and `held`
        and is fresh enough for it; else None."""
        key = (vehicle_id, read.wanted)
        kept = self._kept.get(key)
        if kept is None or kept.granted is not granted or kept.held is not held:
            return None
        if read.oldest_ok > kept.fresh_since or (
            kept.capable_until is not None and read.arrival > kept.capable_until
        ):
            return None
        self._kept.move_to_end(key)
        return kept.answer

    def keep(
        self,
        wanted: frozenset[TelemetryField],
        granted: frozenset[str],
        held: Mapping[TelemetryField, FieldReading],
        answer: Telemetry,
    ) -> None:
        """Keep `answer`, just served fresh from `held` for `wanted`."""
        fresh_since = datetime.max.replace(tzinfo=UTC)
        capable_until: datetime | None = None
        for field in wanted:
            if FIELD_PERMISSIONS[field] not in granted:
                continue
            reading = held.get(field)
            if reading is None or reading.fetched_at is None:
                return  # cannot be fresh: not served from the cache, so never kept
            if reading.availability is Availability.NOT_CAPABLE:
                until = reading.fetched_at + self._capability_ttl
                capable_until = until if capable_until is None else min(capable_until, until)
            elif reading.availability is Availability.AVAILABLE:
                fresh_since = min(fresh_since, reading.fetched_at)
            else:
                return  # never fresh, as above
        key = (answer.vehicle_id, wanted)
        self._kept[key] = _KeptAnswer(granted, held, fresh_since, capable_until, answer)
        self._kept.move_to_end(key)
        if len(self._kept) > _ANSWERS_KEPT:
            self._kept.popitem(last=False)
