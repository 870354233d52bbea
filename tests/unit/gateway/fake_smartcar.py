"""A hand-written SmartcarAPI for core unit tests: single-use refresh tokens (with Smartcar's
60 s reuse grace), counted calls, scripted failures and lost answers, a gate to hold calls
in flight for concurrency tests, and an event per method that tells when a call has
arrived. Electric cars charge: plugged in, not charging, an 80 % limit to start with;
the charge commands change that, or are refused as Smartcar refuses them."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway.core.errors import (
    AuthorizationMismatch,
    PermissionMissing,
    VehicleNotCapable,
    VehicleStateBlocks,
)
from gateway.core.model import (
    Availability,
    BatchReading,
    Battery,
    Charge,
    ChargeAction,
    ChargingState,
    Command,
    DoorState,
    FieldResult,
    Fuel,
    LockAction,
    LockStatus,
    Odometer,
    SmartcarAccess,
    SmartcarApi,
    TelemetryField,
    TokenPair,
    UpstreamFailure,
    VehicleInfo,
)
from gateway.core.permissions import FIELD_PERMISSIONS, REQUESTED_PERMISSIONS, command_permission
from gateway.core.ports import Clock, CodeRejected, RefreshRejected, TokenRejected
from gateway.core.secret import Secret


@dataclass
class FakeCar:
    """One Smartcar vehicle in the fake."""

    vin: str
    electric: bool = False
    locked: bool = True
    odometer_km: float = 1000.0
    permissions: frozenset[str] = REQUESTED_PERMISSIONS
    # Batch items that fail with this Smartcar error instead of answering.
    failing: dict[TelemetryField, UpstreamFailure] = field(default_factory=dict)
    plugged_in: bool = True
    charging: bool = False
    charge_limit_percent: float = 80.0
    fuel_percent: float = 50.0
    """An ICE car's tank, percent."""
    battery_percent: float = 80.0
    """An EV's traction battery, percent."""
    open_doors: tuple[str, ...] = ()
    """The doors the car reports open (`front_left`, …); the others are closed."""

    def charge(self) -> Charge:
        """Return the car's charge as Smartcar reports it."""
        state = ChargingState.CHARGING if self.charging else ChargingState.NOT_CHARGING
        return Charge(
            is_plugged_in=self.plugged_in, state=state, limit_percent=self.charge_limit_percent
        )

    report_lag: timedelta = timedelta(minutes=1)
    """How long before a read the car recorded the values it answers."""


