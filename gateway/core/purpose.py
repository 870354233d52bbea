"""Why the gateway reads a car: what the read may spend of the car's monthly allowance
(`gateway.core.budget.BudgetTier`) and its priority at the rate limits
(`gateway.core.ratelimit.CallKind`).

    purpose         budget                      rate limits
    INTERACTIVE     down to the reserve         READ
    RENTAL          the reserve too             READ
    SCHEDULED       down to the reserve         POLL (the scheduler also keeps its own share)
    COMMAND_CHECK   the reserve too             POLL
    OWNER_PROBE     down to the reserve         POLL (the scheduler also keeps its own share)
"""

from __future__ import annotations

from enum import StrEnum

from gateway.core.budget import BudgetTier
from gateway.core.ratelimit import CallKind


class ReadPurpose(StrEnum):
    """What a telemetry read is for."""

    INTERACTIVE = "interactive"
    """A caller's GetTelemetry: past the reserve it is answered from what is held."""
    RENTAL = "rental"
    """A reading bound to a rental's start or end, which billing depends on."""
    SCHEDULED = "scheduled"
    """A scheduler poll keeping fields fresh without anyone asking."""
    COMMAND_CHECK = "command_check"
    """A read of the lock status settling a command's unknown outcome: part of the command."""
    OWNER_PROBE = "owner_probe"
    """A scheduler's read of a car waiting for its owner (NEEDS_REAUTHENTICATION), asking
    whether they acted: the one read such a car is sent (`gateway.core.reauthentication`)."""

    @property
    def tier(self) -> BudgetTier:
        """How far into the car's monthly allowance this read may go."""
        return _TIERS[self]

    @property
    def call_kind(self) -> CallKind:
        """The read's priority at the rate limits."""
        return _CALL_KINDS[self]


_TIERS = {
    ReadPurpose.INTERACTIVE: BudgetTier.OPEN,
    ReadPurpose.RENTAL: BudgetTier.RESERVE,
    ReadPurpose.SCHEDULED: BudgetTier.OPEN,
    ReadPurpose.COMMAND_CHECK: BudgetTier.RESERVE,
    ReadPurpose.OWNER_PROBE: BudgetTier.OPEN,
}
_CALL_KINDS = {
    ReadPurpose.INTERACTIVE: CallKind.READ,
    ReadPurpose.RENTAL: CallKind.READ,
    ReadPurpose.SCHEDULED: CallKind.POLL,
    ReadPurpose.COMMAND_CHECK: CallKind.POLL,
    ReadPurpose.OWNER_PROBE: CallKind.POLL,
}
