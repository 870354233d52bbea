"""Vehicle lookups and the connection panel (GetVehicle, ListVehicles)."""

from __future__ import annotations

from datetime import datetime

from gateway.core.budget import BudgetPolicy, month_of, next_month_start
from gateway.core.errors import VehicleNotFound
from gateway.core.model import ConnectionStatus, Rental, Vehicle, VehiclePage, VehiclePanel
from gateway.core.paging import PageTokens
from gateway.core.permissions import REQUESTED_PERMISSIONS
from gateway.core.ports import Clock, UnitOfWork, UnitOfWorkFactory
from gateway.core.validation import DEFAULT_PAGE_SIZE


async def require_vehicle(uow: UnitOfWork, vehicle_id: str, *, for_update: bool = False) -> Vehicle:
    """Return the vehicle or raise VehicleNotFound."""
    vehicle = await uow.vehicles.get(vehicle_id, for_update=for_update)
    if vehicle is None:
        message = f"no vehicle with id {vehicle_id}"
        raise VehicleNotFound(message, metadata={"vehicle_id": vehicle_id})
    return vehicle


def panel(
    vehicle: Vehicle, rental: Rental | None, *, used: int, policy: BudgetPolicy, at: datetime
) -> VehiclePanel:
    """Return what the connection panel shows for a vehicle; `used` is its count for the
    month of `at`."""
    connected = vehicle.status is not ConnectionStatus.NOT_CONNECTED
    missing = REQUESTED_PERMISSIONS - vehicle.permissions if connected else frozenset()
    limits = policy.limits(vehicle)
    return VehiclePanel(
        vehicle=vehicle,
        missing_permissions=missing,
        active_rental=rental,
        requests_this_month=used,
        monthly_request_allowance=limits.allowance,
        request_reserve=limits.reserve,
        request_allowance_overridden=limits.overridden,
        request_budget_resets_at=next_month_start(at),
    )


async def panel_of(
    uow: UnitOfWork, vehicle: Vehicle, *, at: datetime, policy: BudgetPolicy
) -> VehiclePanel:
    """Return the vehicle's panel, reading its rental and this month's budget in `uow`."""
    rental = await uow.rentals.active(vehicle.id)
    used = await uow.budget.used(vehicle.id, month_of(at))
    return panel(vehicle, rental, used=used, policy=policy, at=at)


class VehicleQueries:
    """GetVehicle and ListVehicles."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        clock: Clock,
        budget: BudgetPolicy,
        page_tokens: PageTokens | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._budget = budget
        self._tokens = page_tokens or PageTokens()

    async def get(self, vehicle_id: str) -> VehiclePanel:
        """Return one vehicle's panel."""
        async with self._uow.reader() as uow:
            vehicle = await require_vehicle(uow, vehicle_id)
            return await panel_of(uow, vehicle, at=self._clock.now(), policy=self._budget)

    async def page(
        self, *, status: ConnectionStatus | None, page_size: int, page_token: str
    ) -> VehiclePage:
        """Return one page ordered by vehicle id; the token resumes after its last id."""
        after_id = self._tokens.resume_after(page_token, status)
        size = page_size or DEFAULT_PAGE_SIZE
        now = self._clock.now()
        month = month_of(now)
        async with self._uow.reader() as uow:
            vehicles = await uow.vehicles.page(status=status, after_id=after_id, limit=size + 1)
            shown = vehicles[:size]
            rentals = await uow.rentals.active_for([v.id for v in shown])
            used = await uow.budget.used_by([v.id for v in shown], month)
        more = len(vehicles) > size
        token = self._tokens.issue(shown[-1].id, status) if more and shown else ""
        panels = tuple(
            panel(v, rentals.get(v.id), used=used[v.id], policy=self._budget, at=now) for v in shown
        )
        return VehiclePage(panels=panels, next_page_token=token)
