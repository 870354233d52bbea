"""The one way V3 clients send a request: bearer token, optional ``sc-user-id``, V3 errors.

The application token is an argument of every call and never kept; the user id goes
into the ``sc-user-id`` header only after it is checked to be a plain id (no header or
path injection). Error answers are read by ``v3_error`` (V3 ``errors[]`` or v2 flat).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TypeVar

import httpx

from clients.smartcar._clock import Clock
from clients.smartcar._ids import checked_id
from clients.smartcar._transport import Answer, BearerAuth, Call, Transport
from clients.smartcar.secret import Secret
from clients.smartcar.v3._errors import v3_error
from clients.smartcar.v3.models import Paged

__all__ = ["MAX_PAGES", "USER_HEADER", "Sender", "every_item", "paging"]

USER_HEADER = "sc-user-id"

Params = Mapping[str, str | int]
T = TypeVar("T")

MAX_PAGES = 10_000
"""A walk over a collection stops after this many pages, whatever the answers say."""


class Sender:
    """Sends V3 requests on an injected AsyncClient (the caller owns its lifecycle)."""

    def __init__(self, *, http: httpx.AsyncClient, clock: Clock, timeout_s: float | None) -> None:
        self._transport = Transport(http=http, clock=clock, timeout_s=timeout_s)

    async def send(
        self,
        token: Secret,
        method: str,
        url: str,
        *,
        route: str,
        user_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Params | None = None,
        json_body: object = None,
        empty_body_ok: bool = False,
        timeout_s: float | None = None,
    ) -> Answer:
        """Send one request with ``token`` as Bearer; return the 2xx answer or raise."""
        all_headers = dict(headers or {})
        if user_id is not None:
            all_headers[USER_HEADER] = checked_id("user_id", user_id)
        call = Call(
            method=method,
            url=url,
            route=route,
            auth=BearerAuth(token),
            secrets=(token,),
            headers=all_headers,
            params=params,
            json_body=json_body,
            empty_body_ok=empty_body_ok,
            timeout_s=timeout_s,
        )
        return await self._transport.send(call, read_error=v3_error)


def paging(
    page_number: int | None, page_size: int | None, *, max_size: int | None
) -> dict[str, str | int]:
    """Return the JSON:API paging query (``page[number]``, ``page[size]``), checked."""
    params: dict[str, str | int] = {}
    if page_number is not None:
        if not _positive(page_number):
            raise ValueError("page_number must be a positive integer")
        params["page[number]"] = page_number
    if page_size is not None:
        if not _positive(page_size) or (max_size is not None and page_size > max_size):
            limit = f" up to {max_size}" if max_size is not None else ""
            raise ValueError(f"page_size must be a positive integer{limit}")
        params["page[size]"] = page_size
    return params


def _positive(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


async def every_item(page: Callable[[int], Awaitable[Paged[T]]]) -> AsyncIterator[T]:
    """Yield every item of a collection, asking ``page(number)`` for page 1, 2, … until a
    page says it is the last.

    Pages are asked for by number (never by following ``links.next``, which could send the
    token elsewhere); an empty page ends the walk, and so does MAX_PAGES.
    """
    for number in range(1, MAX_PAGES + 1):
        answer = await page(number)
        for item in answer.items:
            yield item
        if not answer.page.has_next or not answer.items:
            return
