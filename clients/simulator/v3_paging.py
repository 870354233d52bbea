"""Filters and pages of API V3 collections (connections, webhooks, subscriptions).

Query parameters are JSON:API's: `filter[<name>]=<value>` and `page[number]` (from 1) /
`page[size]` (from 1 up to the endpoint's maximum). A filter the endpoint does not know,
an empty filter, or a page number or size that is not an integer in range is 400
VALIDATION:INVALID_INPUT_FORMAT naming the parameter.

A page answers `{"data": [...], "meta": {"pageNumber", "pageSize", "totalCount"},
"links": {"self", "first", "last", "next", "prev"}}`; `next` and `prev` are null at the
ends, and the links repeat the filters (URL-encoded, as live responses show them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from clients.simulator.v3_errors import INVALID_INPUT_FORMAT, V3Error

VEHICLE_MODES = ("live", "simulated")
"""The modes `filter[vehicle.mode]` takes (default `live`)."""


@dataclass(frozen=True, kw_only=True)
class Page:
    """Which page of a collection was asked for."""

    number: int
    size: int


def filters_of(query: Mapping[str, str], allowed: Sequence[str]) -> dict[str, str]:
    """Return the `filter[…]` parameters by name, or raise 400 for one not `allowed`."""
    found: dict[str, str] = {}
    for key, value in query.items():
        if not key.startswith("filter["):
            continue
        name = key[len("filter[") : -1] if key.endswith("]") else ""
        if name not in allowed:
            raise V3Error(INVALID_INPUT_FORMAT, detail=f"Unknown filter: {key}.")
        if not value:
            raise V3Error(INVALID_INPUT_FORMAT, detail=f"{key} must not be empty.")
        found[name] = value
    return found


def vehicle_mode(filters: Mapping[str, str]) -> str:
    """Return the `filter[vehicle.mode]` asked for (default `live`), or raise 400."""
    mode = filters.get("vehicle.mode", "live")
    if mode not in VEHICLE_MODES:
        raise V3Error(
            INVALID_INPUT_FORMAT, detail="filter[vehicle.mode] must be live or simulated."
        )
    return mode


def page_of(query: Mapping[str, str], *, default_size: int, max_size: int) -> Page:
    """Return the page asked for, or raise 400 naming the bad parameter."""
    number = _positive(query, "page[number]", default=1, high=None)
    size = _positive(query, "page[size]", default=default_size, high=max_size)
    return Page(number=number, size=size)


def _positive(query: Mapping[str, str], key: str, *, default: int, high: int | None) -> int:
    """Return an integer parameter from 1 (up to `high`), or its default when absent."""
    raw = query.get(key)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1 or (high is not None and value > high):
        limit = "" if high is None else f" up to {high}"
        raise V3Error(INVALID_INPUT_FORMAT, detail=f"{key} must be an integer from 1{limit}.")
    return value


def collection(
    items: Sequence[dict[str, Any]],
    *,
    page: Page,
    path: str,
    filters: Mapping[str, str],
) -> dict[str, Any]:
    """Return one page of `items` (already filtered and ordered) with its meta and links."""
    total = len(items)
    last = max(1, -(-total // page.size))
    start = (page.number - 1) * page.size

    def link(number: int) -> str:
        params = {f"filter[{name}]": value for name, value in filters.items()}
        params.update({"page[number]": str(number), "page[size]": str(page.size)})
        return f"{path}?{urlencode(params)}"

    return {
        "data": list(items[start : start + page.size]),
        "meta": {"pageNumber": page.number, "pageSize": page.size, "totalCount": total},
        "links": {
            "self": link(page.number),
            "first": link(1),
            "last": link(last),
            "next": link(page.number + 1) if page.number < last else None,
            "prev": link(page.number - 1) if 1 < page.number <= last + 1 else None,
        },
    }
