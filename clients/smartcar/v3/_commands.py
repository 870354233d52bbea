"""A command's answer → CommandExecution, or the typed error of a command that failed.

Smartcar documents ``200`` as "executed synchronously and successfully" and ``202`` as
"in process but long-running … always read the response body to determine success or
failure" (smartcar-v3-notes §2.5). How a 202 body looks is not documented: live users
report that Smartcar holds the connection and streams the final outcome as the body, and
a third-party client names the statuses SUCCESS, FAILURE and PENDING. So, whatever the
HTTP status of a 2xx:

- ``errors[]`` in the body → that error is raised (error bodies do arrive with 200/202);
- status FAILURE (or FAILED, ERROR) → the error in ``status.error`` (or an ``error``
  beside the status) is raised, or ``CommandFailed`` when Smartcar names none;
- status SUCCESS → SUCCEEDED;
- no status (an empty body included) → SUCCEEDED on a 200, PENDING on a 202;
- any other status (PENDING …) → PENDING: the outcome is unknown until the matching
  signal (``closure-islocked``) shows it. No endpoint to poll an execution was found.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType

from clients.smartcar._wire import Headers
from clients.smartcar.errors import CommandFailed, SmartcarError
from clients.smartcar.secret import Secret, redact
from clients.smartcar.v3._errors import error_from_object, v3_error
from clients.smartcar.v3._jsonapi import attributes, single
from clients.smartcar.v3._time import instant
from clients.smartcar.v3.models import CommandExecution, CommandOutcome

__all__ = ["command_execution"]

_SUCCEEDED = "SUCCESS"
_FAILED = frozenset({"FAILURE", "FAILED", "ERROR"})


def command_execution(
    body: object,
    *,
    http_status: int,
    headers: Headers,
    now: datetime,
    secrets: tuple[Secret, ...],
) -> CommandExecution:
    """Return the execution a 2xx command answer describes; raise if it says it failed."""
    request_id = _text(headers.get("sc-request-id"), secrets)
    if isinstance(body, Mapping) and "errors" in body:
        raise v3_error(http_status, body, headers, now=now, secrets=secrets)
    if body is None:
        return CommandExecution(
            outcome=_outcome(None, http_status), http_status=http_status, request_id=request_id
        )
    resource = single(body, "command")
    fields = attributes(resource)
    status_raw = fields.get("status")
    status = _status(status_raw)
    if status in _FAILED:
        error_raw = fields.get("error")
        raise _failure(
            status_raw, error_raw, status, http_status, headers, now=now, secrets=secrets
        )
    meta = resource.get("meta")
    meta = meta if isinstance(meta, Mapping) else {}
    parameters = fields.get("parameters")
    return CommandExecution(
        outcome=_outcome(status, http_status),
        http_status=http_status,
        status=status,
        id=_text(resource.get("id"), secrets),
        command_type=_text(fields.get("commandType"), secrets),
        execution_mode=_text(fields.get("executionMode"), secrets),
        parameters=MappingProxyType(dict(parameters)) if isinstance(parameters, Mapping) else None,
        executed_at=instant(meta.get("executedAt")),
        completed_at=instant(meta.get("completedAt")),
        duration_s=_seconds(meta.get("durationInSeconds")),
        request_id=request_id,
    )


def _outcome(status: str | None, http_status: int) -> CommandOutcome:
    if status == _SUCCEEDED or (status is None and http_status != 202):
        return CommandOutcome.SUCCEEDED
    return CommandOutcome.PENDING


def _status(raw: object) -> str | None:
    """Return ``status.value`` (or a bare status string) upper-cased, None if absent."""
    if isinstance(raw, Mapping):
        raw = raw.get("value")
    return raw.strip().upper() if isinstance(raw, str) and raw.strip() else None


def _failure(
    status_raw: object,
    fallback: object,
    status: str,
    http_status: int,
    headers: Headers,
    *,
    now: datetime,
    secrets: tuple[Secret, ...],
) -> SmartcarError:
    """Return the error a failed execution names (in ``status.error``, else beside the
    status in ``fallback``), or CommandFailed."""
    error_raw = status_raw.get("error") if isinstance(status_raw, Mapping) else None
    error = error_from_object(
        error_raw or fallback, status=http_status, headers=headers, now=now, secrets=secrets
    )
    if error is not None:
        return error
    return CommandFailed(
        status=http_status,
        type=None,
        code=status,
        description="the command execution reports failure without naming why",
        request_id=_text(headers.get("sc-request-id"), secrets),
    )


def _text(raw: object, secrets: tuple[Secret, ...]) -> str | None:
    return redact(raw, secrets) if isinstance(raw, str) and raw else None


def _seconds(raw: object) -> float | None:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 <= raw < 1e9:
        return None
    return float(raw)
