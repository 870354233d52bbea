"""SQL implementations of the core's repository ports (gateway.core.ports), one per module.

Each repository works on the AsyncConnection of its unit of work (storage.uow) and turns
rows into domain values (gateway.core.model) and back; unique-key violations surface as
the core's `Conflict`.
"""

from storage.repositories.commands import SqlCommandRepository
from storage.repositories.grants import SqlGrantRepository
from storage.repositories.rentals import SqlRentalRepository
from storage.repositories.states import SqlOAuthStateRepository
from storage.repositories.telemetry import SqlTelemetryRepository
from storage.repositories.vehicles import SqlVehicleRepository

__all__ = [
    "SqlCommandRepository",
    "SqlGrantRepository",
    "SqlOAuthStateRepository",
    "SqlRentalRepository",
    "SqlTelemetryRepository",
    "SqlVehicleRepository",
]
