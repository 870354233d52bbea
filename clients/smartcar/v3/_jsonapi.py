"""Reading JSON:API documents the way API V3 sends them, with its documented variants.

- A single resource comes wrapped in ``data`` (the current pages) or bare (the Node SDK's
  tests, the single-signal page's example): both are read.
- A resource's fields sit in ``attributes``; a webhook's signal items carry them at the
  top level; both are read.
- A collection's ``meta`` numbers its page ``page`` (the signals page) or ``pageNumber``
  (live answers), with ``pageSize`` and ``totalCount``; its ``links`` name the previous
  page ``previous`` or ``prev``, the next ``next``. Paging is advisory: a part we cannot
  read is unknown (None) rather than a failure of the data it came with.
"""

from __future__ import annotations

from collections.abc import Mapping

from clients.smartcar._json import JsonObject, is_digits
from clients.smartcar.errors import SmartcarProtocolError
from clients.smartcar.v3.models import Page

__all__ = ["attributes", "collection", "page_of", "relationship_id", "single"]


def single(body: object, what: str) -> JsonObject:
    """Return the resource of a single-resource document, wrapped in ``data`` or not."""
    document = JsonObject(body, what)
    data = document.get("data")
    if isinstance(data, Mapping):
        return JsonObject(data, f"{what}.data")
    return document


def collection(body: object, what: str) -> tuple[tuple[JsonObject, ...], JsonObject | None]:
    """Return a collection's resources and its top-level document (None for a bare list)."""
    if isinstance(body, list):
        return tuple(JsonObject(item, f"{what}[]") for item in body), None
    document = JsonObject(body, what)
    data = document.get("data")
    if not isinstance(data, list):
        raise SmartcarProtocolError(f"{what}: 'data' must be a list of resources")
    return tuple(JsonObject(item, f"{what}.data[]") for item in data), document


def attributes(resource: JsonObject) -> JsonObject:
    """Return a resource's ``attributes``, or the resource itself when it has none."""
    return resource.optional_object("attributes") or resource


def relationship_id(resource: JsonObject, name: str) -> str | None:
    """Return ``relationships.<name>.data.id``, or None when it is not there."""
    relationships = resource.get("relationships")
    if not isinstance(relationships, Mapping):
        return None
    related = relationships.get(name)
    data = related.get("data") if isinstance(related, Mapping) else None
    found = data.get("id") if isinstance(data, Mapping) else None
    return found if isinstance(found, str) and found else None


def page_of(document: JsonObject | None, *, items: int) -> Page:
    """Return the paging a collection document states (``items`` on this page)."""
    if document is None:
        return Page(number=None, size=None, total_count=None, has_next=False)
    meta = document.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    number = _count(meta.get("pageNumber"))
    if number is None:
        number = _count(meta.get("page"))
    size, total = _count(meta.get("pageSize")), _count(meta.get("totalCount"))
    links = document.get("links")
    if isinstance(links, Mapping) and "next" in links:
        has_next = isinstance(links["next"], str) and bool(links["next"])
    elif number is not None and size is not None and total is not None:
        has_next = number * size < total
    else:
        has_next = False
    return Page(number=number, size=size, total_count=total, has_next=has_next and items > 0)


def _count(raw: object) -> int | None:
    """Return a non-negative integer (digits in a string count), or None."""
    if isinstance(raw, str) and is_digits(raw):
        return int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 0:
        return None
    return raw
