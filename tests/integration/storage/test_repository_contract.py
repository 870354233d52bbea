"""The repository contract, proven once for both backends: the SQL adapter and the fake."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from gateway.core.model import (
    Availability,
    ChargeAction,
    CommandState,
    ConnectionStatus,
    FieldReading,
    Grant,
    LastCommand,
    OwnerAction,
    TelemetryField,
)
from gateway.core.ports import Conflict
from tests.integration.storage.builders import (
    BERLIN_SUMMER,
    COMMAND_ERROR,
    T0,
    at,
    bare_vehicle,
    command,
    grant,
    reading,
    rental,
    state,
    tokens,
    vehicle,
)
from tests.integration.storage.conftest import Backend, seed

# --- vehicles -------------------------------------------------------------------------------


async def test_vehicle_round_trips_every_field(backend: Backend) -> None:
    """A vehicle reads back equal to what was written, with its times in UTC."""
    written = vehicle(grant_id="g1")
    await seed(backend, grant("g1"), written)
    async with backend.factory() as uow:
        found = await uow.vehicles.get("v1")
        locked = await uow.vehicles.get("v1", for_update=True)
    assert found == written == locked
    assert found is not None
    assert found.status_changed_at is not None
    assert found.status_changed_at.tzinfo == UTC


async def test_what_a_waiting_car_s_owner_must_do_round_trips(backend: Backend) -> None:
    """A car waiting for its owner keeps Smartcar's error, resolution, links, message, the
    commands-only flag and the probe time (in UTC); writing it without one clears them."""
    action = OwnerAction(
        error="CONNECTED_SERVICES_ACCOUNT:VIRTUAL_KEY_REQUIRED",
        resolution_type="ACTION_REQUIRED",
        resolution_url="https://www.tesla.com/_ak/smartcar.com",
        doc_url="https://smartcar.com/docs/errors/api-errors/connected-services-account-errors",
        user_message="Add the virtual key.",
        commands_only=True,
        probed_at=at(30).astimezone(BERLIN_SUMMER),
    )
    waiting = bare_vehicle(
        "v1", status=ConnectionStatus.NEEDS_REAUTHENTICATION, owner_action=action
    )
    await seed(backend, waiting)
    async with backend.factory() as uow:
        found = await uow.vehicles.get("v1")
        assert found is not None
        assert found.owner_action is not None
        assert found.owner_action == dataclasses.replace(action, probed_at=at(30))
        assert found.owner_action.probed_at is not None
        assert found.owner_action.probed_at.tzinfo == UTC
        await uow.vehicles.update(
            dataclasses.replace(found, status=ConnectionStatus.ACTIVE, owner_action=None)
        )
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.vehicles.get("v1") == bare_vehicle("v1", status=ConnectionStatus.ACTIVE)


async def test_vehicle_with_only_required_fields_round_trips(backend: Backend) -> None:
    """A bare vehicle keeps its Nones, empty permissions and no last command."""
    await seed(backend, bare_vehicle("v2"))
    async with backend.factory() as uow:
        assert await uow.vehicles.get("v2") == bare_vehicle("v2")
        assert await uow.vehicles.get("missing") is None


async def test_duplicate_vehicle_id_is_a_conflict_and_the_unit_goes_on(backend: Backend) -> None:
    """Adding an existing id raises Conflict; the unit of work can still write and commit."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        with pytest.raises(Conflict):
            await uow.vehicles.add(vehicle("v1", smartcar_vehicle_id="sc-other"))
        await uow.vehicles.add(vehicle("v2"))
        await uow.commit()
    async with backend.factory() as uow:
        assert [v.id for v in await uow.vehicles.page(status=None, after_id=None, limit=9)] == [
            "v1",
            "v2",
        ]


async def test_a_smartcar_vehicle_links_to_one_fleet_vehicle(backend: Backend) -> None:
    """Adding or updating a vehicle onto a linked Smartcar id raises Conflict."""
    await seed(backend, vehicle("v1", smartcar_vehicle_id="sc-1"), bare_vehicle("v2"))
    async with backend.factory() as uow:
        with pytest.raises(Conflict):
            await uow.vehicles.add(vehicle("v3", smartcar_vehicle_id="sc-1"))
        with pytest.raises(Conflict):
            await uow.vehicles.update(bare_vehicle("v2", smartcar_vehicle_id="sc-1"))
        assert (await uow.vehicles.by_smartcar_id("sc-1")) == vehicle(
            "v1", smartcar_vehicle_id="sc-1"
        )
        assert await uow.vehicles.by_smartcar_id("sc-unknown") is None


