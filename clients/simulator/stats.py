"""Counters of what clients asked the simulator, for tests and benchmarks to assert on.

`GET /sim/stats` returns `Stats.snapshot()`:

    {"requests": {"by_endpoint": {"odometer": 3, "batch": 1, "security": 2, …},
                  "by_vehicle": {"<vehicle id>": 6, …},
                  "by_method": {"GET security": 1, "POST security": 1, …},
                  "batch_paths": {"odometer": 1, "fuel": 1, …},
                  "total": 9},
     "commands": {"LOCK": 1, "UNLOCK": 0, "CHARGE_START": 1, …},
     "token_grants": {"authorization_code": 1, "refresh_token": 2, "client_credentials": 1},
     "refresh_token_reuses": 1,
     "token_rejections": {"invalid_grant": 1, "invalid_client": 0, …},
     "authorizations": {"granted": 1, "denied": 0, "rejected": 0},
     "errors": {"RATE_LIMIT:VEHICLE": 1, "VEHICLE_STATE:ASLEEP": 2, …},
     "faults_injected": {"hang": 1, …},
     "webhooks": {"delivered": 1, "failed_attempts": 3, "dropped": 0},
     "billed_this_month": {"<vehicle id>": 5, …}}

Every Vehicle and Management API request that names a known endpoint is counted once under
its endpoint, whatever its outcome (a 401 or a 429 is still a request to Smartcar); API V3
endpoints are counted under keys beginning with `v3/` (`v3/signals`, `v3/signal`,
`v3/vehicle`, `v3/commands/security/lock`, `v3/connections`, `v3/users`, `v3/webhooks`,
`v3/subscriptions`); Compatibility API checks under `compatibility` (never billed).
`token_grants.client_credentials` counts application tokens issued by
the IAM endpoint (`POST /oauth2/token`); its refusals count under `token_rejections`. A batch
counts once under `batch` and once per path under `batch_paths`; it is billed per path
(`billed_this_month`). `security` counts GET (lock status) and POST (lock/unlock) alike;
`by_method` and `commands` tell them apart. `errors` counts every Smartcar error the
simulator answered (v2 and V3), batch items included, by `TYPE:CODE`. `refresh_token_reuses` counts
refresh grants that presented an already-used refresh token inside the grace window (each
such grant also counts under `token_grants.refresh_token`). `webhooks` counts events
delivered (a 2xx on some attempt), attempts that failed, and events dropped after the last
retry (VERIFY is not counted).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

TOKEN_GRANTS = ("authorization_code", "refresh_token", "client_credentials")
TOKEN_REJECTIONS = (
    "invalid_grant",
    "invalid_client",
    "invalid_request",
    "unsupported_grant_type",
)


class Stats:
    """Request, grant and error counters since start (or the last reset)."""

    def __init__(self) -> None:
        self.by_endpoint: Counter[str] = Counter()
        self.by_vehicle: Counter[str] = Counter()
        self.by_method: Counter[str] = Counter()
        self.batch_paths: Counter[str] = Counter()
        self.commands: Counter[str] = Counter({"LOCK": 0, "UNLOCK": 0})
        self.token_grants: Counter[str] = Counter(dict.fromkeys(TOKEN_GRANTS, 0))
        self.token_rejections: Counter[str] = Counter(dict.fromkeys(TOKEN_REJECTIONS, 0))
        self.refresh_token_reuses = 0
        self.authorizations: Counter[str] = Counter(granted=0, denied=0, rejected=0)
        self.errors: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.webhooks: Counter[str] = Counter(delivered=0, failed_attempts=0, dropped=0)

    def count_request(self, endpoint: str, *, method: str, vehicle_id: str | None) -> None:
        """Count one API request at `endpoint`, on `vehicle_id` when it names one."""
        self.by_endpoint[endpoint] += 1
        self.by_method[f"{method} {endpoint}"] += 1
        if vehicle_id is not None:
            self.by_vehicle[vehicle_id] += 1

    def snapshot(self, *, billed_this_month: dict[str, int]) -> dict[str, Any]:
        """Return every counter as plain JSON-ready dicts."""
        return {
            "requests": {
                "by_endpoint": dict(self.by_endpoint),
                "by_vehicle": dict(self.by_vehicle),
                "by_method": dict(self.by_method),
                "batch_paths": dict(self.batch_paths),
                "total": sum(self.by_endpoint.values()),
            },
            "commands": dict(self.commands),
            "token_grants": dict(self.token_grants),
            "refresh_token_reuses": self.refresh_token_reuses,
            "token_rejections": dict(self.token_rejections),
            "authorizations": dict(self.authorizations),
            "errors": dict(self.errors),
            "faults_injected": dict(self.faults_injected),
            "webhooks": dict(self.webhooks),
            "billed_this_month": billed_this_month,
        }
