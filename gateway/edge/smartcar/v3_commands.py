"""An API V3 command's answer in the core's terms: confirmed, or an outcome not known yet.

    execution = await vehicles.lock(token, vehicle_id, user_id=user_id)   # raises on failure
    ensure_confirmed(execution)                      # CommandOutcomeUnknown unless confirmed

The V3 client answers a `CommandExecution` only for a command that did not fail (a
failure raises; `failures.translate(error, command=True)` turns it into the core's
error). Its `outcome` is SUCCEEDED when Smartcar reports the command done (status SUCCESS,
or a plain 200), and PENDING when Smartcar accepted it without confirming it: a 202
("the command is in process but is long-running") whose body names no final status, or
a status such as PENDING. Smartcar documents no endpoint to ask about an execution later
(smartcar-v3-notes §2.5), so a PENDING command is `CommandOutcomeUnknown`: the command
service keeps it OUTCOME_UNKNOWN, answers UNAVAILABLE with `may_have_succeeded=true`, and
the reconciler (`gateway.core.reconcile`) settles it from the state the car reports
afterwards (its lock state, or its charge). That works on V3 because a V3 reading's
`recorded_at` is the car's own time (`v3_readings`), so Smartcar's stored view from
before the command proves nothing.
"""

from __future__ import annotations

from clients.smartcar.v3 import CommandExecution, CommandOutcome
from gateway.core.errors import CommandOutcomeUnknown
from gateway.core.model import UpstreamFailure


def ensure_confirmed(execution: CommandExecution) -> None:
    """Return when Smartcar confirmed the command; raise `CommandOutcomeUnknown` when it
    accepted it without confirming it (outcome PENDING)."""
    if execution.outcome is CommandOutcome.SUCCEEDED:
        return
    status = execution.status or "none"
    account = f"HTTP {execution.http_status}, execution status {status}"
    if execution.id:
        account += f", execution {execution.id}"
    raise CommandOutcomeUnknown(
        f"Smartcar accepted the command but has not confirmed it ({account}); "
        "the state the car reports will settle it",
        upstream=UpstreamFailure(request_id=execution.request_id, description=account),
    )
