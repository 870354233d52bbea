"""Management API V3: webhooks read, subscriptions created, listed, read and deleted."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import pytest

from clients.smartcar import AuthenticationError, ValidationError
from clients.smartcar.v3 import (
    SignalRef,
    SmartcarManagementV3,
    SubscribeOutcome,
    Subscription,
    SubscriptionRequest,
    VehicleDescription,
    Webhook,
)
from tests.unit.smartcar.fakes import USER_ID, VEHICLE_ID, FakeSmartcar
from tests.unit.smartcar.v3.fakes import APP_TOKEN, SUBSCRIPTION_ID, WEBHOOK_ID, v3_error

ORIGIN = "https://management.sc.test"

WEBHOOK = {
    "id": WEBHOOK_ID,
    "type": "webhook",
    "attributes": {
        "name": "AutoData",
        "callbackUri": "https://fleet.test/hooks",
        "isEnabled": True,
        "triggers": [{"group": "Charge", "name": "IsCharging", "code": "charge-ischarging"}],
        "data": [
            {"group": "Odometer", "name": "TraveledDistance", "code": "odometer-traveleddistance"}
        ],
        "errorCallbackUri": None,
        "autoSubscribe": False,
    },
    "links": {"self": f"/webhooks/{WEBHOOK_ID}"},
    "meta": {"createdAt": 1780222662654},
}

SUBSCRIPTION = {
    "type": "subscription",
    "id": SUBSCRIPTION_ID,
    "attributes": {
        "vehicle": {
            "make": "VOLKSWAGEN",
            "model": "ID.7",
            "year": 2025,
            "mode": "live",
            "powertrainType": None,
        }
    },
    "meta": {"createdAt": "2026-05-31T10:00:00Z", "updatedAt": "2026-05-31T10:05:00Z"},
    "relationships": {
        "webhook": {"data": {"type": "webhook", "id": WEBHOOK_ID}},
        "user": {"data": {"type": "user", "id": USER_ID}},
        "vehicle": {"data": {"type": "vehicle", "id": VEHICLE_ID}},
    },
    "links": {"self": f"/subscriptions/{SUBSCRIPTION_ID}"},
}


async def test_list_webhooks_with_filters(
    fake: FakeSmartcar, management: SmartcarManagementV3
) -> None:
    """GET /v3/webhooks with filter[name|callbackUri|isEnabled|autoSubscribe] and paging."""
    fake.reply(
        200, json_body={"data": [WEBHOOK], "meta": {"page": 1, "pageSize": 50, "totalCount": 1}}
    )
    listed = await management.list_webhooks(
        APP_TOKEN, name="AutoData", is_enabled=True, auto_subscribe=False, page_size=50
    )
    assert fake.last.url.copy_with(query=None) == f"{ORIGIN}/v3/webhooks"
    assert parse_qs(fake.last.url.query.decode()) == {
        "filter[name]": ["AutoData"],
        "filter[isEnabled]": ["true"],
        "filter[autoSubscribe]": ["false"],
        "page[size]": ["50"],
    }
    assert fake.last.headers["authorization"] == f"Bearer {APP_TOKEN.reveal()}"
    assert listed.items[0].name == "AutoData"
    assert not listed.page.has_next


async def test_get_webhook(fake: FakeSmartcar, management: SmartcarManagementV3) -> None:
    """GET /v3/webhooks/{id}: triggers and data signals, createdAt in ms."""
    fake.reply(200, json_body={"data": WEBHOOK})
    webhook = await management.webhook(APP_TOKEN, WEBHOOK_ID)
    assert str(fake.last.url) == f"{ORIGIN}/v3/webhooks/{WEBHOOK_ID}"
    assert webhook == Webhook(
        id=WEBHOOK_ID,
        name="AutoData",
        callback_uri="https://fleet.test/hooks",
        is_enabled=True,
        auto_subscribe=False,
        triggers=(SignalRef(code="charge-ischarging", name="IsCharging", group="Charge"),),
        signals=(
            SignalRef(code="odometer-traveleddistance", name="TraveledDistance", group="Odometer"),
        ),
        created_at=datetime(2026, 5, 31, 10, 17, 42, 654000, tzinfo=UTC),
    )


async def test_create_subscription_posts_the_three_ids(
    fake: FakeSmartcar, management: SmartcarManagementV3
) -> None:
    """POST /v3/subscriptions {data: {attributes: {webhookId, userId, vehicleId}}} → 202."""
    fake.reply(202, json_body={"meta": {"message": "subscription creation in progress"}})
    request = await management.create_subscription(
        APP_TOKEN, webhook_id=WEBHOOK_ID, user_id=USER_ID, vehicle_id=VEHICLE_ID
    )
    assert (fake.last.method, str(fake.last.url)) == ("POST", f"{ORIGIN}/v3/subscriptions")
    assert json.loads(fake.last.content) == {
        "data": {
            "attributes": {"webhookId": WEBHOOK_ID, "userId": USER_ID, "vehicleId": VEHICLE_ID}
        }
    }
    assert request == SubscriptionRequest(
        outcome=SubscribeOutcome.ACCEPTED, message="subscription creation in progress"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (v3_error(409, "CONFLICT", "ALREADY_SUBSCRIBED", detail="already"), "already"),
        (None, None),
        ({"errors": [{"title": "Conflict"}]}, None),
    ],
    ids=["errors-body", "empty", "untyped"],
)
async def test_409_means_already_subscribed(
    fake: FakeSmartcar, management: SmartcarManagementV3, body: Any, message: str | None
) -> None:
    """A 409, whatever its body, reports ALREADY_SUBSCRIBED instead of raising."""
    if body is None:
        fake.reply(409, content=b"")
    else:
        fake.reply(409, json_body=body)
    request = await management.create_subscription(
        APP_TOKEN, webhook_id=WEBHOOK_ID, user_id=USER_ID, vehicle_id=VEHICLE_ID
    )
    assert request == SubscriptionRequest(
        outcome=SubscribeOutcome.ALREADY_SUBSCRIBED, message=message
    )


async def test_202_without_a_body_is_accepted(
    fake: FakeSmartcar, management: SmartcarManagementV3
) -> None:
    """An empty 202 is accepted, without a message."""
    fake.reply(202, content=b"")
    request = await management.create_subscription(
        APP_TOKEN, webhook_id=WEBHOOK_ID, user_id=USER_ID, vehicle_id=VEHICLE_ID
    )
    assert request == SubscriptionRequest(outcome=SubscribeOutcome.ACCEPTED)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, v3_error(400, "VALIDATION", "BAD_REQUEST"), ValidationError),
        (401, v3_error(401, "AUTHENTICATION", "UNAUTHORIZED"), AuthenticationError),
    ],
)
async def test_other_subscription_failures_raise(
    fake: FakeSmartcar,
    management: SmartcarManagementV3,
    status: int,
    body: Any,
    expected: type[Exception],
) -> None:
    """Anything but 409 raises its typed error."""
    fake.reply(status, json_body=body)
    with pytest.raises(expected):
        await management.create_subscription(
            APP_TOKEN, webhook_id=WEBHOOK_ID, user_id=USER_ID, vehicle_id=VEHICLE_ID
        )


async def test_list_subscriptions_with_filters(
    fake: FakeSmartcar, management: SmartcarManagementV3
) -> None:
    """GET /v3/subscriptions with filter[webhookId|userId|vehicleId|vehicle.mode]."""
    fake.reply(
        200,
        json_body={
            "data": [SUBSCRIPTION],
            "meta": {"pageNumber": 1, "pageSize": 25, "totalCount": 1},
        },
    )
    listed = await management.list_subscriptions(
        APP_TOKEN,
        webhook_id=WEBHOOK_ID,
        user_id=USER_ID,
        vehicle_id=VEHICLE_ID,
        mode="live",
        page_number=1,
    )
    assert parse_qs(fake.last.url.query.decode()) == {
        "filter[webhookId]": [WEBHOOK_ID],
        "filter[userId]": [USER_ID],
        "filter[vehicleId]": [VEHICLE_ID],
        "filter[vehicle.mode]": ["live"],
        "page[number]": ["1"],
    }
    assert [s.id for s in listed.items] == [SUBSCRIPTION_ID]


async def test_get_subscription(fake: FakeSmartcar, management: SmartcarManagementV3) -> None:
    """GET /v3/subscriptions/{id}: ids from relationships, vehicle from attributes."""
    fake.reply(200, json_body={"data": SUBSCRIPTION})
    subscription = await management.subscription(APP_TOKEN, SUBSCRIPTION_ID)
    assert str(fake.last.url) == f"{ORIGIN}/v3/subscriptions/{SUBSCRIPTION_ID}"
    assert subscription == Subscription(
        id=SUBSCRIPTION_ID,
        webhook_id=WEBHOOK_ID,
        user_id=USER_ID,
        vehicle_id=VEHICLE_ID,
        vehicle=VehicleDescription(make="VOLKSWAGEN", model="ID.7", year=2025, mode="live"),
        created_at=datetime(2026, 5, 31, 10, tzinfo=UTC),
        updated_at=datetime(2026, 5, 31, 10, 5, tzinfo=UTC),
    )


async def test_delete_subscription(fake: FakeSmartcar, management: SmartcarManagementV3) -> None:
    """DELETE /v3/subscriptions/{id}: 204 is success."""
    fake.reply(204, content=b"")
    assert await management.delete_subscription(APP_TOKEN, SUBSCRIPTION_ID) is None
    assert (fake.last.method, str(fake.last.url)) == (
        "DELETE",
        f"{ORIGIN}/v3/subscriptions/{SUBSCRIPTION_ID}",
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"page_size": 101}, "up to 100"),
        ({"name": ""}, "filter\\[name\\]"),
        ({"page_number": -1}, "page_number"),
    ],
)
async def test_list_webhooks_refuses_bad_arguments(
    management: SmartcarManagementV3, kwargs: dict[str, Any], match: str
) -> None:
    """page[size] is 1-100 as documented; an empty filter is a ValueError."""
    with pytest.raises(ValueError, match=match):
        await management.list_webhooks(APP_TOKEN, **kwargs)


async def test_ids_must_be_plain(management: SmartcarManagementV3) -> None:
    """Ids that could steer the path are refused before any request."""
    with pytest.raises(ValueError, match="subscription_id"):
        await management.delete_subscription(APP_TOKEN, "../webhooks")
    with pytest.raises(ValueError, match="webhook_id"):
        await management.create_subscription(
            APP_TOKEN, webhook_id="a b", user_id=USER_ID, vehicle_id=VEHICLE_ID
        )
