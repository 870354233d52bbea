"""What authorises an upstream call (gateway.core.upstream): a v2 connection's owner pair,
or for API V3 the application's token with the owner's user id, and what a refusal means."""

from __future__ import annotations

import dataclasses

import pytest

from gateway.core.application_access import ApplicationTokenSource
from gateway.core.budget import BudgetLedger, BudgetPolicy
from gateway.core.errors import ConnectionDisconnected, UpstreamUnavailable
from gateway.core.model import ConnectionStatus, SmartcarAccess, SmartcarApi, Vehicle
from gateway.core.ports import TokenRejected
from gateway.core.ratelimit import CallKind, LocalAdmission, RateLimiter
from gateway.core.rotation import TokenRotator
from gateway.core.secret import Secret
from gateway.core.upstream import Upstream
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START
from tests.unit.gateway.fake_smartcar import FakeSmartcar
from tests.unit.gateway.test_use_cases import GENEROUS

V3_CAR = Vehicle(
    id="car-3",
    status=ConnectionStatus.ACTIVE,
    smartcar_vehicle_id="sc-3",
    api=SmartcarApi.V3,
    smartcar_user_id="user-3",
)


class CountingTokens:
    """An application token source that numbers its tokens and records refusals."""

    def __init__(self) -> None:
        self.issued = 1
        self.refused: list[str] = []

    async def current(self) -> Secret:
        return Secret(f"app-{self.issued}")

    async def rejected(self, token: Secret) -> Secret:
        self.refused.append(token.reveal())
        self.issued += 1
        return await self.current()


def upstream(uow: FakeUnitOfWorkFactory, application: ApplicationTokenSource | None) -> Upstream:
    """An Upstream over fakes, generous limits and the given application tokens."""
    clock = ManualClock(START)
    return Upstream(
        uow=uow,
        rotator=TokenRotator(uow=uow, smartcar=FakeSmartcar(clock=clock), clock=clock),
        limiter=LocalAdmission(RateLimiter(GENEROUS)),
        clock=clock,
        ledger=BudgetLedger(uow=uow, policy=BudgetPolicy()),
        application=application,
    )


async def stored(uow: FakeUnitOfWorkFactory, vehicle: Vehicle) -> None:
    async with uow() as unit:
        await unit.vehicles.add(vehicle)
        await unit.commit()


async def test_a_v3_call_carries_the_application_token_and_the_owner() -> None:
    """On V3 the call gets the application's token and the owner's user id."""
    uow, tokens = FakeUnitOfWorkFactory(), CountingTokens()
    await stored(uow, V3_CAR)
    seen: list[tuple[SmartcarAccess, str]] = []

    async def call(access: SmartcarAccess, smartcar_id: str) -> str:
        seen.append((access, smartcar_id))
        return "answered"

    assert await upstream(uow, tokens).call(V3_CAR, CallKind.READ, call) == "answered"
    [(access, smartcar_id)] = seen
    assert (access.api, access.token.reveal(), access.user_id) == (
        SmartcarApi.V3,
        "app-1",
        "user-3",
    )
    assert smartcar_id == "sc-3"


async def test_a_refused_application_token_is_replaced_once_and_the_call_retried() -> None:
    """A 401 drops exactly the refused token; the retry carries the new one."""
    uow, tokens = FakeUnitOfWorkFactory(), CountingTokens()
    await stored(uow, V3_CAR)
    used: list[str] = []

    async def call(access: SmartcarAccess, smartcar_id: str) -> str:
        used.append(access.token.reveal())
        if len(used) == 1:
            raise TokenRejected
        return "answered"

    assert await upstream(uow, tokens).call(V3_CAR, CallKind.READ, call) == "answered"
    assert (used, tokens.refused) == (["app-1", "app-2"], ["app-1"])


async def test_a_fresh_application_token_refused_again_leaves_the_car_connected() -> None:
    """Two 401s on V3 blame the application's credentials, not the owner: UNAVAILABLE,
    and the car stays ACTIVE (on v2 the same would disconnect the owner's cars)."""
    uow, tokens = FakeUnitOfWorkFactory(), CountingTokens()
    await stored(uow, V3_CAR)

    async def call(access: SmartcarAccess, smartcar_id: str) -> str:
        raise TokenRejected

    with pytest.raises(UpstreamUnavailable, match="client credentials"):
        await upstream(uow, tokens).call(V3_CAR, CallKind.READ, call)
    async with uow() as unit:
        after = await unit.vehicles.get("car-3")
    assert after is not None
    assert after.status is ConnectionStatus.ACTIVE
    assert tokens.refused == ["app-1"]


async def test_a_v3_car_without_application_credentials_is_unavailable_not_a_crash() -> None:
    """A gateway not configured for V3 says so, and makes no call."""
    uow = FakeUnitOfWorkFactory()
    await stored(uow, V3_CAR)

    async def call(access: SmartcarAccess, smartcar_id: str) -> str:
        raise AssertionError("no call may be made")

    with pytest.raises(UpstreamUnavailable, match="API V3"):
        await upstream(uow, None).call(V3_CAR, CallKind.READ, call)


async def test_a_call_begun_before_its_car_moved_to_v3_is_served_through_v3() -> None:
    """A caller read the car while it was on v2; the migration moved it to V3 and erased
    the pair before the call asked for a token: the call goes through V3, not an error."""
    uow, tokens = FakeUnitOfWorkFactory(), CountingTokens()
    await stored(uow, V3_CAR)
    seen_on_v2 = dataclasses.replace(V3_CAR, api=SmartcarApi.V2, grant_id="erased-grant")
    used: list[SmartcarAccess] = []

    async def call(access: SmartcarAccess, smartcar_id: str) -> str:
        used.append(access)
        return "answered"

    assert await upstream(uow, tokens).call(seen_on_v2, CallKind.READ, call) == "answered"
    assert [(a.api, a.user_id) for a in used] == [(SmartcarApi.V3, "user-3")]


async def test_a_v2_car_whose_pair_is_gone_without_a_move_stays_an_error() -> None:
    """Nothing moved: the missing pair is the disconnection it always was."""
    uow, tokens = FakeUnitOfWorkFactory(), CountingTokens()
    on_v2 = dataclasses.replace(V3_CAR, api=SmartcarApi.V2, grant_id="erased-grant")
    uow.store.vehicles[on_v2.id] = on_v2  # its pair erased under it (no foreign key here)

    async def call(access: SmartcarAccess, smartcar_id: str) -> str:
        raise AssertionError("no call may be made")

    with pytest.raises(ConnectionDisconnected, match="no longer exists"):
        await upstream(uow, tokens).call(on_v2, CallKind.READ, call)
