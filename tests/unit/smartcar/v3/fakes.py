"""Constants and answers of the V3 unit tests (the fake Smartcar is v2's ``FakeSmartcar``)."""

from __future__ import annotations

from typing import Any

from clients.smartcar import Secret
from clients.smartcar.v3 import ApplicationCredentials, V3Endpoints

APP_TOKEN = Secret("app-9c1e7a52-3b4d-4e6f-8a0b-1c2d3e4f5a6b")
SECRET_OLD = Secret("cs-old-4f6a8c0e-2b4d-4f6a-8c0e-2b4d6f8a0c2e")
SECRET_NEW = Secret("cs-new-7b9d1f3a-5c7e-4a9b-8d1f-3a5c7e9b1d3f")
CLIENT_ID = "client_8f2a1c"
CREDENTIALS = ApplicationCredentials(client_id=CLIENT_ID, client_secrets=(SECRET_OLD, SECRET_NEW))
ENDPOINTS = V3Endpoints(
    vehicle_origin="https://vehicle.sc.test",
    iam_origin="https://iam.sc.test",
    management_origin="https://management.sc.test",
)
CONNECTION_ID = "32c4139a-e4aa-4c6c-b357-3ae9022dbf1b"
WEBHOOK_ID = "cfa94613-2b1e-4c4f-9a57-0d3f6b7e8a91"
SUBSCRIPTION_ID = "5d0c8a3e-1f2b-4c6d-8e9f-0a1b2c3d4e5f"
VEHICLES = "https://vehicle.sc.test/v3/vehicles"


def v3_error(
    status: int, type_: str | None, code: str | None, **extra: Any
) -> dict[str, list[dict[str, Any]]]:
    """A V3 error body with one error (``status`` a string, as Smartcar sends it)."""
    error: dict[str, Any] = {
        "status": str(status),
        "type": type_,
        "code": code,
        "title": f"{type_} {code}",
        "detail": f"{type_}:{code} happened",
        **extra,
    }
    return {"errors": [error]}


def signal(
    code: str,
    body: dict[str, Any] | None,
    *,
    status: str = "SUCCESS",
    error: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A signal resource as ``GET /signals`` lists it (the documented shape)."""
    name = code.split("-", 1)[1].title()
    attributes: dict[str, Any] = {
        "code": code,
        "name": name,
        "group": code.split("-", 1)[0].title(),
        "status": {"value": status, **({"error": error} if error else {})},
    }
    if body is not None:
        attributes["body"] = body
    return {
        "id": code,
        "type": "signal",
        "attributes": attributes,
        "meta": meta if meta is not None else {},
        "links": {"self": f"/vehicles/v/signals/{code}"},
    }
