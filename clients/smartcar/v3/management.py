"""SmartcarManagementV3: webhooks and vehicle subscriptions (Management API V3).

``{SMARTCAR_MANAGEMENT_API_V3_ORIGIN}/v3/…``, authenticated by the same application token
as the vehicle API (smartcar-v3-notes §6.1). Webhooks are made in the dashboard and only
read here. Subscriptions use the API reference's flat resource (``/v3/subscriptions``),
not the launch blog's ``/webhooks/{id}/subscriptions``. Creating one answers 202 ("in
progress") or 409 when the vehicle is already subscribed, which is reported, not raised;
the request body's field names (``webhookId``, ``userId``, ``vehicleId`` in
``data.attributes``) come from third-party sources that agree. Deleting one is not on a
Smartcar page (third parties expect 204); any 2xx is taken as success.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

from clients.smartcar._clock import Clock, system_clock
from clients.smartcar._ids import checked_id
from clients.smartcar.errors import SmartcarAPIError, SmartcarProtocolError
from clients.smartcar.secret import Secret
from clients.smartcar.v3 import _resources
from clients.smartcar.v3._calls import Sender, every_item, paging
from clients.smartcar.v3.connections import VehicleMode
from clients.smartcar.v3.endpoints import V3Endpoints
from clients.smartcar.v3.models import (
    Paged,
    SubscribeOutcome,
    Subscription,
    SubscriptionRequest,
    Webhook,
)

__all__ = ["SmartcarManagementV3"]

MAX_PAGE_SIZE = 100
"""The largest ``page[size]`` the management API documents."""


class SmartcarManagementV3:
    """Management API V3 on an injected ``httpx.AsyncClient``."""

    def __init__(
        self,
        *,
        http: httpx.AsyncClient,
        endpoints: V3Endpoints,
        clock: Clock = system_clock,
        timeout_s: float | None = None,
    ) -> None:
        self._sender = Sender(http=http, clock=clock, timeout_s=timeout_s)
        self._origin = endpoints.management_origin

    async def list_webhooks(
        self,
        token: Secret,
        *,
        name: str | None = None,
        callback_uri: str | None = None,
        is_enabled: bool | None = None,
        auto_subscribe: bool | None = None,
        page_number: int | None = None,
        page_size: int | None = None,
        timeout_s: float | None = None,
    ) -> Paged[Webhook]:
        """Return one page of the application's webhooks (``GET /v3/webhooks``)."""
        params = paging(page_number, page_size, max_size=MAX_PAGE_SIZE)
        for key, text in (("filter[name]", name), ("filter[callbackUri]", callback_uri)):
            if text is not None:
                params[key] = _text(key, text)
        for key, flag in (
            ("filter[isEnabled]", is_enabled),
            ("filter[autoSubscribe]", auto_subscribe),
        ):
            if flag is not None:
                params[key] = "true" if flag else "false"
        answer = await self._get(token, "/v3/webhooks", "/v3/webhooks", params, timeout_s)
        return _resources.webhooks(answer)

    async def webhook(
        self, token: Secret, webhook_id: str, *, timeout_s: float | None = None
    ) -> Webhook:
        """Return one webhook (``GET /v3/webhooks/{id}``)."""
        path = f"/v3/webhooks/{checked_id('webhook_id', webhook_id)}"
        return _resources.webhook(
            await self._get(token, path, "/v3/webhooks/{id}", None, timeout_s)
        )

    async def create_subscription(
        self,
        token: Secret,
        *,
        webhook_id: str,
        user_id: str,
        vehicle_id: str,
        timeout_s: float | None = None,
    ) -> SubscriptionRequest:
        """Subscribe a vehicle to a webhook (``POST /v3/subscriptions``).

        Creation is asynchronous at Smartcar: ACCEPTED means it is in progress;
        ALREADY_SUBSCRIBED is Smartcar's 409. Other failures raise.
        """
        attributes = {
            "webhookId": checked_id("webhook_id", webhook_id),
            "userId": checked_id("user_id", user_id),
            "vehicleId": checked_id("vehicle_id", vehicle_id),
        }
        try:
            answer = await self._sender.send(
                token,
                "POST",
                f"{self._origin}/v3/subscriptions",
                route="/v3/subscriptions",
                json_body={"data": {"attributes": attributes}},
                empty_body_ok=True,
                timeout_s=timeout_s,
            )
        except (SmartcarAPIError, SmartcarProtocolError) as exc:
            if exc.status != 409:  # a 409 means "already subscribed", whatever its body
                raise
            description = exc.description if isinstance(exc, SmartcarAPIError) else None
            return SubscriptionRequest(
                outcome=SubscribeOutcome.ALREADY_SUBSCRIBED, message=description
            )
        return SubscriptionRequest(
            outcome=SubscribeOutcome.ACCEPTED, message=_resources.message(answer.body)
        )

    async def list_subscriptions(
        self,
        token: Secret,
        *,
        webhook_id: str | None = None,
        user_id: str | None = None,
        vehicle_id: str | None = None,
        mode: VehicleMode | None = None,
        page_number: int | None = None,
        page_size: int | None = None,
        timeout_s: float | None = None,
    ) -> Paged[Subscription]:
        """Return one page of subscriptions (``GET /v3/subscriptions``), filtered."""
        params = paging(page_number, page_size, max_size=MAX_PAGE_SIZE)
        ids = (
            ("filter[webhookId]", "webhook_id", webhook_id),
            ("filter[userId]", "user_id", user_id),
            ("filter[vehicleId]", "vehicle_id", vehicle_id),
        )
        for key, name, value in ids:
            if value is not None:
                params[key] = checked_id(name, value)
        if mode is not None:
            if mode not in ("live", "simulated"):
                raise ValueError("mode must be 'live' or 'simulated'")
            params["filter[vehicle.mode]"] = mode
        answer = await self._get(token, "/v3/subscriptions", "/v3/subscriptions", params, timeout_s)
        return _resources.subscriptions(answer)

    async def all_subscriptions(
        self,
        token: Secret,
        *,
        webhook_id: str | None = None,
        user_id: str | None = None,
        vehicle_id: str | None = None,
        page_size: int | None = None,
        timeout_s: float | None = None,
    ) -> AsyncIterator[Subscription]:
        """Yield every subscription matching the filters, page after page (see
        ``every_item``); ``timeout_s`` bounds each request."""
        async for subscription in every_item(
            lambda number: self.list_subscriptions(
                token,
                webhook_id=webhook_id,
                user_id=user_id,
                vehicle_id=vehicle_id,
                page_number=number,
                page_size=page_size,
                timeout_s=timeout_s,
            )
        ):
            yield subscription

    async def subscription(
        self, token: Secret, subscription_id: str, *, timeout_s: float | None = None
    ) -> Subscription:
        """Return one subscription (``GET /v3/subscriptions/{id}``)."""
        path = f"/v3/subscriptions/{checked_id('subscription_id', subscription_id)}"
        body = await self._get(token, path, "/v3/subscriptions/{id}", None, timeout_s)
        return _resources.subscription(body)

    async def delete_subscription(
        self, token: Secret, subscription_id: str, *, timeout_s: float | None = None
    ) -> None:
        """Unsubscribe (``DELETE /v3/subscriptions/{id}``); any 2xx is success."""
        path = f"/v3/subscriptions/{checked_id('subscription_id', subscription_id)}"
        await self._sender.send(
            token,
            "DELETE",
            f"{self._origin}{path}",
            route="/v3/subscriptions/{id}",
            empty_body_ok=True,
            timeout_s=timeout_s,
        )

    async def _get(
        self,
        token: Secret,
        path: str,
        route: str,
        params: dict[str, str | int] | None,
        timeout_s: float | None,
    ) -> object:
        answer = await self._sender.send(
            token,
            "GET",
            f"{self._origin}{path}",
            route=route,
            params=params or None,
            timeout_s=timeout_s,
        )
        return answer.body


def _text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value
