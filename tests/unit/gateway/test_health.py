"""Connection health: failures in a row turn a connection ERROR, an answer heals it."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from gateway.core import errors
from gateway.core.health import ConnectionHealth, HealthPolicy
from gateway.core.model import ConnectionStatus, Vehicle
from gateway.edge.clock import ManualClock
from tests.fakes import FakeUnitOfWorkFactory
from tests.instants import START

ACTIVE = Vehicle(
    id="car-1", status=ConnectionStatus.ACTIVE, created_at=START, status_changed_at=START
)
LATER = START + timedelta(minutes=5)


def failed(vehicle: Vehicle, times: int, policy: HealthPolicy) -> Vehicle:
    """Return the vehicle after `times` failures, the last one "502 number {times}"."""
    for n in range(1, times + 1):
        failure = errors.UpstreamUnavailable(f"502 number {n}")
        vehicle = policy.after_failure(vehicle, failure, now=LATER)
    return vehicle


def test_enough_failures_in_a_row_turn_an_active_connection_error() -> None:
    """Failures count up and keep the last message; the threshold turns ACTIVE to ERROR,
    with a reason giving the count and the last failure's reason."""
    policy = HealthPolicy(error_after_failures=3)
    almost = failed(ACTIVE, 2, policy)
    assert (almost.status, almost.failure_count, almost.last_error) == (
        ConnectionStatus.ACTIVE,
        2,
        "502 number 2",
    )
    broken = failed(ACTIVE, 3, policy)
    assert (broken.status, broken.status_changed_at) == (ConnectionStatus.ERROR, LATER)
    assert broken.status_reason == "3 upstream failures in a row; last: UPSTREAM_UNAVAILABLE"


@pytest.mark.parametrize("status", [ConnectionStatus.EXPIRED, ConnectionStatus.DISCONNECTED])
def test_failures_never_turn_a_connection_that_is_not_active_error(
    status: ConnectionStatus,
) -> None:
    """Only an ACTIVE connection becomes ERROR; the others keep their status."""
    vehicle = failed(dataclasses.replace(ACTIVE, status=status), 5, HealthPolicy())
    assert (vehicle.status, vehicle.failure_count) == (status, 5)


def test_an_answer_resets_the_count_and_heals_an_error() -> None:
    """After an answer no failure is counted and ERROR is ACTIVE again, said why."""
    policy = HealthPolicy()
    healed = policy.after_answer(failed(ACTIVE, 5, policy), now=LATER + timedelta(minutes=1))
    assert (healed.status, healed.failure_count) == (ConnectionStatus.ACTIVE, 0)
    assert healed.status_reason == "Smartcar answered again"
    assert healed.status_changed_at == LATER + timedelta(minutes=1)


async def test_connection_health_records_each_status_change() -> None:
    """Stored health turns ERROR and back through the status history; an answer for a
    connection the caller read healthy writes nothing."""
    uow = FakeUnitOfWorkFactory()
    async with uow() as unit:
        await unit.vehicles.add(dataclasses.replace(ACTIVE, failure_count=2))
        await unit.commit()
    health = ConnectionHealth(uow=uow, clock=ManualClock(LATER), policy=HealthPolicy())
    await health.answered(ACTIVE)
    assert uow.store.vehicles["car-1"].failure_count == 2
    for n in range(3):
        await health.failed("car-1", errors.VehicleUnreachable(f"no answer {n}"))
    await health.answered(uow.store.vehicles["car-1"])
    changes = [(t.from_status, t.to_status) for t in uow.store.transitions.values()]
    assert changes == [
        (ConnectionStatus.ACTIVE, ConnectionStatus.ERROR),
        (ConnectionStatus.ERROR, ConnectionStatus.ACTIVE),
    ]
    assert uow.store.vehicles["car-1"].failure_count == 0
