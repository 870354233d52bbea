"""Fleet vehicles in the `vehicles` table (VehicleRepository)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.core.model import (
    ConnectionStatus,
    LastCommand,
    OwnerAction,
    SmartcarApi,
    Vehicle,
    command_action,
)
from storage.repositories._conflicts import execute_or_conflict
from storage.repositories._direct import Columns, Direct
from storage.schema import db_now, vehicles


class SqlVehicleRepository:
    """Vehicles and their connection panel, on one unit of work's connection."""

    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def get(self, vehicle_id: str, *, for_update: bool = False) -> Vehicle | None:
        """Return the vehicle; `for_update` locks its row until the unit of work ends."""
        query = _GET_FOR_UPDATE if for_update else _GET
        row = (await query.run(self._connection, {"vehicle_id": vehicle_id})).one_or_none()
        return None if row is None else _to_vehicle(row)

    async def by_smartcar_id(self, smartcar_vehicle_id: str) -> Vehicle | None:
        """Return the fleet vehicle linked to a Smartcar vehicle id, if any."""
        return await self._one(
            select(vehicles).where(vehicles.c.smartcar_vehicle_id == smartcar_vehicle_id)
        )

    async def by_grant(self, grant_id: str) -> list[Vehicle]:
        """Return every vehicle using this grant's tokens, ordered by id."""
        query = select(vehicles).where(vehicles.c.grant_id == grant_id).order_by(vehicles.c.id)
        return [_to_vehicle(row._mapping) for row in await self._connection.execute(query)]

    async def add(self, vehicle: Vehicle) -> None:
        """Insert a new vehicle; Conflict if its id or Smartcar id is taken."""
        await execute_or_conflict(
            self._connection,
            insert(vehicles).values(id=vehicle.id, **_columns(vehicle)),
            conflict=f"vehicle {vehicle.id!r} or its Smartcar vehicle already exists",
        )

    async def update(self, vehicle: Vehicle) -> None:
        """Write every field of an existing vehicle but its request allowance (only
        `set_request_allowance` writes that); LookupError if there is none."""
        result = await execute_or_conflict(
            self._connection,
            update(vehicles).where(vehicles.c.id == vehicle.id).values(**_columns(vehicle)),
            conflict=f"another vehicle is linked to the Smartcar vehicle of {vehicle.id!r}",
        )
        if result.rowcount == 0:
            raise LookupError(f"no vehicle {vehicle.id!r} to update")

    async def set_request_allowance(self, vehicle_id: str, allowance: int | None) -> None:
        """Set the vehicle's own monthly request allowance (None: the fleet's); LookupError
        if there is no such vehicle."""
        result = await self._connection.execute(
            update(vehicles).where(vehicles.c.id == vehicle_id).values(request_allowance=allowance)
        )
        if result.rowcount == 0:
            raise LookupError(f"no vehicle {vehicle_id!r} to update")

    async def count_by_status(self) -> dict[ConnectionStatus, int]:
        """Return how many vehicles are in each connection status (absent: none)."""
        query = select(vehicles.c.status, func.count()).group_by(vehicles.c.status)
        rows = await self._connection.execute(query)
        return {ConnectionStatus(status): count for status, count in rows}

    async def note_command(self, vehicle_id: str, last: LastCommand) -> bool:
        """Record the vehicle's last command; False if there is no such vehicle."""
        values = {
            "key": vehicle_id,
            "last_command_action": last.action.value,
            "last_command_request_id": last.request_id,
            "last_command_at": last.at,
        }
        return bool((await _NOTE.run(self._connection, values)).rowcount)

    async def note_telemetry(self, vehicle_id: str, *, at: datetime, awake: bool) -> None:
        """Record that the vehicle reported at `at`; `awake` also clears its sleep mark."""
        # Not a change of the vehicle for `changed_since`: its updated_at stays.
        changes: dict[str, Any] = {"last_telemetry_at": at, "updated_at": vehicles.c.updated_at}
        if awake:
            changes["asleep_until"] = None
        await self._connection.execute(
            update(vehicles).where(vehicles.c.id == vehicle_id).values(**changes)
        )

    async def changed_since(self, since: datetime | None) -> tuple[datetime, list[Vehicle]]:
        """The database's time now, and the vehicles changed at or after `since` by it."""
        clock = select(db_now())
        now = (await self._connection.execute(clock)).scalar_one()
        if since is None:
            return now, []
        query = select(vehicles).where(vehicles.c.updated_at >= since)
        return now, [_to_vehicle(row._mapping) for row in await self._connection.execute(query)]

    async def page(
        self, *, status: ConnectionStatus | None, after_id: str | None, limit: int
    ) -> list[Vehicle]:
        """Return up to `limit` vehicles ordered by id, after `after_id`, optionally by status."""
        query = select(vehicles).order_by(vehicles.c.id).limit(max(limit, 0))
        if status is not None:
            query = query.where(vehicles.c.status == status.value)
        if after_id is not None:
            query = query.where(vehicles.c.id > after_id)
        return [_to_vehicle(row._mapping) for row in await self._connection.execute(query)]

    async def _one(self, query: Select[Any]) -> Vehicle | None:
        """Return the vehicle the query finds, if any."""
        row = (await self._connection.execute(query)).one_or_none()
        return None if row is None else _to_vehicle(row._mapping)