@dataclass
class FakeSmartcar:
    """Smartcar as the core sees it, in memory."""

    clock: Clock
    cars: dict[str, FakeCar] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)
    failures: dict[str, list[Exception]] = field(default_factory=dict)
    lost_answers: dict[str, list[Exception]] = field(default_factory=dict)
    presented_refresh_tokens: list[str] = field(default_factory=list)
    gate: asyncio.Event | None = None
    arrivals: dict[str, asyncio.Event] = field(default_factory=dict)
    _codes: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    _access: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    _refresh: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    _spent: dict[str, tuple[tuple[str, list[str]], datetime]] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    application_tokens: set[str] = field(default_factory=set)
    """API V3: the application tokens Smartcar accepts now."""
    v3_users: dict[str, list[str]] = field(default_factory=dict)
    """API V3: the cars each Smartcar user connected to the application."""

    def add_car(self, smartcar_id: str, car: FakeCar) -> None:
        """Put a car in the fake."""
        self.cars[smartcar_id] = car

    def issue_code(self, user_id: str, car_ids: list[str]) -> str:
        """Return a code as Connect would, for an owner authorizing these cars."""
        code = f"code-{next(self._counter)}"
        self._codes[code] = (user_id, car_ids)
        return code

    def revoke_all_tokens(self) -> None:
        """Forget every token: the owner revoked access."""
        self._access.clear()
        self._refresh.clear()
        self._spent.clear()

    def fail(self, method: str, *errors: Exception) -> None:
        """Make the next calls of `method` raise these errors, in order."""
        self.failures.setdefault(method, []).extend(errors)

    def arrival(self, method: str) -> asyncio.Event:
        """Return an event set when the next call of `method` arrives (before the gate)."""
        return self.arrivals.setdefault(method, asyncio.Event())

    def lose(self, method: str, *errors: Exception) -> None:
        """Make the next calls of `method` do their work, then raise these errors instead
        of answering (the answer was lost on the way back)."""
        self.lost_answers.setdefault(method, []).extend(errors)

    def _answer(self, method: str) -> None:
        queued = self.lost_answers.get(method)
        if queued:
            raise queued.pop(0)

    async def _enter(self, method: str) -> None:
        self.calls[method] += 1
        if method in self.arrivals:
            self.arrivals.pop(method).set()
        if self.gate is not None:
            await self.gate.wait()
        queued = self.failures.get(method)
        if queued:
            raise queued.pop(0)

    def _pair(self, grant: tuple[str, list[str]]) -> TokenPair:
        n = next(self._counter)
        access, refresh = f"access-{n}", f"refresh-{n}"
        self._access[access] = grant
        self._refresh[refresh] = grant
        now = self.clock.now()
        return TokenPair(
            access_token=Secret(access),
            refresh_token=Secret(refresh),
            access_expires_at=now + timedelta(hours=2),
            refresh_expires_at=now + timedelta(days=60),
        )

    def _grant(self, access: SmartcarAccess, car_id: str | None = None) -> tuple[str, list[str]]:
        if access.api is SmartcarApi.V3:
            return self._v3_user(access, car_id)
        grant = self._access.get(access.token.reveal())
        if grant is None or (car_id is not None and car_id not in grant[1]):
            raise TokenRejected()
        return grant

    def _v3_user(self, access: SmartcarAccess, car_id: str | None) -> tuple[str, list[str]]:
        """V3: the application token must be current, the car the named user's (403)."""
        if access.token.reveal() not in self.application_tokens:
            raise TokenRejected()
        cars = self.v3_users.get(access.user_id or "", [])
        if car_id is not None and car_id not in cars:
            raise AuthorizationMismatch(f"car {car_id} is not user {access.user_id}'s")
        return access.user_id or "", cars

    def connect_url(self, *, state: str, vin: str | None, required: frozenset[str]) -> str:
        """Return a recognisable Connect URL (the required permissions in `required`)."""
        marked = ",".join(sorted(required))
        return (
            f"https://connect.invalid/oauth/authorize?state={state}&vin={vin or ''}"
            f"&required={marked}"
        )

    async def exchange_code(self, code: str) -> TokenPair:
        """Exchange a code issued by `issue_code` (single use)."""
        await self._enter("exchange_code")
        grant = self._codes.pop(code, None)
        if grant is None:
            raise CodeRejected()
        return self._pair(grant)

    async def refresh(self, refresh_token: Secret) -> TokenPair:
        """Spend a refresh token: single use, but within 60 s of its first use presenting
        it again mints another pair (Smartcar invalidates it one minute after use)."""
        self.presented_refresh_tokens.append(refresh_token.reveal())
        await self._enter("refresh")
        now = self.clock.now()
        grant = self._refresh.pop(refresh_token.reveal(), None)
        if grant is not None:
            self._spent[refresh_token.reveal()] = (grant, now)
        else:
            grant, spent_at = self._spent.get(refresh_token.reveal(), (None, now))
            if grant is None or now - spent_at > timedelta(seconds=60):
                raise RefreshRejected()
        pair = self._pair(grant)
        self._answer("refresh")
        return pair

    async def user_id(self, access: SmartcarAccess) -> str:
        """Return the owner of the token."""
        await self._enter("user_id")
        return self._grant(access)[0]

    async def vehicle_ids(self, access: SmartcarAccess) -> list[str]:
        """Return the cars the token covers."""
        await self._enter("vehicle_ids")
        return list(self._grant(access)[1])

    async def vehicle_info(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> VehicleInfo:
        """Return the car's identity."""
        await self._enter("vehicle_info")
        self._grant(access, smartcar_vehicle_id)
        car = self.cars[smartcar_vehicle_id]
        return VehicleInfo(
            smartcar_vehicle_id=smartcar_vehicle_id,
            make="Fake",
            model="Car",
            year=2024,
            vin=car.vin,
        )

    async def permissions(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> frozenset[str]:
        """Return what the owner granted."""
        await self._enter("permissions")
        self._grant(access, smartcar_vehicle_id)
        return self.cars[smartcar_vehicle_id].permissions

    async def read(
        self, access: SmartcarAccess, smartcar_vehicle_id: str, fields: frozenset[TelemetryField]
    ) -> BatchReading:
        """Answer a batch: odometer, lock status, fuel (ICE) or battery (EV); the rest fail."""
        await self._enter("read")
        self._grant(access, smartcar_vehicle_id)
        car = self.cars[smartcar_vehicle_id]
        return BatchReading(results={f: self._result(car, f) for f in fields})

    def _result(self, car: FakeCar, field_: TelemetryField) -> FieldResult:
        now = self.clock.now()
        if field_ in car.failing:
            failure = car.failing[field_]
            return FieldResult(field=field_, availability=Availability.UNAVAILABLE, failure=failure)
        if FIELD_PERMISSIONS[field_] not in car.permissions:
            failure = UpstreamFailure(type="PERMISSION", code=None)
            return FieldResult(
                field=field_, availability=Availability.PERMISSION_MISSING, failure=failure
            )
        values = {
            TelemetryField.ODOMETER: Odometer(distance_km=car.odometer_km),
            TelemetryField.LOCK_STATUS: LockStatus(is_locked=car.locked, doors=_doors(car)),
            TelemetryField.FUEL: None
            if car.electric
            else Fuel(percent_remaining=car.fuel_percent, amount_remaining_l=20.0, range_km=300.0),
            TelemetryField.BATTERY: Battery(percent_remaining=car.battery_percent, range_km=400.0)
            if car.electric
            else None,
            TelemetryField.CHARGE: car.charge() if car.electric else None,
        }
        value = values.get(field_)
        if value is None:
            failure = UpstreamFailure(type="COMPATIBILITY", code="VEHICLE_NOT_CAPABLE")
            return FieldResult(field=field_, availability=Availability.NOT_CAPABLE, failure=failure)
        return FieldResult(field=field_, value=value, recorded_at=now - car.report_lag)

    def read_cost(self, api: SmartcarApi, fields: frozenset[TelemetryField]) -> int:
        """One billed request per field, as a v2 batch of one path per field is billed."""
        return len(fields)

    async def command(
        self, access: SmartcarAccess, smartcar_vehicle_id: str, command: Command
    ) -> None:
        """Carry the command out on the fake car, or refuse it as Smartcar would."""
        await self._enter("command")
        self._grant(access, smartcar_vehicle_id)
        car = self.cars[smartcar_vehicle_id]
        permission = command_permission(command.action)
        if permission not in car.permissions:
            raise PermissionMissing(f"PERMISSION: {permission} was not granted")
        match command.action:
            case LockAction():
                car.locked = command.action is LockAction.LOCK
            case _ if not car.electric:
                failure = UpstreamFailure(type="COMPATIBILITY", code="VEHICLE_NOT_CAPABLE")
                raise VehicleNotCapable("no traction battery", upstream=failure)
            case ChargeAction.START_CHARGE:
                _refuse_if(not car.plugged_in, "CHARGING_PLUG_NOT_CONNECTED")
                _refuse_if(car.charging, "CHARGING_IN_PROGRESS")
                car.charging = True
            case ChargeAction.STOP_CHARGE:
                _refuse_if(not car.charging, "NOT_CHARGING")
                car.charging = False
            case ChargeAction.SET_CHARGE_LIMIT:
                assert command.charge_limit_percent is not None
                car.charge_limit_percent = float(command.charge_limit_percent)
        self._answer("command")

    async def disconnect(self, access: SmartcarAccess, smartcar_vehicle_id: str) -> None:
        """Remove the car from the token's grant; on V3, the user's connection to the car
        (one already gone is nothing to delete, as the adapter takes Smartcar's 404)."""
        await self._enter("disconnect")
        if access.api is SmartcarApi.V3:
            cars = self._v3_user(access, None)[1]
            if smartcar_vehicle_id in cars:
                cars.remove(smartcar_vehicle_id)
            return
        self._grant(access, smartcar_vehicle_id)[1].remove(smartcar_vehicle_id)


def _doors(car: FakeCar) -> tuple[DoorState, ...]:
    """The car's doors as it reports them: those named open, the others closed."""
    sides = ("front_left", "front_right", "back_left", "back_right")
    return tuple(
        DoorState(door=side, status="OPEN" if side in car.open_doors else "CLOSED")
        for side in sides
    )


def _refuse_if(refused: bool, code: str) -> None:
    """Raise Smartcar's 409 VEHICLE_STATE `code` when the car refuses a command."""
    if refused:
        failure = UpstreamFailure(type="VEHICLE_STATE", code=code)
        raise VehicleStateBlocks(
            f"VEHICLE_STATE:{code}", metadata={"vehicle_state": code}, upstream=failure
        )