async def test_update_writes_every_field(backend: Backend) -> None:
    """Update replaces the whole record, clearing fields set to None."""
    await seed(backend, vehicle("v1"))
    cleared = bare_vehicle("v1", status=ConnectionStatus.DISCONNECTED, vin="1HGCM82633A004352")
    async with backend.factory() as uow:
        await uow.vehicles.update(cleared)
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.vehicles.get("v1") == cleared


async def test_update_records_sleep_and_failures(backend: Backend) -> None:
    """The polling fields (asleep until, failure count, last error) are written and cleared."""
    await seed(backend, bare_vehicle("v1"))
    failing = bare_vehicle(
        "v1", asleep_until=at(60).astimezone(BERLIN_SUMMER), failure_count=5, last_error="ASLEEP"
    )
    async with backend.factory() as uow:
        await uow.vehicles.update(failing)
        await uow.commit()
    async with backend.factory() as uow:
        found = await uow.vehicles.get("v1")
        await uow.vehicles.update(bare_vehicle("v1"))
        assert await uow.vehicles.get("v1") == bare_vehicle("v1")
    assert found == bare_vehicle("v1", asleep_until=at(60), failure_count=5, last_error="ASLEEP")


async def test_note_telemetry_stamps_the_report_and_may_clear_the_sleep_mark(
    backend: Backend,
) -> None:
    """note_telemetry sets last_telemetry_at; with awake=True it also clears asleep_until."""
    await seed(backend, bare_vehicle("v1", asleep_until=at(60)), bare_vehicle("v2"))
    async with backend.factory() as uow:
        await uow.vehicles.note_telemetry("v1", at=at(10), awake=False)
        await uow.commit()
    async with backend.factory() as uow:
        still_asleep = await uow.vehicles.get("v1")
        await uow.vehicles.note_telemetry("v1", at=at(20), awake=True)
        await uow.commit()
    async with backend.factory() as uow:
        awake = await uow.vehicles.get("v1")
        untouched = await uow.vehicles.get("v2")
    assert still_asleep == bare_vehicle("v1", asleep_until=at(60), last_telemetry_at=at(10))
    assert awake == bare_vehicle("v1", last_telemetry_at=at(20))
    assert untouched == bare_vehicle("v2")


async def database_time_after(backend: Backend, moment: datetime) -> datetime:
    """Poll the database's clock until it reads later than `moment`; return that time."""
    for _ in range(1000):
        async with backend.factory() as uow:
            now, _ = await uow.vehicles.changed_since(None)
        if now > moment:
            return now
        await asyncio.sleep(0.001)
    raise AssertionError(f"the database's clock stayed at {moment}")


async def test_changed_since_finds_the_vehicles_written_after_a_time_by_the_database(
    backend: Backend,
) -> None:
    """changed_since(None) gives the database's time and nothing; after that time, only the
    vehicles added or updated since come back, and a telemetry note is not a change."""
    await seed(backend, bare_vehicle("v1"), bare_vehicle("v2"))
    async with backend.factory() as uow:
        now, none = await uow.vehicles.changed_since(None)
    assert none == []
    assert now.tzinfo == UTC
    # Stamps come from the database's clock: wait (bounded) until it has passed `now`.
    boundary = await database_time_after(backend, now)
    async with backend.factory() as uow:
        _, before = await uow.vehicles.changed_since(boundary)
        await uow.vehicles.update(bare_vehicle("v2", failure_count=3))
        await uow.vehicles.note_telemetry("v1", at=at(5), awake=True)
        await uow.vehicles.add(bare_vehicle("v3"))
        await uow.commit()
    async with backend.factory() as uow:
        later, changed = await uow.vehicles.changed_since(boundary)
        _, everything = await uow.vehicles.changed_since(now - timedelta(seconds=1))
    assert before == []
    assert later >= now
    assert sorted(v.id for v in changed) == ["v2", "v3"]
    assert [v for v in changed if v.id == "v2"] == [bare_vehicle("v2", failure_count=3)]
    assert sorted(v.id for v in everything) == ["v1", "v2", "v3"]


