"""An async client for Smartcar (OAuth, Vehicle API v2.0, management) on an injected httpx client.

    http = httpx.AsyncClient(timeout=10)            # the caller owns it
    endpoints = SmartcarEndpoints.from_env(os.environ)
    auth = SmartcarAuth(http=http, credentials=ClientCredentials.from_env(os.environ),
                        endpoints=endpoints)
    vehicles = SmartcarVehicles(http=http, endpoints=endpoints)
    compatibility = SmartcarCompatibility(http=http, credentials=…, endpoints=endpoints)
    pair = await auth.exchange_code(code)
    odometer = await vehicles.odometer(pair.access_token, vehicle_id)   # Reading[Odometer]

Every failure is a ``SmartcarError`` (see ``clients.smartcar.errors`` for the tree).
API V3 (application token, ``sc-user-id``, signals, commands as paths, connections and
the V3 management API) is ``clients.smartcar.v3``, raising the same errors.
"""

from clients.smartcar._batch import BATCH_PATHS
from clients.smartcar.auth import ConnectMode, SmartcarAuth
from clients.smartcar.compatibility import SmartcarCompatibility
from clients.smartcar.credentials import ClientCredentials
from clients.smartcar.endpoints import SmartcarEndpoints
from clients.smartcar.errors import (
    AccessDenied,
    AppRateLimited,
    AuthenticationError,
    BillingError,
    CommandFailed,
    CompatibilityError,
    ConnectedServicesAccountError,
    InvalidClient,
    InvalidGrant,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    PermissionDenied,
    RateLimited,
    Resolution,
    ResourceNotFound,
    ServerError,
    SmartcarAPIError,
    SmartcarConnectionError,
    SmartcarError,
    SmartcarProtocolError,
    SmartcarTimeout,
    SmartcarTransportError,
    UnauthorizedClient,
    UnsupportedGrantType,
    UpstreamError,
    ValidationError,
    VehicleAsleep,
    VehicleNotCapable,
    VehicleRateLimited,
    VehicleRequestLimitReached,
    VehicleStateError,
)
from clients.smartcar.management import SmartcarManagement
from clients.smartcar.models import (
    ActionResult,
    Attributes,
    BatchItem,
    BatchResult,
    Battery,
    Capability,
    ChargeLimit,
    ChargeStatus,
    Closure,
    Compatibility,
    Connection,
    EngineOil,
    Fuel,
    Location,
    LockStatus,
    Meta,
    Odometer,
    PermissionPage,
    Reading,
    TirePressure,
    TokenPair,
    VehiclePage,
)
from clients.smartcar.secret import Secret
from clients.smartcar.units import UnitSystem
from clients.smartcar.vehicles import SmartcarVehicles

__all__ = [
    "BATCH_PATHS",
    "AccessDenied",
    "ActionResult",
    "AppRateLimited",
    "Attributes",
    "AuthenticationError",
    "BatchItem",
    "BatchResult",
    "Battery",
    "BillingError",
    "Capability",
    "ChargeLimit",
    "ChargeStatus",
    "ClientCredentials",
    "Closure",
    "CommandFailed",
    "Compatibility",
    "CompatibilityError",
    "ConnectMode",
    "ConnectedServicesAccountError",
    "Connection",
    "EngineOil",
    "Fuel",
    "InvalidClient",
    "InvalidGrant",
    "InvalidRequest",
    "InvalidScope",
    "Location",
    "LockStatus",
    "Meta",
    "OAuthError",
    "Odometer",
    "PermissionDenied",
    "PermissionPage",
    "RateLimited",
    "Reading",
    "Resolution",
    "ResourceNotFound",
    "Secret",
    "ServerError",
    "SmartcarAPIError",
    "SmartcarAuth",
    "SmartcarCompatibility",
    "SmartcarConnectionError",
    "SmartcarEndpoints",
    "SmartcarError",
    "SmartcarManagement",
    "SmartcarProtocolError",
    "SmartcarTimeout",
    "SmartcarTransportError",
    "SmartcarVehicles",
    "TirePressure",
    "TokenPair",
    "UnauthorizedClient",
    "UnitSystem",
    "UnsupportedGrantType",
    "UpstreamError",
    "ValidationError",
    "VehicleAsleep",
    "VehicleNotCapable",
    "VehiclePage",
    "VehicleRateLimited",
    "VehicleRequestLimitReached",
    "VehicleStateError",
]