_BY_ID = select(vehicles).where(vehicles.c.id == bindparam("vehicle_id"))
_GET = Direct(_BY_ID)
_GET_FOR_UPDATE = Direct(_BY_ID.with_for_update())
_NOTE = Direct(update(vehicles).where(vehicles.c.id == bindparam("key")))
"""Built once, run with parameters (the SET columns are the parameters but `key`)."""


def _columns(vehicle: Vehicle) -> dict[str, Any]:
    """Return the columns a vehicle's row is written with: all but its id and its request
    allowance (see `SqlVehicleRepository.set_request_allowance`)."""
    last = vehicle.last_command
    action = vehicle.owner_action
    return {
        "smartcar_vehicle_id": vehicle.smartcar_vehicle_id,
        "grant_id": vehicle.grant_id,
        "status": vehicle.status.value,
        "status_reason": vehicle.status_reason,
        "status_changed_at": vehicle.status_changed_at,
        "make": vehicle.make,
        "model": vehicle.model,
        "year": vehicle.year,
        "vin": vehicle.vin,
        "permissions": sorted(vehicle.permissions),
        "last_command_action": last.action.value if last else None,
        "last_command_request_id": last.request_id if last else None,
        "last_command_at": last.at if last else None,
        "last_telemetry_at": vehicle.last_telemetry_at,
        "created_at": vehicle.created_at,
        "asleep_until": vehicle.asleep_until,
        "failure_count": vehicle.failure_count,
        "last_error": vehicle.last_error,
        "api": vehicle.api.value,
        "smartcar_user_id": vehicle.smartcar_user_id,
        "owner_error": action.error if action else None,
        "owner_resolution_type": action.resolution_type if action else None,
        "owner_resolution_url": action.resolution_url if action else None,
        "owner_doc_url": action.doc_url if action else None,
        "owner_message": action.user_message if action else None,
        "owner_commands_only": action.commands_only if action else False,
        "owner_probed_at": action.probed_at if action else None,
    }


def _to_vehicle(columns: Columns) -> Vehicle:
    """Return the vehicle a row's columns hold."""
    return Vehicle(
        id=columns["id"],
        status=ConnectionStatus(columns["status"]),
        status_reason=columns["status_reason"],
        status_changed_at=columns["status_changed_at"],
        smartcar_vehicle_id=columns["smartcar_vehicle_id"],
        grant_id=columns["grant_id"],
        make=columns["make"],
        model=columns["model"],
        year=columns["year"],
        vin=columns["vin"],
        permissions=frozenset(columns["permissions"]),
        last_command=_last_command(columns),
        last_telemetry_at=columns["last_telemetry_at"],
        created_at=columns["created_at"],
        asleep_until=columns["asleep_until"],
        failure_count=columns["failure_count"],
        last_error=columns["last_error"],
        api=SmartcarApi(columns["api"]),
        smartcar_user_id=columns["smartcar_user_id"],
        request_allowance=columns["request_allowance"],
        owner_action=_owner_action(columns),
    )


def _owner_action(columns: Columns) -> OwnerAction | None:
    """Return what the owner must do, as a vehicle row records it, if anything."""
    if columns["owner_error"] is None:
        return None
    return OwnerAction(
        error=columns["owner_error"],
        resolution_type=columns["owner_resolution_type"],
        resolution_url=columns["owner_resolution_url"],
        doc_url=columns["owner_doc_url"],
        user_message=columns["owner_message"],
        commands_only=bool(columns["owner_commands_only"]),
        probed_at=columns["owner_probed_at"],
    )


def _last_command(columns: Columns) -> LastCommand | None:
    """Return the last command recorded in a vehicle row, if there is one."""
    if columns["last_command_action"] is None:
        return None
    return LastCommand(
        action=command_action(columns["last_command_action"]),
        request_id=columns["last_command_request_id"],
        at=columns["last_command_at"],
    )
