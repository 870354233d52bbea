"""The Management API (V3): webhooks read, subscriptions made, and events delivered by them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from clients.smartcar.v3 import SmartcarManagementV3, V3Endpoints
from gateway.core.model import SmartcarAccess
from gateway.core.secret import Secret
from gateway.edge.smartcar.v3_adapter import SmartcarSubscriptionsV3
from tests.integration.simulator.flows import connect, stats
from tests.integration.simulator.test_webhooks import SCALE, Callback, serving, sign
from tests.integration.simulator.v3_flows import (
    CHARGE_SCOPES,
    V3Car,
    connect_v3,
    error_of,
    v3_client,
)


@dataclass
class Rig:
    """A simulator, a client, a verified webhook subscribed to no vehicle, and one car."""

    http: httpx.AsyncClient
    callback: Callback
    hook: dict[str, Any]
    car: V3Car

    @property
    def auth(self) -> dict[str, str]:
        """Return the application token header (the Management API takes no user)."""
        return {"Authorization": f"Bearer {self.car.app_token}"}

    async def subscribe(self, car: V3Car | None = None) -> httpx.Response:
        """Subscribe `car` (default: the rig's) to the webhook."""
        car = car or self.car
        attributes = {
            "webhookId": self.hook["webhookId"],
            "userId": car.user_id,
            "vehicleId": car.vehicle_id,
        }
        return await self.http.post(
            "/v3/subscriptions", json={"data": {"attributes": attributes}}, headers=self.auth
        )

    async def subscriptions(self, **params: str) -> list[dict[str, Any]]:
        """List the subscriptions (one page)."""
        response = await self.http.get("/v3/subscriptions", params=params, headers=self.auth)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


@asynccontextmanager
async def rig_with(**config: Any) -> AsyncIterator[Rig]:
    """Serve a simulator, register a verified webhook for no vehicle, connect one car (with
    every scope the gateway asks for, charging's included: webhook events carry every
    signal)."""
    callback = Callback()
    settings = {"webhook_retry_scale": SCALE, "webhook_timeout_s": 1.0, **config}
    async with serving(callback) as url, v3_client(**settings) as (_, http):
        answer = await http.post("/sim/webhooks", json={"callback_url": url, "vehicle_ids": []})
        assert answer.status_code == 201, answer.text
        hook = answer.json()
        assert hook["verified"] is True
        car = await connect_v3(http, scope=CHARGE_SCOPES)
        yield Rig(http=http, callback=callback, hook=hook, car=car)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    """A simulator with a webhook nobody is subscribed to yet, and a connected car."""
    async with rig_with() as running:
        yield running


async def test_webhooks_are_listed_and_fetched_as_json_api(rig: Rig) -> None:
    """`GET /v3/webhooks` pages the registered webhooks; `GET /v3/webhooks/{id}` wraps one
    in `data`, with its callback and every signal as triggers and data."""
    listed = await rig.http.get("/v3/webhooks", headers=rig.auth)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["data"]
    assert item["id"] == rig.hook["webhookId"]
    attributes = item["attributes"]
    assert attributes["callbackUri"] == rig.hook["callback_url"]
    assert (attributes["isEnabled"], attributes["autoSubscribe"]) == (True, False)
    assert {"group": "Closure", "name": "IsLocked", "code": "closure-islocked"} in attributes[
        "triggers"
    ]
    fetched = await rig.http.get(f"/v3/webhooks/{item['id']}", headers=rig.auth)
    assert fetched.json() == {"data": item}
    none = await rig.http.get(
        "/v3/webhooks", params={"filter[autoSubscribe]": "true"}, headers=rig.auth
    )
    assert none.json()["data"] == []
    missing = await rig.http.get("/v3/webhooks/nope", headers=rig.auth)
    assert missing.status_code == 404


async def test_a_subscription_starts_with_a_first_delivery_and_carries_commands(rig: Rig) -> None:
    """Subscribing answers 202 "in progress", sends FIRST_DELIVERY (signed, `data.user.id`
    the owner), and the car's lock then reaches the webhook as VEHICLE_STATE."""
    answer = await rig.subscribe()
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"meta": {"message": "subscription creation in progress"}}
    [first] = await rig.callback.wait_for(1)
    assert first.headers["SC-Signature"] == sign(first.body)
    payload = first.payload
    assert payload["eventType"] == "VEHICLE_STATE"
    assert payload["triggers"] == [{"type": "FIRST_DELIVERY"}]
    assert payload["data"]["user"]["id"] == rig.car.user_id
    assert payload["data"]["vehicle"]["id"] == rig.car.vehicle_id
    await rig.http.post(f"{rig.car.base}/commands/security/unlock", headers=rig.car.headers)
    [_, unlocked] = await rig.callback.wait_for(2)
    trigger = unlocked.payload["triggers"][0]
    assert trigger["type"] == "SIGNAL_UPDATED"
    assert trigger["signal"]["code"] == "closure-islocked"


