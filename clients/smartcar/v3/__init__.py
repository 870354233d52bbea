"""An async client for Smartcar's API V3, beside the v2.0 client of ``clients.smartcar``.

    http = httpx.AsyncClient(timeout=10)                    # the caller owns it
    endpoints = V3Endpoints.from_env(os.environ)
    iam = SmartcarIAM(http=http, endpoints=endpoints, credentials=ApplicationCredentials(
        client_id="client_…", client_secrets=(Secret(new), Secret(old))))
    grant = await iam.request_token()                       # one token for the fleet, 1 h
    vehicles = SmartcarVehiclesV3(http=http, endpoints=endpoints)
    signals = await vehicles.signals(grant.token.access_token, vehicle_id, user_id=user_id)
    match signals.odometer:                                 # km, with the car's own time
        case SignalValue(value=odometer, oem_updated_at=recorded_at): ...
        case SignalFailure(error=error): ...
    await vehicles.lock(grant.token.access_token, vehicle_id, user_id=user_id)

``SmartcarConnectionsV3`` lists, reads and deletes connections and deletes users;
``SmartcarManagementV3`` reads webhooks and manages subscriptions; ``parse_signals``
reads a webhook's signals into the same typed readings.

Every failure is a ``clients.smartcar.SmartcarError``, the same tree as v2's: V3
``errors[]`` bodies become the same classes (``VehicleAsleep``, ``VehicleRateLimited``
…), plus ``AccessDenied`` (V3's 403 ACCESS_DENIED) and ``CommandFailed``. Tokens and
client secrets are ``Secret`` values and never appear in a repr, log line or error.

Where Smartcar's pages disagree (smartcar-v3-notes), each module's docstring says which
version it follows and what else it tolerates.
"""

from clients.smartcar.v3.connections import SmartcarConnectionsV3, VehicleMode
from clients.smartcar.v3.credentials import ApplicationCredentials
from clients.smartcar.v3.endpoints import TOKEN_PATH, V3Endpoints
from clients.smartcar.v3.iam import SmartcarIAM, TokenRequestStyle
from clients.smartcar.v3.management import SmartcarManagementV3
from clients.smartcar.v3.models import (
    ApplicationToken,
    CommandExecution,
    CommandOutcome,
    Page,
    Paged,
    SignalRef,
    SubscribeOutcome,
    Subscription,
    SubscriptionRequest,
    TokenGrant,
    Vehicle,
    VehicleConnection,
    VehicleDescription,
    Webhook,
)
from clients.smartcar.v3.payloads import parse_signals
from clients.smartcar.v3.signals import (
    FIELD_SIGNALS,
    ChargeState,
    Connectivity,
    Signal,
    SignalCode,
    SignalFailure,
    SignalField,
    SignalReading,
    SignalStatus,
    SignalValue,
    VehicleSignals,
)
from clients.smartcar.v3.vehicles import SmartcarVehiclesV3

__all__ = [
    "FIELD_SIGNALS",
    "TOKEN_PATH",
    "ApplicationCredentials",
    "ApplicationToken",
    "ChargeState",
    "CommandExecution",
    "CommandOutcome",
    "Connectivity",
    "Page",
    "Paged",
    "Signal",
    "SignalCode",
    "SignalFailure",
    "SignalField",
    "SignalReading",
    "SignalRef",
    "SignalStatus",
    "SignalValue",
    "SmartcarConnectionsV3",
    "SmartcarIAM",
    "SmartcarManagementV3",
    "SmartcarVehiclesV3",
    "SubscribeOutcome",
    "Subscription",
    "SubscriptionRequest",
    "TokenGrant",
    "TokenRequestStyle",
    "V3Endpoints",
    "Vehicle",
    "VehicleConnection",
    "VehicleDescription",
    "VehicleMode",
    "VehicleSignals",
    "Webhook",
    "parse_signals",
]
