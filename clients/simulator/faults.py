"""Injected faults: what `/sim/faults` arms, and which request each one hits.

A fault has a kind, and optionally a vehicle id, a path and a count:

- `vehicle_id` limits it to requests on that vehicle (otherwise: every vehicle);
- `path` limits it to one endpoint, named like the stats keys (`odometer`, `security`,
  `tires/pressure`, `attributes`, `batch`, `v3/signals`, `v3/commands/security/lock`…; a
  leading `/` is ignored, `/` is `attributes`), or `token` for `POST /oauth/token` and
  `oauth2/token` for the IAM token endpoint. Without a path, a fault hits every Vehicle API
  request on its vehicle(s), and never a token endpoint;
- `count` limits how many requests it hits (otherwise: until `DELETE /sim/faults`).

Kinds and what they do:

| kind         | effect                                                                 |
|--------------|------------------------------------------------------------------------|
| server_error | 500 SERVER:INTERNAL (token endpoint: 500 `server_error`)               |
| upstream     | 502 UPSTREAM:<code> (token endpoint: 503 `temporarily_unavailable`)     |
| asleep       | 409 VEHICLE_STATE:ASLEEP                                               |
| rate_limit   | 429 RATE_LIMIT:VEHICLE with `retry-after: <retry_after_s>` (default 60) |
| hang         | the request is processed, then the answer waits `hang_s` (real time)   |
| malformed    | the request is processed, then 200 with a truncated, non-JSON body     |
| reset        | the request is processed, then the TCP connection is reset (RST)       |
| hold         | the request is processed, then the answer waits until released (`holds`) |
| account      | 400 CONNECTED_SERVICES_ACCOUNT:<code>, with Smartcar's resolution       |

`upstream` takes an optional `code`: NO_RESPONSE (default), INVALID_DATA, KNOWN_ISSUE,
UNKNOWN_ISSUE or RATE_LIMIT. `account` takes one of Smartcar's CONNECTED_SERVICES_ACCOUNT
codes: AUTHENTICATION_FAILED (default: resolution REAUTHENTICATE with a re-authentication
link for the client and vehicle), ACCOUNT_ISSUE, NO_VEHICLES, PERMISSION (REAUTHENTICATE),
SUBSCRIPTION, VEHICLE_MISSING or VIRTUAL_KEY_REQUIRED (ACTION_REQUIRED with the virtual-key
page); on v2 as a flat body, on V3 as `errors[]`, both carrying `resolution.url` when the
code has one. The owner's account failing stays until the fault is disarmed (or its
`count` is spent): disarming it is the owner doing what Smartcar asked.

`account` and the first four are refusals: nothing happens (a command is not executed, a
refresh token is not used). The last four are transport failures after the work was done: a
command was executed and a refresh token was spent although the client never sees the
answer, which is the case "the command may have succeeded" and "retry the refresh within the
grace window" must handle.

In a batch, a fault with path `batch` or no path hits the whole request; a fault naming one
of the batch's paths hits only that item when it is a refusal (the item carries the error),
and the whole response when it is a transport failure. `asleep` and `rate_limit` do not
apply to the token endpoints.

When several faults match a request, the one armed first wins.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class FaultKind(StrEnum):
    """What an injected fault does to the request it hits."""

    SERVER_ERROR = "server_error"
    UPSTREAM = "upstream"
    ASLEEP = "asleep"
    RATE_LIMIT = "rate_limit"
    HANG = "hang"
    MALFORMED = "malformed"
    RESET = "reset"
    HOLD = "hold"
    ACCOUNT = "account"

    @property
    def is_transport(self) -> bool:
        """Tell whether the fault breaks the answer after the work was done."""
        return self in (FaultKind.HANG, FaultKind.MALFORMED, FaultKind.RESET, FaultKind.HOLD)


UPSTREAM_CODES = ("NO_RESPONSE", "INVALID_DATA", "KNOWN_ISSUE", "UNKNOWN_ISSUE", "RATE_LIMIT")
ACCOUNT_CODES = (
    "AUTHENTICATION_FAILED",
    "ACCOUNT_ISSUE",
    "NO_VEHICLES",
    "PERMISSION",
    "SUBSCRIPTION",
    "VEHICLE_MISSING",
    "VIRTUAL_KEY_REQUIRED",
)
"""Smartcar's CONNECTED_SERVICES_ACCOUNT codes; the first is the `account` fault's default."""
_CODES = {"upstream": UPSTREAM_CODES, "account": ACCOUNT_CODES}
TOKEN_PATH = "token"  # noqa: S105 - an endpoint name, not a secret
IAM_TOKEN_PATH = "oauth2/token"  # noqa: S105 - an endpoint name, not a secret
TOKEN_PATHS = (TOKEN_PATH, IAM_TOKEN_PATH)
_NOT_FOR_TOKEN = (FaultKind.ASLEEP, FaultKind.RATE_LIMIT, FaultKind.ACCOUNT)


class FaultError(ValueError):
    """A fault description is invalid; `field` names the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalize_path(path: str) -> str:
    """Turn `/odometer`, `odometer/` or `/` into the endpoint name (`odometer`, `attributes`)."""
    name = path.strip("/")
    return name or "attributes"


