"""The simulated fleet's catalog: deterministic vehicles derived from the seed.

Vehicle `i` of seed `s` is generated from its own random stream (`catalog:s:i`), so the
catalog is the same on every run and machine, and growing it does not change earlier
vehicles. Ids are UUID v4 strings (Smartcar's form); VINs are 17 characters of the VIN
alphabet (no I, O or Q) with a real World Manufacturer Identifier for the make, the model
year code in position 10 and a valid North American check digit in position 9.

A VIN the catalog does not know (the gateway connects its own fleet by VIN) gets a vehicle
generated from `vin:s:<VIN>`: same seed and VIN, same id and data. Its make follows the WMI
when it is one the catalog uses, its year follows the year code when that is 2010-2039.

Numbers are realistic, not real: odometers 5,000-150,000 km, 20-120 km driven a day, tanks
and batteries 15-95 % full, tyres 175-237 kPa (Smartcar test mode's range), oil life 20-100 %,
parked around Denver (Smartcar test mode puts cars in Colorado).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from enum import StrEnum

VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_TRANSLITERATION = dict(
    zip(
        "ABCDEFGHJKLMNPRSTUVWXYZ",
        (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9),
        strict=True,
    )
)
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010, 2011, ... 2039
_HOME = (39.7392, -104.9903)  # Denver


class Powertrain(StrEnum):
    """How a vehicle is propelled, which decides whether it has fuel, a battery, engine oil."""

    ICE = "ICE"
    BEV = "BEV"
    PHEV = "PHEV"

    @property
    def has_fuel(self) -> bool:
        """Tell whether the vehicle has a fuel tank (and engine oil)."""
        return self is not Powertrain.BEV

    @property
    def has_battery(self) -> bool:
        """Tell whether the vehicle has a traction battery."""
        return self is not Powertrain.ICE


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A make and model the catalog draws from, with its capacities."""

    make: str
    model: str
    powertrain: Powertrain
    wmi: str
    first_year: int
    tank_l: float | None = None
    fuel_range_km: float | None = None
    electric_range_km: float | None = None
    has_sunroof: bool = False

    @classmethod
    def bev(
        cls,
        make: str,
        model: str,
        *,
        wmi: str,
        first_year: int,
        range_km: float,
        sunroof: bool = False,
    ) -> ModelSpec:
        """Describe a battery electric model."""
        return cls(
            make=make,
            model=model,
            powertrain=Powertrain.BEV,
            wmi=wmi,
            first_year=first_year,
            electric_range_km=range_km,
            has_sunroof=sunroof,
        )

    @classmethod
    def ice(
        cls,
        make: str,
        model: str,
        *,
        wmi: str,
        first_year: int,
        tank_l: float,
        range_km: float,
        sunroof: bool = False,
    ) -> ModelSpec:
        """Describe a combustion-engine model."""
        return cls(
            make=make,
            model=model,
            powertrain=Powertrain.ICE,
            wmi=wmi,
            first_year=first_year,
            tank_l=tank_l,
            fuel_range_km=range_km,
            has_sunroof=sunroof,
        )

    @classmethod
    def phev(
        cls,
        make: str,
        model: str,
        *,
        wmi: str,
        first_year: int,
        tank_l: float,
        range_km: float,
        electric_km: float,
    ) -> ModelSpec:
        """Describe a plug-in hybrid model."""
        return cls(
            make=make,
            model=model,
            powertrain=Powertrain.PHEV,
            wmi=wmi,
            first_year=first_year,
            tank_l=tank_l,
            fuel_range_km=range_km,
            electric_range_km=electric_km,
        )


_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec.bev("TESLA", "Model 3", wmi="5YJ", first_year=2018, range_km=430),
    ModelSpec.bev("TESLA", "Model Y", wmi="7SA", first_year=2020, range_km=455),
    ModelSpec.bev("FORD", "Mustang Mach-E", wmi="3FM", first_year=2021, range_km=400),
    ModelSpec.bev("CHEVROLET", "Bolt EV", wmi="1G1", first_year=2017, range_km=415),
    ModelSpec.bev("NISSAN", "LEAF", wmi="1N4", first_year=2016, range_km=240),
    ModelSpec.bev("VOLKSWAGEN", "ID.4", wmi="WVG", first_year=2021, range_km=410),
    ModelSpec.bev("HYUNDAI", "IONIQ 5", wmi="KM8", first_year=2022, range_km=450, sunroof=True),
    ModelSpec.ice(
        "TOYOTA", "RAV4", wmi="2T3", first_year=2016, tank_l=55, range_km=800, sunroof=True
    ),
    ModelSpec.ice(
        "HONDA", "Civic", wmi="2HG", first_year=2016, tank_l=47, range_km=750, sunroof=True
    ),
    ModelSpec.ice("FORD", "F-150", wmi="1FT", first_year=2016, tank_l=98, range_km=900),
    ModelSpec.ice("AUDI", "Q5", wmi="WA1", first_year=2016, tank_l=70, range_km=850, sunroof=True),
    ModelSpec.ice("SUBARU", "Outback", wmi="4S4", first_year=2016, tank_l=70, range_km=900),
    ModelSpec.phev(
        "TOYOTA", "Prius Prime", wmi="JTD", first_year=2017, tank_l=43, range_km=950, electric_km=70
    ),
    ModelSpec.phev(
        "BMW", "330e", wmi="WBA", first_year=2016, tank_l=40, range_km=600, electric_km=35
    ),
    ModelSpec.phev(
        "KIA", "Niro PHEV", wmi="KND", first_year=2018, tank_l=43, range_km=850, electric_km=40
    ),
    ModelSpec.phev(
        "JEEP", "Wrangler 4xe", wmi="1C4", first_year=2021, tank_l=65, range_km=600, electric_km=35
    ),
)