async def test_count_by_status_counts_every_vehicle_once(backend: Backend) -> None:
    """Vehicles are counted per connection status; statuses with none are absent."""
    await seed(
        backend,
        bare_vehicle("v1"),
        bare_vehicle("v2"),
        bare_vehicle("v3", status=ConnectionStatus.EXPIRED),
    )
    async with backend.factory() as uow:
        counts = await uow.vehicles.count_by_status()
    assert counts == {ConnectionStatus.NOT_CONNECTED: 2, ConnectionStatus.EXPIRED: 1}


async def test_a_request_allowance_is_written_only_by_its_own_method(backend: Backend) -> None:
    """set_request_allowance() sets and clears the car's own allowance and counts as a
    change; add() and update() never write it, so a copy read before it was set cannot
    undo it."""
    await seed(backend, bare_vehicle("v1", request_allowance=900))
    async with backend.factory() as uow:
        stale = await uow.vehicles.get("v1")
        assert stale is not None
        assert stale.request_allowance is None  # add() left it to the fleet's
        now, _ = await uow.vehicles.changed_since(None)
    boundary = await database_time_after(backend, now)
    async with backend.factory() as uow:
        await uow.vehicles.set_request_allowance("v1", 1200)
        await uow.commit()
    async with backend.factory() as uow:
        await uow.vehicles.update(dataclasses.replace(stale, failure_count=1))
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.vehicles.get("v1") == bare_vehicle(
            "v1", failure_count=1, request_allowance=1200
        )
        _, changed = await uow.vehicles.changed_since(boundary)
        assert [v.id for v in changed] == ["v1"]
        await uow.vehicles.set_request_allowance("v1", None)
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.vehicles.get("v1") == bare_vehicle("v1", failure_count=1)
        with pytest.raises(LookupError):
            await uow.vehicles.set_request_allowance("ghost", 10)


async def test_update_of_an_unknown_vehicle_is_a_lookup_error(backend: Backend) -> None:
    """Updating a vehicle that was never added raises LookupError."""
    async with backend.factory() as uow:
        with pytest.raises(LookupError):
            await uow.vehicles.update(vehicle("ghost"))


async def test_vehicle_pointing_at_no_grant_is_refused(backend: Backend) -> None:
    """A vehicle whose grant does not exist violates the foreign key."""
    async with backend.factory() as uow:
        with pytest.raises(backend.foreign_key_error):
            await uow.vehicles.add(vehicle("v1", grant_id="no-such-grant"))


async def test_by_grant_lists_the_grants_vehicles_by_id(backend: Backend) -> None:
    """by_grant returns exactly the vehicles using that grant, ordered by id."""
    await seed(
        backend,
        grant("g1"),
        grant("g2"),
        vehicle("v3", grant_id="g1"),
        vehicle("v1", grant_id="g1"),
        vehicle("v2", grant_id="g2"),
    )
    async with backend.factory() as uow:
        assert [v.id for v in await uow.vehicles.by_grant("g1")] == ["v1", "v3"]
        assert await uow.vehicles.by_grant("g3") == []


async def test_page_orders_by_id_filters_by_status_and_resumes(backend: Backend) -> None:
    """page() walks vehicles by id, after a cursor, up to a limit, optionally by status."""
    expired = ConnectionStatus.EXPIRED
    await seed(
        backend,
        *(
            bare_vehicle(f"v{n}", status=expired if n % 2 else ConnectionStatus.ACTIVE)
            for n in range(6)
        ),
    )
    async with backend.factory() as uow:
        first = await uow.vehicles.page(status=None, after_id=None, limit=4)
        rest = await uow.vehicles.page(status=None, after_id=first[-1].id, limit=4)
        odd = await uow.vehicles.page(status=expired, after_id="v1", limit=10)
        none = await uow.vehicles.page(status=None, after_id=None, limit=0)
    assert [v.id for v in first] == ["v0", "v1", "v2", "v3"]
    assert [v.id for v in rest] == ["v4", "v5"]
    assert [v.id for v in odd] == ["v3", "v5"]
    assert none == []


# --- grants ---------------------------------------------------------------------------------


