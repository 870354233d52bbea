"""Which client call sends a command: one rule for the v2 and the V3 adapter.

    send = command_call(command, vehicles)   # vehicles.lock, .unlock, .start_charge, …

Both clients name their command calls alike (`lock`, `unlock`, `start_charge`,
`stop_charge`, `set_charge_limit(…, percent=…)`); their parameters differ (V3 also takes the
owner's user id), so the call is returned for the adapter to make, SetChargeLimit's limit
already bound.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol, TypeVar, cast

from gateway.core import model

S = TypeVar("S")
S_co = TypeVar("S_co", covariant=True)


class CommandClient(Protocol[S_co]):
    """A Smartcar client's command calls, each of type `S_co` (set_charge_limit also takes
    the limit as `percent`)."""

    @property
    def lock(self) -> S_co: ...

    @property
    def unlock(self) -> S_co: ...

    @property
    def start_charge(self) -> S_co: ...

    @property
    def stop_charge(self) -> S_co: ...

    @property
    def set_charge_limit(self) -> Any: ...


def command_call(command: model.Command, vehicles: CommandClient[S]) -> S:
    """Return the client call that sends `command`, bound to its parameters."""
    match command.action:
        case model.LockAction.LOCK:
            return vehicles.lock
        case model.LockAction.UNLOCK:
            return vehicles.unlock
        case model.ChargeAction.START_CHARGE:
            return vehicles.start_charge
        case model.ChargeAction.STOP_CHARGE:
            return vehicles.stop_charge
        case model.ChargeAction.SET_CHARGE_LIMIT:
            percent = command.charge_limit_percent
            assert percent is not None  # by Command's own check
            bound: Any = functools.partial(vehicles.set_charge_limit, percent=percent)
            return cast(S, bound)  # the same call as the others once the limit is bound
