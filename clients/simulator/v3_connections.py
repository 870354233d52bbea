"""Smartcar's Connections API (V3): list, get and delete connections, and delete a user.

- `GET /v3/connections` lists the application's connections, newest first ("sorted by
  connection date"), filtered by `filter[userId]`, `filter[vehicleId]` and
  `filter[vehicle.mode]` (`live` or `simulated`; default `live`, which every simulated
  vehicle is), and by `sc-user-id` when sent ("The header is also accepted on the
  /connections endpoint to filter results by user"); pages of `page[size]` (default 10,
  at most 100; see `v3_paging`). Its `meta` adds `orderBy: createdAt`,
  `orderDirection: DESC`;
- `GET /v3/connections/{connectionId}` -> `{"data": <connection>}` (the id is the
  connection's, not the vehicle's: the spec, against the launch post);
- `DELETE /v3/connections/{connectionId}` -> 204: the vehicle is disconnected from that
  user (its v2 tokens stop reaching it, its subscriptions end);
- `DELETE /v3/users/{userId}` -> 204: "All connections and other data is purged" (the
  user's connections, ownerships and, with them, subscriptions); a user without any is 404.

Application tokens only (see `v3_admission`); none of these is billed (live users: "a
/connections line is not billed"); each takes an app-bucket token. Stats count them under
`v3/connections` and `v3/users`. A fault naming the path `v3/connections` (and only such a
fault: see `faults`) hits listing and deleting connections, so a failed deletion can be
tested.
"""

from __future__ import annotations

from aiohttp import web

from clients.simulator import admission, v3_admission, v3_paging, v3_payloads
from clients.simulator.accounts import Connection
from clients.simulator.delivery import WORLD, deliver, json_response
from clients.simulator.v3_errors import NOT_FOUND, V3Error
from clients.simulator.world import World

DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
_FILTERS = ("userId", "vehicleId", "vehicle.mode")


def add_routes(router: web.UrlDispatcher) -> None:
    """Register the Connections API routes."""
    router.add_get(r"/v3/connections{slash:/?}", list_connections)
    router.add_get(r"/v3/connections/{connection_id}", get_connection)
    router.add_delete(r"/v3/connections/{connection_id}", delete_connection)
    router.add_delete(r"/v3/users/{user_id}", delete_user)


async def list_connections(request: web.Request) -> web.StreamResponse:
    """List the connections matching the filters, one page."""
    world = _admitted(request, "v3/connections")
    fault = admission.take_fault(world, None, "v3/connections", any_path=False)
    filters = v3_paging.filters_of(request.query, _FILTERS)
    page = v3_paging.page_of(request.query, default_size=DEFAULT_PAGE_SIZE, max_size=MAX_PAGE_SIZE)
    mode = v3_paging.vehicle_mode(filters)
    users = {filters.get("userId"), v3_admission.named_user(request)} - {None}
    vehicle_id = filters.get("vehicleId")
    chosen = [
        connection
        for connection in world.accounts.connections.values()
        if all(connection.user_id == user for user in users)
        and vehicle_id in (None, connection.vehicle_id)
        and mode == v3_payloads.MODE
    ]
    chosen.sort(key=lambda c: (c.connected_at_s, c.serial), reverse=True)
    items = [_resource(world, connection) for connection in chosen]
    body = v3_paging.collection(items, page=page, path="/connections", filters=filters)
    body["meta"].update(orderBy="createdAt", orderDirection="DESC")
    return await deliver(world, request, json_response(body), fault)


async def get_connection(request: web.Request) -> web.StreamResponse:
    """Return one connection."""
    world = _admitted(request, "v3/connections")
    connection = _connection(world, request.match_info["connection_id"])
    return json_response({"data": _resource(world, connection)})


async def delete_connection(request: web.Request) -> web.StreamResponse:
    """Disconnect the vehicle of one connection from its user."""
    world = _admitted(request, "v3/connections")
    fault = admission.take_fault(world, None, "v3/connections", any_path=False)
    connection = _connection(world, request.match_info["connection_id"])
    world.accounts.delete_connections(vehicle_id=connection.vehicle_id, user_id=connection.user_id)
    return await deliver(world, request, web.Response(status=204), fault)


async def delete_user(request: web.Request) -> web.StreamResponse:
    """Purge a user: every connection and ownership of theirs."""
    world = _admitted(request, "v3/users")
    user_id = request.match_info["user_id"]
    accounts = world.accounts
    if not accounts.owned_by(user_id) and not any(
        c.user_id == user_id for c in accounts.connections.values()
    ):
        raise V3Error(NOT_FOUND, detail="There is no user with this id.")
    accounts.delete_user(user_id)
    return web.Response(status=204)


def _admitted(request: web.Request, endpoint: str) -> World:
    """Count the request and admit its application token (with an app-bucket token)."""
    world = request.app[WORLD]
    world.stats.count_request(endpoint, method=request.method, vehicle_id=None)
    v3_admission.application(world, request, bucket=True)
    return world


def _connection(world: World, connection_id: str) -> Connection:
    """Return the connection with this id, or raise 404."""
    seed = world.config.seed
    for connection in world.accounts.connections.values():
        if v3_payloads.connection_id(seed, connection) == connection_id:
            return connection
    raise V3Error(NOT_FOUND, detail="There is no connection with this id.")


def _resource(world: World, connection: Connection) -> dict[str, object]:
    """Return the resource of one connection."""
    vehicle = world.garage.get(connection.vehicle_id)
    assert vehicle is not None, "connections only ever name vehicles of the garage"
    return v3_payloads.connection_resource(world.config.seed, connection, vehicle)