async def test_grant_round_trips_with_its_tokens(backend: Backend) -> None:
    """A grant reads back with both tokens and UTC expiry times."""
    written = grant("g1", refresh_claimed_until=at(30).astimezone(BERLIN_SUMMER))
    await seed(backend, written)
    async with backend.factory() as uow:
        found = await uow.grants.get("g1")
        assert await uow.grants.get("g0") is None
    assert found == written
    assert found is not None
    assert found.tokens.access_token.reveal() == written.tokens.access_token.reveal()
    assert found.tokens.refresh_expires_at.tzinfo == UTC


async def test_by_user_lists_one_users_grants(backend: Backend) -> None:
    """by_user returns the user's grants by id, and nobody else's."""
    await seed(backend, grant("g2"), grant("g1"), grant("g3", smartcar_user_id="user-2"))
    async with backend.factory() as uow:
        assert [g.id for g in await uow.grants.by_user("user-1")] == ["g1", "g2"]
        assert await uow.grants.by_user("user-9") == []


async def test_duplicate_grant_is_a_conflict(backend: Backend) -> None:
    """Adding an existing grant id raises Conflict."""
    await seed(backend, grant("g1"))
    async with backend.factory() as uow:
        with pytest.raises(Conflict):
            await uow.grants.add(grant("g1"))


async def test_claim_refresh_at_the_expected_version_wins(backend: Backend) -> None:
    """A claim on the current version bumps it, records the claim and is durable."""
    await seed(backend, grant("g1", version=7))
    async with backend.factory() as uow:
        claimed = await uow.grants.claim_refresh("g1", expected_version=7, until=at(30), now=T0)
        await uow.commit()
    assert claimed == grant("g1", version=8, refresh_claimed_until=at(30))
    async with backend.factory() as uow:
        assert await uow.grants.get("g1") == claimed


async def test_claim_refresh_on_a_stale_version_loses(backend: Backend) -> None:
    """A claim naming an old version returns None and changes nothing."""
    await seed(backend, grant("g1", version=7))
    async with backend.factory() as uow:
        assert (
            await uow.grants.claim_refresh("g1", expected_version=6, until=at(30), now=T0) is None
        )
        assert (
            await uow.grants.claim_refresh("gX", expected_version=7, until=at(30), now=T0) is None
        )
        assert await uow.grants.get("g1") == grant("g1", version=7)


async def test_claim_refresh_respects_an_unexpired_claim(backend: Backend) -> None:
    """A live claim blocks a new one until `now` has passed its end, even at the same version."""
    await seed(backend, grant("g1", version=3, refresh_claimed_until=at(30)))
    async with backend.factory() as uow:
        grants = uow.grants
        assert (
            await grants.claim_refresh("g1", expected_version=3, until=at(60), now=at(29)) is None
        )
        assert (
            await grants.claim_refresh("g1", expected_version=3, until=at(60), now=at(30)) is None
        )
        late = await grants.claim_refresh("g1", expected_version=3, until=at(90), now=at(31))
    assert late == grant("g1", version=4, refresh_claimed_until=at(90))


async def test_replace_tokens_stores_the_pair_and_clears_the_claim(backend: Backend) -> None:
    """Replacing at the expected version stores the new pair, bumps it and ends the claim."""
    await seed(backend, grant("g1", version=4, refresh_claimed_until=at(30)))
    fresh = tokens("access-new", "refresh-new")
    async with backend.factory() as uow:
        replaced = await uow.grants.replace_tokens("g1", expected_version=4, tokens=fresh)
        await uow.commit()
    assert replaced == grant("g1", version=5, tokens=fresh, refresh_claimed_until=None)
    async with backend.factory() as uow:
        assert await uow.grants.get("g1") == replaced


async def test_replace_tokens_on_a_stale_version_loses(backend: Backend) -> None:
    """Replacing at an old version returns None and keeps the stored pair."""
    await seed(backend, grant("g1", version=4))
    async with backend.factory() as uow:
        fresh = tokens("access-new", "refresh-new")
        assert await uow.grants.replace_tokens("g1", expected_version=3, tokens=fresh) is None
        assert await uow.grants.get("g1") == grant("g1", version=4)


def expiring(grant_id: str, days: float) -> Grant:
    """Return a grant whose refresh token expires `days` after T0."""
    pair = dataclasses.replace(tokens(), refresh_expires_at=at(days * 86_400))
    return grant(grant_id, tokens=pair)