async def test_subscriptions_are_listed_fetched_and_deleted(rig: Rig) -> None:
    """A subscription is listed (filters), fetched by id with its relationships, and
    deleted (204): the car's events then stop reaching the webhook."""
    await rig.subscribe()
    [item] = await rig.subscriptions(**{"filter[vehicleId]": rig.car.vehicle_id})
    assert await rig.subscriptions(**{"filter[userId]": "someone-else"}) == []
    relationships = item["relationships"]
    assert relationships["webhook"]["data"]["id"] == rig.hook["webhookId"]
    assert relationships["user"]["data"]["id"] == rig.car.user_id
    fetched = await rig.http.get(f"/v3/subscriptions/{item['id']}", headers=rig.auth)
    assert fetched.json() == {"data": item}
    deleted = await rig.http.delete(f"/v3/subscriptions/{item['id']}", headers=rig.auth)
    assert deleted.status_code == 204
    assert await rig.subscriptions() == []
    event = {"vehicle_id": rig.car.vehicle_id, "type": "VEHICLE_STATE"}
    refused = await rig.http.post(f"/sim/webhooks/{rig.hook['webhookId']}/events", json=event)
    assert refused.status_code == 409


async def test_subscribing_twice_is_409_and_unknown_things_are_404(rig: Rig) -> None:
    """A second subscription of the same car is 409; an unknown webhook, or a user without
    a connection to the vehicle, is 404; a body without the ids is 400."""
    assert (await rig.subscribe()).status_code == 202
    twice = await rig.subscribe()
    assert (twice.status_code, error_of(twice)["code"]) == (409, "ALREADY_SUBSCRIBED")
    stranger = V3Car(user_id="someone-else", vehicle_id=rig.car.vehicle_id, code="", app_token="")
    assert (await rig.subscribe(stranger)).status_code == 404
    attributes = {"webhookId": "nope", "userId": rig.car.user_id, "vehicleId": rig.car.vehicle_id}
    unknown = await rig.http.post(
        "/v3/subscriptions", json={"data": {"attributes": attributes}}, headers=rig.auth
    )
    assert unknown.status_code == 404
    bad = await rig.http.post("/v3/subscriptions", json={"data": {}}, headers=rig.auth)
    assert error_of(bad)["code"] == "INVALID_INPUT_FORMAT"


async def test_a_revoked_connection_ends_its_subscription(rig: Rig) -> None:
    """When the owner revokes the car, its subscription no longer holds, even after the
    owner connects it again."""
    await rig.subscribe()
    await rig.http.post(f"/sim/vehicles/{rig.car.vehicle_id}/revoke", json={})
    assert await rig.subscriptions() == []
    vehicle = (await rig.http.get(f"/sim/vehicles/{rig.car.vehicle_id}")).json()
    again = await connect_v3(rig.http, single_select_vin=vehicle["vin"])
    assert again.user_id == rig.car.user_id
    assert await rig.subscriptions() == []


async def test_the_subscription_option_fills_signals_once_subscribed() -> None:
    """With `v3_signals_need_subscription`, the car's signals appear once it is subscribed."""
    async with rig_with(v3_signals_need_subscription=True) as rig:
        url = f"{rig.car.base}/signals"
        empty = (await rig.http.get(url, headers=rig.car.headers)).json()
        assert empty["meta"]["totalCount"] == 0
        await rig.subscribe()
        filled = (await rig.http.get(url, headers=rig.car.headers)).json()
        assert filled["meta"]["totalCount"] > 0