@dataclass(frozen=True, kw_only=True)
class Fault:
    """One armed fault."""

    id: int
    kind: FaultKind
    vehicle_id: str | None = None
    path: str | None = None
    count: int | None = None
    retry_after_s: int = 60
    code: str | None = None

    def matches(self, *, vehicle_id: str | None, path: str, any_path: bool = True) -> bool:
        """Tell whether this fault hits a request on `vehicle_id` at endpoint `path`.

        With `any_path=False`, a fault without a path does not match (batch items).
        """
        if self.vehicle_id is not None and self.vehicle_id != vehicle_id:
            return False
        if self.path is None:
            return any_path and path not in TOKEN_PATHS
        return self.path == path

    def to_json(self) -> dict[str, Any]:
        """Return the fault as `/sim/faults` lists it."""
        return {
            "id": self.id,
            "kind": str(self.kind),
            "vehicle_id": self.vehicle_id,
            "path": self.path,
            "count": self.count,
            "retry_after_s": self.retry_after_s,
            "code": self.code,
        }


class FaultBook:
    """The armed faults, in the order they were armed."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def arm(self, spec: Mapping[str, object]) -> Fault:
        """Validate a JSON fault description and arm it."""
        fault = _parse_fault(spec, fault_id=next(self._ids))
        self._faults.append(fault)
        return fault

    def clear(self) -> int:
        """Disarm every fault and return how many there were."""
        count = len(self._faults)
        self._faults.clear()
        return count

    def take(self, *, vehicle_id: str | None, path: str, any_path: bool = True) -> Fault | None:
        """Return the first fault hitting this request and spend one of its uses."""
        for index, fault in enumerate(self._faults):
            if fault.matches(vehicle_id=vehicle_id, path=path, any_path=any_path):
                self._spend(index, fault)
                return fault
        return None

    def armed(self) -> list[Fault]:
        """Return the armed faults."""
        return list(self._faults)

    def __bool__(self) -> bool:
        """Tell whether any fault is armed (the fast path when none is)."""
        return bool(self._faults)

    def _spend(self, index: int, fault: Fault) -> None:
        """Count one use of the fault at `index`, disarming it when it has none left."""
        if fault.count is None:
            return
        if fault.count <= 1:
            del self._faults[index]
        else:
            self._faults[index] = dataclasses.replace(fault, count=fault.count - 1)


def _parse_fault(spec: Mapping[str, object], *, fault_id: int) -> Fault:
    """Turn `{"kind", "vehicle_id"?, "path"?, "count"?, "retry_after_s"?, "code"?}` into a Fault."""
    unknown = set(spec) - {"kind", "vehicle_id", "path", "count", "retry_after_s", "code"}
    if unknown:
        raise FaultError(sorted(unknown)[0], "unknown field")
    try:
        kind = FaultKind(str(spec.get("kind")))
    except ValueError:
        choices = ", ".join(kind.value for kind in FaultKind)
        raise FaultError("kind", f"must be one of {choices}") from None
    vehicle_id = _optional_str(spec, "vehicle_id")
    raw_path = _optional_str(spec, "path")
    path = None if raw_path is None else normalize_path(raw_path)
    if path in TOKEN_PATHS and kind in _NOT_FOR_TOKEN:
        raise FaultError("path", f"{kind} does not apply to a token endpoint")
    count = _optional_positive_int(spec, "count")
    retry_after_s = _optional_positive_int(spec, "retry_after_s") or 60
    code = _optional_str(spec, "code")
    codes = _CODES.get(kind.value, ())
    if code is not None and code not in codes:
        choices = "; ".join(f"{name}: {', '.join(known)}" for name, known in _CODES.items())
        raise FaultError("code", f"only for upstream and account faults ({choices})")
    return Fault(
        id=fault_id,
        kind=kind,
        vehicle_id=vehicle_id,
        path=path,
        count=count,
        retry_after_s=retry_after_s,
        code=code,
    )


def _optional_str(spec: Mapping[str, object], name: str) -> str | None:
    """Return the string field `name`, or None when it is absent or null."""
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise FaultError(name, "must be a non-empty string")
    return value


def _optional_positive_int(spec: Mapping[str, object], name: str) -> int | None:
    """Return the positive integer field `name`, or None when it is absent or null."""
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise FaultError(name, "must be a positive integer")
    return value