_WMIS = frozenset(model.wmi for model in _MODELS)


@dataclass(frozen=True, kw_only=True)
class VehicleSpec:
    """One simulated vehicle as it left the catalog: identity, capabilities, starting data."""

    id: str
    vin: str
    make: str
    model: str
    year: int
    powertrain: Powertrain
    odometer_km: float
    km_per_day: float
    fuel_fraction: float | None
    tank_l: float | None
    fuel_range_km: float | None
    charge_fraction: float | None
    electric_range_km: float | None
    oil_life: float | None
    latitude: float
    longitude: float
    tire_kpa: tuple[float, float, float, float]  # front left, front right, back left, back right
    locked: bool
    has_sunroof: bool
    report_interval_s: float
    report_phase_s: float


def build_catalog(*, seed: int, count: int) -> tuple[VehicleSpec, ...]:
    """Return the first `count` catalog vehicles of `seed`."""
    return tuple(catalog_vehicle(seed=seed, index=index) for index in range(count))


def catalog_vehicle(*, seed: int, index: int) -> VehicleSpec:
    """Return catalog vehicle number `index` of `seed` (the same on every call)."""
    rng = random.Random(f"catalog:{seed}:{index}")
    model = rng.choice(_MODELS)
    year = rng.randint(model.first_year, 2024)
    return _generate(rng, model=model, year=year, vin=None)


def vehicle_for_vin(*, seed: int, vin: str) -> VehicleSpec:
    """Return the vehicle `seed` gives a VIN outside the catalog (the same on every call)."""
    vin = vin.upper()
    rng = random.Random(f"vin:{seed}:{vin}")
    candidates = [model for model in _MODELS if model.wmi == vin[:3]] or list(_MODELS)
    model = rng.choice(candidates)
    year_index = _YEAR_CODES.find(vin[9])
    year = 2010 + year_index if year_index >= 0 else rng.randint(model.first_year, 2024)
    return _generate(rng, model=model, year=year, vin=vin)


def known_wmi(vin: str) -> bool:
    """Tell whether the VIN's World Manufacturer Identifier is one a catalog make uses."""
    return vin[:3].upper() in _WMIS


def is_well_formed_vin(vin: str) -> bool:
    """Tell whether `vin` is 17 characters of the VIN alphabet (check digit not enforced)."""
    return len(vin) == 17 and all(char in VIN_ALPHABET for char in vin.upper())


def vin_check_digit(vin: str) -> str:
    """Return the North American check digit (position 9) that `vin` should carry."""
    total = sum(
        weight * (int(char) if char.isdigit() else _TRANSLITERATION[char])
        for char, weight in zip(vin.upper(), _WEIGHTS, strict=True)
    )
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def _generate(rng: random.Random, *, model: ModelSpec, year: int, vin: str | None) -> VehicleSpec:
    """Draw one vehicle of `model` from `rng` in a fixed order (so results are reproducible)."""
    vehicle_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    drawn_vin = _draw_vin(rng, model=model, year=year)
    powertrain = model.powertrain
    return VehicleSpec(
        id=vehicle_id,
        vin=vin or drawn_vin,
        make=model.make,
        model=model.model,
        year=year,
        powertrain=powertrain,
        odometer_km=round(rng.uniform(5_000, 150_000), 1),
        km_per_day=round(rng.uniform(20, 120), 1),
        fuel_fraction=round(rng.uniform(0.15, 0.95), 3) if powertrain.has_fuel else None,
        tank_l=model.tank_l,
        fuel_range_km=model.fuel_range_km,
        charge_fraction=round(rng.uniform(0.15, 0.95), 3) if powertrain.has_battery else None,
        electric_range_km=model.electric_range_km,
        oil_life=round(rng.uniform(0.2, 1.0), 2) if powertrain.has_fuel else None,
        latitude=round(_HOME[0] + rng.uniform(-0.15, 0.15), 6),
        longitude=round(_HOME[1] + rng.uniform(-0.15, 0.15), 6),
        tire_kpa=(
            round(rng.uniform(175, 237), 1),
            round(rng.uniform(175, 237), 1),
            round(rng.uniform(175, 237), 1),
            round(rng.uniform(175, 237), 1),
        ),
        locked=rng.random() < 0.8,
        has_sunroof=model.has_sunroof,
        report_interval_s=float(rng.choice((60, 300, 900, 1800, 3600))),
        report_phase_s=round(rng.uniform(0, 3600), 3),
    )


def _draw_vin(rng: random.Random, *, model: ModelSpec, year: int) -> str:
    """Draw a VIN for `model` and `year` with a valid check digit."""
    descriptor = "".join(rng.choice(VIN_ALPHABET) for _ in range(5))
    year_code = _YEAR_CODES[(year - 2010) % len(_YEAR_CODES)]
    plant = rng.choice(VIN_ALPHABET)
    serial = f"{rng.randrange(1_000_000):06d}"
    draft = f"{model.wmi}{descriptor}0{year_code}{plant}{serial}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]