async def test_the_management_api_takes_application_tokens_only(rig: Rig) -> None:
    """No token is 401, a v2 access token 403; requests count under `v3/webhooks` and
    `v3/subscriptions`."""
    assert (await rig.http.get("/v3/webhooks")).status_code == 401
    session = await connect(rig.http)
    v2 = await rig.http.get("/v3/subscriptions", headers=session.headers)
    assert (v2.status_code, error_of(v2)["code"]) == (403, "ACCESS_DENIED")
    counters = (await stats(rig.http))["requests"]["by_endpoint"]
    assert (counters["v3/webhooks"], counters["v3/subscriptions"]) == (1, 1)


async def test_a_vehicle_error_reaches_a_subscription(rig: Rig) -> None:
    """A VEHICLE_ERROR of a subscribed car goes to the webhook, signed, naming the user."""
    await rig.subscribe()
    await rig.callback.wait_for(1)
    event = {
        "vehicle_id": rig.car.vehicle_id,
        "type": "VEHICLE_ERROR",
        "error": {"type": "VEHICLE_STATE", "code": "ASLEEP"},
    }
    answer = await rig.http.post(f"/sim/webhooks/{rig.hook['webhookId']}/events", json=event)
    assert answer.status_code == 202, answer.text
    [_, error] = await rig.callback.wait_for(2)
    assert error.headers["SC-Signature"] == sign(error.body)
    payload = error.payload
    assert payload["eventType"] == "VEHICLE_ERROR"
    assert payload["data"]["user"]["id"] == rig.car.user_id
    assert payload["data"]["errors"][0]["code"] == "ASLEEP"


async def test_the_subscription_option_is_a_runtime_setting(rig: Rig) -> None:
    """`v3_signals_need_subscription` shows in and updates through `/sim/config`."""
    config = (await rig.http.get("/sim/config")).json()
    assert config["v3_signals_need_subscription"] is False
    assert config["app_token_ttl_s"] == 3600
    updated = await rig.http.post("/sim/config", json={"v3_signals_need_subscription": True})
    assert updated.json()["v3_signals_need_subscription"] is True
    empty = (await rig.http.get(f"{rig.car.base}/signals", headers=rig.car.headers)).json()
    assert empty["data"] == []
    refused = await rig.http.post("/sim/config", json={"v3_signals_need_subscription": "yes"})
    assert refused.status_code == 400


async def test_the_gateways_subscriptions_adapter_subscribes_a_car_once(rig: Rig) -> None:
    """`SmartcarSubscriptionsV3` subscribes the car to the configured webhook; doing it
    again (Smartcar's 409) is success too; the simulator then lists one subscription."""
    origin = str(rig.http.base_url).rstrip("/")
    endpoints = V3Endpoints(vehicle_origin=origin, iam_origin=origin, management_origin=origin)
    adapter = SmartcarSubscriptionsV3(
        management=SmartcarManagementV3(http=rig.http, endpoints=endpoints),
        webhook_id=rig.hook["webhookId"],
    )
    access = SmartcarAccess.v3(Secret(rig.car.app_token), user_id=rig.car.user_id)
    await adapter.subscribe(access, rig.car.vehicle_id)
    await adapter.subscribe(access, rig.car.vehicle_id)
    listed = await rig.subscriptions(**{"filter[vehicleId]": rig.car.vehicle_id})
    assert len(listed) == 1


async def test_the_gateways_subscriptions_adapter_unsubscribes_a_car(rig: Rig) -> None:
    """`SmartcarSubscriptionsV3.unsubscribe` deletes the car's subscription to the webhook
    and leaves other cars' alone; unsubscribing again (nothing left) is success."""
    origin = str(rig.http.base_url).rstrip("/")
    endpoints = V3Endpoints(vehicle_origin=origin, iam_origin=origin, management_origin=origin)
    adapter = SmartcarSubscriptionsV3(
        management=SmartcarManagementV3(http=rig.http, endpoints=endpoints),
        webhook_id=rig.hook["webhookId"],
    )
    other = await connect_v3(rig.http)
    for car in (rig.car, other):
        assert (await rig.subscribe(car)).status_code == 202
    access = SmartcarAccess.v3(Secret(rig.car.app_token), user_id=rig.car.user_id)
    await adapter.unsubscribe(access, rig.car.vehicle_id)
    await adapter.unsubscribe(access, rig.car.vehicle_id)
    remaining = [s["relationships"]["vehicle"]["data"]["id"] for s in await rig.subscriptions()]
    assert remaining == [other.vehicle_id]
