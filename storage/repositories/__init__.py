"""SQL implementations of the core's repository ports (gateway.core.ports), one per module.

Each repository works on the AsyncConnection of its unit of work (storage.uow) and turns
rows into domain values (gateway.core.model) and back; unique-key violations surface as
the core's `Conflict`.
"""

from storage.repositories.application_tokens import SqlApplicationTokenRepository
from storage.repositories.audit import SqlAuditRepository
from storage.repositories.budget import SqlBudgetRepository
from storage.repositories.commands import SqlCommandRepository
from storage.repositories.grants import SqlGrantRepository
from storage.repositories.leases import SqlLeaseRepository
from storage.repositories.rentals import SqlRentalRepository
from storage.repositories.states import SqlOAuthStateRepository
from storage.repositories.telemetry import SqlTelemetryRepository
from storage.repositories.transitions import SqlTransitionRepository
from storage.repositories.vehicle_events import SqlVehicleEventRepository
from storage.repositories.vehicles import SqlVehicleRepository
from storage.repositories.webhook_events import SqlWebhookEventRepository

__all__ = [
    "SqlApplicationTokenRepository",
    "SqlAuditRepository",
    "SqlBudgetRepository",
    "SqlCommandRepository",
    "SqlGrantRepository",
    "SqlLeaseRepository",
    "SqlOAuthStateRepository",
    "SqlRentalRepository",
    "SqlTelemetryRepository",
    "SqlTransitionRepository",
    "SqlVehicleEventRepository",
    "SqlVehicleRepository",
    "SqlWebhookEventRepository",
]
