"""`SmartcarCompatibilityV2`: the CompatibilityAPI port on Smartcar's Compatibility API
(v2.0, by VIN; `clients.smartcar.compatibility` says which of Smartcar's conflicting pages it
follows, and why API V3 is not used).

Failures are translated once (`failures.translate`), except two that mean something else
here, where the application asks in its own name and no owner is involved:

- 401 AUTHENTICATION refuses the application's client id and secret:
  `ApplicationCredentialsRefused` (an operator must fix SMARTCAR_CLIENT_ID /
  SMARTCAR_CLIENT_SECRET), never a token to refresh;
- 403 PERMISSION refuses the feature itself ("The Compatibility API is an Enterprise
  feature"): `UpstreamRejected` saying so, never `PermissionMissing` (no owner withheld
  anything).

Every call is bounded by min(the read timeout, the caller's remaining deadline).
"""

from __future__ import annotations

from clients import smartcar as sc
from gateway.core import errors
from gateway.core.model import EndpointCapability, VehicleCompatibility
from gateway.edge.context import bounded_timeout_s
from gateway.edge.smartcar.adapter import UpstreamTimeouts
from gateway.edge.smartcar.failures import failure_of, translate


class SmartcarCompatibilityV2:
    """Implements `gateway.core.ports.CompatibilityAPI` with Smartcar's Compatibility API."""

    def __init__(
        self,
        *,
        client: sc.SmartcarCompatibility,
        timeouts: UpstreamTimeouts = UpstreamTimeouts(),
    ) -> None:
        self._client = client
        self._timeouts = timeouts

    async def check(
        self, vin: str, *, country: str, permissions: frozenset[str]
    ) -> VehicleCompatibility:
        """Ask about the car with `vin` in `country`, for the endpoints of `permissions`."""
        try:
            answer = await self._client.by_vin(
                vin,
                scopes=sorted(permissions),
                country=country,
                timeout_s=bounded_timeout_s(self._timeouts.read_s),
            )
        except sc.AuthenticationError as error:
            raise errors.ApplicationCredentialsRefused(
                "Smartcar's Compatibility API refused the application's client id and secret "
                "(SMARTCAR_CLIENT_ID, SMARTCAR_CLIENT_SECRET)",
                upstream=failure_of(error),
            ) from None
        except sc.PermissionDenied as error:
            raise errors.UpstreamRejected(
                "Smartcar refused the Compatibility API to this application (an Enterprise "
                "feature of Smartcar's plans)",
                upstream=failure_of(error),
            ) from None
        except sc.SmartcarError as error:
            raise translate(error) from None
        value = answer.value
        return VehicleCompatibility(
            compatible=value.compatible,
            reason=value.reason,
            capabilities=tuple(
                EndpointCapability(
                    permission=c.permission,
                    endpoint=c.endpoint,
                    capable=c.capable,
                    reason=c.reason,
                )
                for c in value.capabilities
            ),
        )
