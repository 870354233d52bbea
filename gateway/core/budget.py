"""The request budget: Smartcar bills every request (each batch path) against a monthly
allowance per vehicle. The gateway counts what it spends, per vehicle and calendar month
(UTC), conservatively: every attempt that may have reached Smartcar counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.core.metrics import NO_METRICS, Metrics
from gateway.core.ports import UnitOfWorkFactory


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetPolicy:
    """The plan's monthly allowance per vehicle (Smartcar's typical plan: 500)."""

    monthly_allowance: int = 500


def month_of(at: datetime) -> str:
    """Return the billing month of an instant, `YYYY-MM` in UTC."""
    return at.strftime("%Y-%m")


class BudgetLedger:
    """Records billed requests and tells how many a vehicle used this month."""

    def __init__(
        self, *, uow: UnitOfWorkFactory, policy: BudgetPolicy, metrics: Metrics = NO_METRICS
    ) -> None:
        self._uow = uow
        self.policy = policy
        self._metrics = metrics

    async def spend(self, vehicle_id: str, requests: int, *, at: datetime) -> int:
        """Count `requests` billed requests; return the month's total."""
        async with self._uow() as uow:
            total = await uow.budget.add(vehicle_id, month_of(at), requests)
            await uow.commit()
        self._metrics.budget_spent(
            requests=requests, month_total=total, allowance=self.policy.monthly_allowance
        )
        return total

    async def used(self, vehicle_id: str, *, at: datetime) -> int:
        """Return how many billed requests the vehicle used in the month of `at`."""
        async with self._uow.reader() as uow:
            return await uow.budget.used(vehicle_id, month_of(at))