async def test_due_for_renewal_lists_grants_expiring_before_soonest_first(
    backend: Backend,
) -> None:
    """Grants expiring strictly before the cut-off come back soonest first, ties by id."""
    await seed(
        backend,
        expiring("g-late", 30),
        expiring("g-b", 5),
        expiring("g-a", 5),
        expiring("g-first", 1),
        expiring("g-at-cutoff", 10),
    )
    cutoff = at(10 * 86_400).astimezone(BERLIN_SUMMER)
    async with backend.factory() as uow:
        due = await uow.grants.due_for_renewal(refresh_expires_before=cutoff, limit=10)
        first_two = await uow.grants.due_for_renewal(refresh_expires_before=cutoff, limit=2)
        none = await uow.grants.due_for_renewal(refresh_expires_before=cutoff, limit=0)
    assert [g.id for g in due] == ["g-first", "g-a", "g-b"]
    assert due[0] == expiring("g-first", 1)
    assert [g.id for g in first_two] == ["g-first", "g-a"]
    assert none == []


async def test_deleting_a_grant_unlinks_its_vehicles(backend: Backend) -> None:
    """A deleted grant is gone and its vehicles keep everything but the link."""
    await seed(backend, grant("g1"), vehicle("v1", grant_id="g1"))
    async with backend.factory() as uow:
        await uow.grants.delete("g1")
        await uow.grants.delete("never-existed")
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.grants.get("g1") is None
        assert await uow.vehicles.get("v1") == vehicle("v1", grant_id=None)


# --- telemetry ------------------------------------------------------------------------------


@pytest.mark.parametrize("field", list(TelemetryField))
async def test_every_telemetry_value_type_round_trips(
    backend: Backend, field: TelemetryField
) -> None:
    """Each field's value, times and availability read back equal, times in UTC."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.telemetry.store("v1", [reading(field)])
        await uow.commit()
    async with backend.factory() as uow:
        latest = await uow.telemetry.latest("v1")
    assert latest == {field: reading(field)}
    recorded_at = latest[field].recorded_at
    assert recorded_at is not None
    assert recorded_at.tzinfo == UTC


async def test_a_reading_without_value_keeps_its_reason(backend: Backend) -> None:
    """An unavailable reading stores no value, and its reason."""
    missing = FieldReading(
        field=TelemetryField.FUEL, availability=Availability.NOT_CAPABLE, reason="COMPATIBILITY:X"
    )
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.telemetry.store("v1", [missing])
        assert await uow.telemetry.latest("v1") == {TelemetryField.FUEL: missing}
        assert await uow.telemetry.latest("v2") == {}


async def test_store_replaces_only_the_fields_given(backend: Backend) -> None:
    """Storing a field replaces its reading, leaves the others, and the last duplicate wins."""
    odometer, fuel = TelemetryField.ODOMETER, TelemetryField.FUEL
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.telemetry.store("v1", [reading(odometer), reading(fuel)])
        await uow.telemetry.store("v1", [])
        newer = [reading(fuel, fetched_at=at(5)), reading(fuel, fetched_at=at(9))]
        await uow.telemetry.store("v1", newer)
        await uow.commit()
    async with backend.factory() as uow:
        latest = await uow.telemetry.latest("v1")
    assert latest == {odometer: reading(odometer), fuel: reading(fuel, fetched_at=at(9))}


async def test_telemetry_of_an_unknown_vehicle_is_refused(backend: Backend) -> None:
    """Readings must belong to a known vehicle."""
    async with backend.factory() as uow:
        with pytest.raises(backend.foreign_key_error):
            await uow.telemetry.store("ghost", [reading(TelemetryField.ODOMETER)])


# --- rentals --------------------------------------------------------------------------------


async def test_rental_round_trips_and_is_active(backend: Backend) -> None:
    """A new rental reads back by id and as its vehicle's active rental."""
    await seed(backend, vehicle("v1"), vehicle("v2"), vehicle("v3"))
    async with backend.factory() as uow:
        await uow.rentals.add(rental("r1", "v1"))
        await uow.rentals.add(rental("r2", "v2", started_at=at(1).astimezone(BERLIN_SUMMER)))
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.rentals.get("r1") == rental("r1", "v1")
        assert await uow.rentals.active("v1") == rental("r1", "v1")
        assert await uow.rentals.active("v3") is None
        both = await uow.rentals.active_for(["v1", "v2", "v3", "ghost"])
        assert await uow.rentals.active_for([]) == {}
    assert both == {"v1": rental("r1", "v1"), "v2": rental("r2", "v2", started_at=at(1))}


