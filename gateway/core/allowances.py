"""SetRequestAllowance: a car's own monthly request allowance, for a car whose Smartcar plan
differs from the fleet's (VG_MONTHLY_REQUEST_ALLOWANCE).

The allowance is stored on the vehicle and written by nothing else, so no other writer's
copy of the vehicle can undo it. It takes effect at once: the reserve is recomputed from it
(`BudgetPolicy.reserve_for`), and the month's count is kept, so lowering it below what
was already used stops interactive reads at once. Unsetting it (None) goes back to the
fleet's allowance. Who may call it is the access policy's business (operators), and the
gRPC edge audits every call; the change itself, old and new value, is logged here.
"""

from __future__ import annotations

import logging

from gateway.core.budget import BudgetPolicy
from gateway.core.model import VehiclePanel
from gateway.core.ports import Clock, UnitOfWorkFactory
from gateway.core.vehicles import panel_of, require_vehicle

_log = logging.getLogger(__name__)


class RequestAllowances:
    """The SetRequestAllowance use case."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock, budget: BudgetPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._budget = budget

    async def set(self, vehicle_id: str, *, monthly_allowance: int | None) -> VehiclePanel:
        """Give the car its own monthly allowance (None: the fleet's again); return its
        panel with the figures that now apply."""
        async with self._uow() as uow:
            vehicle = await require_vehicle(uow, vehicle_id, for_update=True)
            await uow.vehicles.set_request_allowance(vehicle_id, monthly_allowance)
            changed = await require_vehicle(uow, vehicle_id)
            shown = await panel_of(uow, changed, at=self._clock.now(), policy=self._budget)
            await uow.commit()
        _log.info(
            "request allowance changed",
            extra={
                "event": "request_allowance_changed",
                "vehicle": vehicle_id,
                "previous": vehicle.request_allowance,
                "allowance": monthly_allowance,
                "effective": shown.monthly_request_allowance,
            },
        )
        return shown
