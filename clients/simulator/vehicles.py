"""The vehicles in the simulated world: their changing state, and the garage that holds them.

A vehicle's slow-moving data (odometer, fuel, charge, oil, position) is a pure function of
simulated time (see `readings`); what this module keeps is the state that only changes when
something happens: the lock (commands), doors, motion and the charging plug
(`/sim/vehicles/{id}/state`), sleep (`/sim/vehicles/{id}/sleep`; a command wakes the car)
and, for cars with a traction battery, charging and the charge limit (V3 charge commands).
A car with a battery starts plugged in, not charging, with an 80 % limit.

The garage starts with the seed's catalog. It grows in two deterministic ways: a VIN it
does not know gets the vehicle `fleet.vehicle_for_vin` makes for it, and when every catalog
vehicle has an owner, Connect draws the next catalog index (`fleet.catalog_vehicle`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clients.simulator.fleet import VehicleSpec, catalog_vehicle, vehicle_for_vin

DEFAULT_CHARGE_LIMIT = 80


@dataclass(kw_only=True)
class VehicleState:
    """One vehicle: its catalog entry and the state commands and the control API change."""

    spec: VehicleSpec
    born_s: float
    locked: bool
    security_changed_s: float | None = None
    door_open: bool = False
    in_motion: bool = False
    asleep: bool = False
    asleep_since_s: float | None = None
    """When the car fell asleep (None: unknown, or awake); its reports stop then."""
    plugged_in: bool = False
    charging: bool = False
    charge_limit: int = DEFAULT_CHARGE_LIMIT
    charge_changed_s: float | None = None

    @property
    def id(self) -> str:
        """Return the Smartcar vehicle id."""
        return self.spec.id

    def set_lock(self, *, locked: bool, now_s: float) -> None:
        """Lock or unlock, and note when the lock status changed."""
        self.locked = locked
        self.security_changed_s = now_s

    def set_state(self, *, door_open: bool | None, in_motion: bool | None, now_s: float) -> None:
        """Open/close the front-left door or start/stop driving (None leaves it as is)."""
        if door_open is not None:
            self.door_open = door_open
        if in_motion is not None:
            self.in_motion = in_motion
        self.security_changed_s = now_s

    def set_asleep(self, *, asleep: bool, now_s: float) -> None:
        """Put the car to sleep (noting when) or wake it."""
        if asleep and not self.asleep:
            self.asleep_since_s = now_s
        self.asleep = asleep

    def set_plugged_in(self, *, plugged_in: bool, now_s: float) -> None:
        """Plug the charging cable in or pull it out (which stops charging)."""
        self.plugged_in = plugged_in
        if not plugged_in:
            self.charging = False
        self.charge_changed_s = now_s

    def set_charging(self, *, charging: bool, now_s: float) -> None:
        """Start or stop charging, and note when the charge state changed."""
        self.charging = charging
        self.charge_changed_s = now_s

    def set_charge_limit(self, *, percent: int, now_s: float) -> None:
        """Set the charge limit (percent), and note when the charge state changed."""
        self.charge_limit = percent
        self.charge_changed_s = now_s

    def to_json(
        self, *, owner_user_id: str | None, connected_user_ids: list[str]
    ) -> dict[str, Any]:
        """Return the vehicle as `GET /sim/vehicles` lists it."""
        spec = self.spec
        return {
            "id": spec.id,
            "vin": spec.vin,
            "make": spec.make,
            "model": spec.model,
            "year": spec.year,
            "powertrain": str(spec.powertrain),
            "owner_user_id": owner_user_id,
            "connected_user_ids": connected_user_ids,
            "asleep": self.asleep,
            "locked": self.locked,
            "door_open": self.door_open,
            "in_motion": self.in_motion,
            "plugged_in": self.plugged_in,
            "charging": self.charging,
            "charge_limit": self.charge_limit,
        }


class Garage:
    """Every vehicle of one simulator, by id and by VIN, catalog vehicles first."""

    def __init__(self, *, seed: int, catalog_size: int, now_s: float) -> None:
        self._seed = seed
        self._catalog: list[VehicleState] = []
        self._by_id: dict[str, VehicleState] = {}
        self._by_vin: dict[str, VehicleState] = {}
        for _ in range(catalog_size):
            self.extend_catalog(now_s=now_s)

    def get(self, vehicle_id: str) -> VehicleState | None:
        """Return the vehicle with this id, if there is one."""
        return self._by_id.get(vehicle_id)

    def by_vin(self, vin: str) -> VehicleState | None:
        """Return the vehicle with this VIN, if there is one."""
        return self._by_vin.get(vin.upper())

    def add_vin(self, vin: str, *, now_s: float) -> VehicleState:
        """Return the vehicle with this VIN, creating the seed's vehicle for it if needed."""
        known = self.by_vin(vin)
        if known is not None:
            return known
        return self._add(vehicle_for_vin(seed=self._seed, vin=vin), now_s=now_s)

    def catalog(self) -> list[VehicleState]:
        """Return the catalog vehicles in catalog order."""
        return list(self._catalog)

    def extend_catalog(self, *, now_s: float) -> VehicleState:
        """Add the next catalog vehicle and return it."""
        index = len(self._catalog)
        vehicle = self._add(catalog_vehicle(seed=self._seed, index=index), now_s=now_s)
        self._catalog.append(vehicle)
        return vehicle

    def all(self) -> list[VehicleState]:
        """Return every vehicle, catalog vehicles first, then those added by VIN."""
        return list(self._by_id.values())

    def to_json(self) -> dict[str, Any]:
        """Return what a restart needs: how far the catalog grew, the VINs added, and the
        state of every vehicle (the rest is derived from the seed)."""
        catalog_ids = {vehicle.id for vehicle in self._catalog}
        return {
            "catalog_size": len(self._catalog),
            "added_vins": [v.spec.vin for v in self._by_id.values() if v.id not in catalog_ids],
            "states": {
                v.id: {
                    "born_s": v.born_s,
                    "locked": v.locked,
                    "security_changed_s": v.security_changed_s,
                    "door_open": v.door_open,
                    "in_motion": v.in_motion,
                    "asleep": v.asleep,
                    "asleep_since_s": v.asleep_since_s,
                    "plugged_in": v.plugged_in,
                    "charging": v.charging,
                    "charge_limit": v.charge_limit,
                    "charge_changed_s": v.charge_changed_s,
                }
                for v in self._by_id.values()
            },
        }

    def restore(self, data: dict[str, Any], *, now_s: float) -> None:
        """Grow the garage to what `to_json` described and give each vehicle its state
        (a file written before the charge state existed leaves it at its defaults)."""
        while len(self._catalog) < int(data["catalog_size"]):
            self.extend_catalog(now_s=now_s)
        for vin in data["added_vins"]:
            self.add_vin(str(vin), now_s=now_s)
        for vehicle_id, state in data["states"].items():
            vehicle = self._by_id[vehicle_id]
            vehicle.born_s = float(state["born_s"])
            vehicle.locked = bool(state["locked"])
            vehicle.security_changed_s = _optional_float(state["security_changed_s"])
            vehicle.door_open = bool(state["door_open"])
            vehicle.in_motion = bool(state["in_motion"])
            vehicle.asleep = bool(state["asleep"])
            vehicle.asleep_since_s = _optional_float(state.get("asleep_since_s"))
            vehicle.plugged_in = bool(state.get("plugged_in", vehicle.plugged_in))
            vehicle.charging = bool(state.get("charging", False))
            vehicle.charge_limit = int(state.get("charge_limit", DEFAULT_CHARGE_LIMIT))
            vehicle.charge_changed_s = _optional_float(state.get("charge_changed_s"))

    def _add(self, spec: VehicleSpec, *, now_s: float) -> VehicleState:
        """Register a vehicle made from `spec`."""
        state = VehicleState(
            spec=spec, born_s=now_s, locked=spec.locked, plugged_in=spec.powertrain.has_battery
        )
        self._by_id[spec.id] = state
        self._by_vin[spec.vin] = state
        return state


def _optional_float(value: object) -> float | None:
    """Return a stored number as a float (None stays None)."""
    return None if value is None else float(value)  # type: ignore[arg-type]