async def test_one_active_rental_per_vehicle(backend: Backend) -> None:
    """A second active rental of a car is a Conflict until the first one ends."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.rentals.add(rental("r1"))
        with pytest.raises(Conflict):
            await uow.rentals.add(rental("r2"))
        await uow.rentals.end("r1", ended_at=at(60))
        await uow.rentals.add(rental("r2", started_at=at(61)))
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.rentals.active("v1") == rental("r2", started_at=at(61))
        assert await uow.rentals.get("r1") == rental("r1", ended_at=at(60))


async def test_duplicate_rental_id_is_a_conflict(backend: Backend) -> None:
    """A rental id is used once, even after the rental ended."""
    await seed(backend, vehicle("v1"), vehicle("v2"))
    async with backend.factory() as uow:
        await uow.rentals.add(rental("r1", "v1", ended_at=at(5)))
        with pytest.raises(Conflict):
            await uow.rentals.add(rental("r1", "v2"))


async def test_ending_a_rental_twice_keeps_the_first_end(backend: Backend) -> None:
    """end() on an ended rental changes nothing; on an unknown one it is a LookupError."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.rentals.add(rental("r1"))
        await uow.rentals.end("r1", ended_at=at(10))
        await uow.rentals.end("r1", ended_at=at(20))
        assert await uow.rentals.get("r1") == rental("r1", ended_at=at(10))
        with pytest.raises(LookupError):
            await uow.rentals.end("r404", ended_at=at(20))


async def test_rental_of_an_unknown_vehicle_is_refused(backend: Backend) -> None:
    """A rental must hold a known vehicle."""
    async with backend.factory() as uow:
        with pytest.raises(backend.foreign_key_error):
            await uow.rentals.add(rental("r1", "ghost"))


# --- commands -------------------------------------------------------------------------------


async def test_command_round_trips_and_records_its_outcome(backend: Backend) -> None:
    """A command reads back; update writes its state, completion and error only."""
    await seed(backend, vehicle("v1"))
    failed = command(
        state=CommandState.FAILED, completed_at=at(4), error=COMMAND_ERROR, vehicle_id="other"
    )
    async with backend.factory() as uow:
        await uow.commands.add(command())
        assert await uow.commands.get("req-1") == command()
        await uow.commands.update(failed)
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.commands.get("req-1") == dataclasses.replace(failed, vehicle_id="v1")
        assert await uow.commands.get("req-2") is None


async def test_charge_commands_keep_their_action_and_limit(backend: Backend) -> None:
    """StartCharge, StopCharge and SetChargeLimit read back with their action, the limit
    a SetChargeLimit asked for, and as a vehicle's last command."""
    limit = command("req-3", action=ChargeAction.SET_CHARGE_LIMIT, charge_limit_percent=85)
    start = command("req-4", action=ChargeAction.START_CHARGE)
    stop = command("req-5", action=ChargeAction.STOP_CHARGE)
    last = LastCommand(action=ChargeAction.SET_CHARGE_LIMIT, request_id="req-3", at=at(5))
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        for record in (limit, start, stop):
            await uow.commands.add(record)
        car = await uow.vehicles.get("v1")
        assert car is not None
        await uow.vehicles.update(dataclasses.replace(car, last_command=last))
        await uow.commit()
    async with backend.factory() as uow:
        assert [await uow.commands.get(r.request_id) for r in (limit, start, stop)] == [
            limit,
            start,
            stop,
        ]
        stored = await uow.vehicles.get("v1")
        assert stored is not None
        assert stored.last_command == last


async def test_a_request_id_is_used_once(backend: Backend) -> None:
    """Adding a known request id is a Conflict; updating an unknown one a LookupError."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.commands.add(command())
        with pytest.raises(Conflict):
            await uow.commands.add(command(state=CommandState.SUCCEEDED))
        with pytest.raises(LookupError):
            await uow.commands.update(command("req-404"))
        with pytest.raises(backend.foreign_key_error):
            await uow.commands.add(command("req-2", vehicle_id="ghost"))


async def test_deleting_a_command_frees_its_request_id(backend: Backend) -> None:
    """After delete() the request id is unknown and can be added again."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.commands.add(command())
        await uow.commands.delete("req-1")
        await uow.commands.delete("req-404")
        assert await uow.commands.get("req-1") is None
        await uow.commands.add(command())
        await uow.commit()


