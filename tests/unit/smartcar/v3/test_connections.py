"""Connections V3: list with filters and pages (both meta variants), get, delete, users."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from clients.smartcar import ResourceNotFound, SmartcarProtocolError
from clients.smartcar.v3 import (
    Page,
    SmartcarConnectionsV3,
    VehicleConnection,
    VehicleDescription,
)
from tests.unit.smartcar.fakes import USER_ID, VEHICLE_ID, FakeSmartcar
from tests.unit.smartcar.v3.fakes import APP_TOKEN, CONNECTION_ID, v3_error

ORIGIN = "https://vehicle.sc.test"

# Smartcar's get-connection example.
DOCUMENTED = {
    "id": CONNECTION_ID,
    "type": "connection",
    "attributes": {
        "permissions": ["read_vehicle_info", "read_odometer"],
        "vehicle": {
            "make": "Tesla",
            "model": "Model S",
            "year": 2020,
            "mode": "live",
            "powertrainType": "BEV",
        },
    },
    "relationships": {
        "vehicle": {
            "data": {"id": VEHICLE_ID, "type": "vehicle"},
            "links": {"related": f"https://api.example.com/vehicles/{VEHICLE_ID}"},
        },
        "user": {"data": {"id": USER_ID, "type": "user"}},
    },
    "meta": {"createdAt": "2024-01-01T00:00:00Z", "updatedAt": "2024-01-02T00:00:00Z"},
    "links": {"self": f"https://api.example.com/connections/{CONNECTION_ID}"},
}

EXPECTED = VehicleConnection(
    id=CONNECTION_ID,
    user_id=USER_ID,
    vehicle_id=VEHICLE_ID,
    permissions=("read_vehicle_info", "read_odometer"),
    vehicle=VehicleDescription(
        make="Tesla", model="Model S", year=2020, mode="live", powertrain_type="BEV"
    ),
    created_at=datetime(2024, 1, 1, tzinfo=UTC),
    updated_at=datetime(2024, 1, 2, tzinfo=UTC),
)


def _query(fake: FakeSmartcar) -> dict[str, list[str]]:
    return parse_qs(fake.last.url.query.decode())


async def test_list_sends_filters_and_paging(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3
) -> None:
    """GET /v3/connections with filter[…] and page[…]; the user filter also as sc-user-id."""
    fake.reply(
        200, json_body={"data": [], "meta": {"pageNumber": 2, "pageSize": 10, "totalCount": 11}}
    )
    await connections.list_connections(
        APP_TOKEN,
        user_id=USER_ID,
        vehicle_id=VEHICLE_ID,
        mode="simulated",
        page_number=2,
        page_size=10,
    )
    assert fake.last.url.copy_with(query=None) == f"{ORIGIN}/v3/connections"
    assert _query(fake) == {
        "filter[userId]": [USER_ID],
        "filter[vehicleId]": [VEHICLE_ID],
        "filter[vehicle.mode]": ["simulated"],
        "page[number]": ["2"],
        "page[size]": ["10"],
    }
    assert fake.last.headers["sc-user-id"] == USER_ID
    assert fake.last.headers["authorization"] == f"Bearer {APP_TOKEN.reveal()}"


async def test_list_without_filters_sends_no_query(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3
) -> None:
    """No filter, no paging: a bare GET (Smartcar's defaults apply)."""
    fake.reply(200, json_body={"data": []})
    await connections.list_connections(APP_TOKEN)
    assert fake.last.url.query == b""
    assert "sc-user-id" not in fake.last.headers


@pytest.mark.parametrize(
    ("document", "page"),
    [
        (
            {
                "meta": {"pageNumber": 1, "pageSize": 10, "totalCount": 1, "orderBy": "createdAt"},
                "links": {"self": "x", "first": "x", "last": "x", "next": None, "prev": None},
            },
            Page(number=1, size=10, total_count=1, has_next=False),
        ),
        (
            {
                "meta": {"page": 1, "pageSize": 1, "totalCount": 3},
                "links": {"next": "/connections?page[number]=2", "previous": None},
            },
            Page(number=1, size=1, total_count=3, has_next=True),
        ),
        (
            {"meta": {"page": 1, "pageSize": 1, "totalCount": 3}},
            Page(number=1, size=1, total_count=3, has_next=True),
        ),
        (
            {"meta": {"pageNumber": "3", "pageSize": "1", "totalCount": "3"}},
            Page(number=3, size=1, total_count=3, has_next=False),
        ),
        ({}, Page(number=None, size=None, total_count=None, has_next=False)),
    ],
    ids=["live-pageNumber-prev", "docs-page-previous", "counts-only", "digit-strings", "no-meta"],
)
async def test_list_reads_both_paging_variants(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3, document: dict[str, Any], page: Page
) -> None:
    """meta.page or meta.pageNumber; links.next when given, else the counts decide."""
    fake.reply(200, json_body={"data": [DOCUMENTED], **document})
    listed = await connections.list_connections(APP_TOKEN)
    assert listed.items == (EXPECTED,)
    assert listed.page == page


async def test_user_and_vehicle_may_come_from_attributes(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3
) -> None:
    """List items may carry attributes.user.id / externalId instead of relationships."""
    item = {
        "id": CONNECTION_ID,
        "type": "connection",
        "attributes": {
            "user": {"id": USER_ID, "externalId": "fleet-42"},
            "vehicle": {"id": VEHICLE_ID, "make": "VW"},
        },
    }
    fake.reply(200, json_body={"data": [item]})
    (connection,) = (await connections.list_connections(APP_TOKEN)).items
    assert (connection.user_id, connection.vehicle_id) == (USER_ID, VEHICLE_ID)
    assert connection.user_external_id == "fleet-42"
    assert connection.permissions == ()
    assert connection.vehicle == VehicleDescription(make="VW")


async def test_all_connections_walks_the_pages_by_number(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3
) -> None:
    """Pages 1, 2 … are asked for until one says it is the last; links are not followed."""
    first = {**DOCUMENTED, "id": "c-1"}
    second = {**DOCUMENTED, "id": "c-2"}
    fake.reply(200, json_body={"data": [first], "links": {"next": "https://elsewhere.test/steal"}})
    fake.reply(200, json_body={"data": [second], "links": {"next": None}})
    walked = [c.id async for c in connections.all_connections(APP_TOKEN, page_size=1)]
    assert walked == ["c-1", "c-2"]
    assert [parse_qs(r.url.query.decode())["page[number]"] for r in fake.requests] == [["1"], ["2"]]
    assert all(r.url.host == "vehicle.sc.test" for r in fake.requests)


async def test_all_connections_stops_at_an_empty_page(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3
) -> None:
    """A page with no items ends the walk even if it claims a next page."""
    fake.reply(200, json_body={"data": [], "links": {"next": "/v3/connections?page[number]=2"}})
    assert [c async for c in connections.all_connections(APP_TOKEN)] == []
    assert len(fake.requests) == 1


async def test_get_connection_wrapped(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3
) -> None:
    """GET /v3/connections/{connectionId}: the documented wrapped resource."""
    fake.reply(200, json_body={"data": DOCUMENTED})
    assert await connections.connection(APP_TOKEN, CONNECTION_ID) == EXPECTED
    assert str(fake.last.url) == f"{ORIGIN}/v3/connections/{CONNECTION_ID}"


@pytest.mark.parametrize(
    ("status", "content"), [(204, b""), (200, b"{}"), (200, b'{"data": null}')]
)
async def test_delete_connection(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3, status: int, content: bytes
) -> None:
    """DELETE /v3/connections/{id}: a 204 or any 2xx body is success."""
    fake.reply(status, content=content)
    assert await connections.delete_connection(APP_TOKEN, CONNECTION_ID) is None
    assert (fake.last.method, str(fake.last.url)) == (
        "DELETE",
        f"{ORIGIN}/v3/connections/{CONNECTION_ID}",
    )


async def test_delete_user(fake: FakeSmartcar, connections: SmartcarConnectionsV3) -> None:
    """DELETE /v3/users/{userId} answers 204 No Content."""
    fake.reply(204, content=b"")
    await connections.delete_user(APP_TOKEN, USER_ID)
    assert (fake.last.method, str(fake.last.url)) == ("DELETE", f"{ORIGIN}/v3/users/{USER_ID}")


async def test_deleting_an_unknown_connection_is_typed(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3
) -> None:
    """A 404 errors[] body raises ResourceNotFound."""
    fake.reply(404, json_body=v3_error(404, "RESOURCE_NOT_FOUND", "PATH"))
    with pytest.raises(ResourceNotFound):
        await connections.delete_connection(APP_TOKEN, CONNECTION_ID)


async def test_a_connection_without_an_id_is_a_protocol_error(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3
) -> None:
    """A resource missing its id names it."""
    fake.reply(200, json_body={"data": [{"type": "connection", "attributes": {}}]})
    with pytest.raises(SmartcarProtocolError, match="'id'"):
        await connections.list_connections(APP_TOKEN)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"page_number": 0}, "page_number"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": True}, "page_size"),
        ({"mode": "test"}, "mode"),
        ({"user_id": "a/b"}, "user_id"),
        ({"vehicle_id": ""}, "vehicle_id"),
    ],
)
async def test_list_refuses_bad_arguments(
    connections: SmartcarConnectionsV3, kwargs: dict[str, Any], match: str
) -> None:
    """Bad paging, an unknown mode or a non-id filter is a ValueError naming it."""
    with pytest.raises(ValueError, match=match):
        await connections.list_connections(APP_TOKEN, **kwargs)


@pytest.mark.parametrize("count", ["²", "1" * 5000, "-1", "1.5"])
async def test_odd_page_counts_read_as_unknown(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3, count: str
) -> None:
    """Counts that are no plain non-negative integer are unknown, never a crash."""
    fake.reply(200, json_body={"data": [], "meta": {"pageNumber": count, "totalCount": count}})
    listed = await connections.list_connections(APP_TOKEN)
    assert (listed.page.number, listed.page.total_count) == (None, None)


@pytest.mark.parametrize("year", ["²", "1" * 5000, 10**400])
async def test_an_unreadable_year_is_a_protocol_error(
    fake: FakeSmartcar, connections: SmartcarConnectionsV3, year: object
) -> None:
    """A year that is no plain integer is a protocol error naming it."""
    item = {"id": CONNECTION_ID, "attributes": {"vehicle": {"year": year}}}
    fake.reply(200, json_body={"data": item})
    with pytest.raises(SmartcarProtocolError, match="year"):
        await connections.connection(APP_TOKEN, CONNECTION_ID)