async def test_resolve_writes_an_outcome_only_from_the_expected_state(backend: Backend) -> None:
    """resolve() settles a command still in the state the caller saw, and nothing else."""
    await seed(backend, vehicle("v1"))
    unknown = command(state=CommandState.OUTCOME_UNKNOWN, completed_at=at(1))
    settled = dataclasses.replace(unknown, state=CommandState.SUCCEEDED, completed_at=at(2))
    async with backend.factory() as uow:
        await uow.commands.add(unknown)
        assert await uow.commands.resolve(settled, was=CommandState.PENDING) is False
        assert await uow.commands.resolve(settled, was=CommandState.OUTCOME_UNKNOWN) is True
        assert await uow.commands.resolve(unknown, was=CommandState.OUTCOME_UNKNOWN) is False
        assert await uow.commands.resolve(command("req-404"), was=CommandState.PENDING) is False
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.commands.get("req-1") == settled


async def test_unresolved_lists_open_outcomes_oldest_first(backend: Backend) -> None:
    """Unknown outcomes since a time and PENDING ones older than a time, oldest first."""
    await seed(backend, vehicle("v1"))
    unknown = CommandState.OUTCOME_UNKNOWN
    written = [
        command("old-unknown", state=unknown, created_at=at(1)),
        command("unknown-b", state=unknown, created_at=at(5)),
        command("unknown-a", state=unknown, created_at=at(3)),
        command("stale-pending", created_at=at(2)),
        command("fresh-pending", created_at=at(6)),
        command("done", state=CommandState.SUCCEEDED, created_at=at(4)),
    ]
    async with backend.factory() as uow:
        for record in written:
            await uow.commands.add(record)
        await uow.commit()
    async with backend.factory() as uow:
        found = await uow.commands.unresolved(sent_after=at(2), pending_before=at(6), limit=10)
        first = await uow.commands.unresolved(sent_after=at(2), pending_before=at(6), limit=1)
    assert [c.request_id for c in found] == ["stale-pending", "unknown-a", "unknown-b"]
    assert [c.request_id for c in first] == ["stale-pending"]


async def test_next_sent_at_is_the_vehicles_next_other_command(backend: Backend) -> None:
    """The earliest other command of the same vehicle created at or after a time."""
    await seed(backend, vehicle("v1"), vehicle("v2"))
    async with backend.factory() as uow:
        for record in (
            command("req-1", created_at=at(1)),
            command("req-0", created_at=at(0)),
            command("req-3", created_at=at(3)),
            command("req-2", created_at=at(2)),
            command("other-car", vehicle_id="v2", created_at=at(1)),
        ):
            await uow.commands.add(record)
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.commands.next_sent_at("v1", after=at(1), request_id="req-1") == at(2)
        assert await uow.commands.next_sent_at("v1", after=at(3), request_id="req-3") is None
        assert await uow.commands.next_sent_at("v2", after=at(0), request_id="x") == at(1)


# --- OAuth states ---------------------------------------------------------------------------


async def test_a_state_can_be_taken_once(backend: Backend) -> None:
    """take() returns the issued state, then None; unknown states are None."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.states.add(state("s-1"))
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.states.take("s-1") == state("s-1")
        assert await uow.states.take("s-1") is None
        assert await uow.states.take("s-unknown") is None
        await uow.commit()
    async with backend.factory() as uow:
        assert await uow.states.take("s-1") is None


async def test_a_state_issued_twice_is_a_conflict(backend: Backend) -> None:
    """The same state cannot be stored twice, nor for an unknown vehicle."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        await uow.states.add(state("s-1"))
        with pytest.raises(Conflict):
            await uow.states.add(state("s-1"))
        with pytest.raises(backend.foreign_key_error):
            await uow.states.add(state("s-2", vehicle_id="ghost"))


async def test_naive_times_are_refused(backend: Backend) -> None:
    """Every stored time must be timezone-aware."""
    await seed(backend, vehicle("v1"))
    async with backend.factory() as uow:
        with pytest.raises(backend.naive_time_error):
            await uow.rentals.add(rental(started_at=T0.replace(tzinfo=None)))
