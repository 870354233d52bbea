"""Connections that wait for their owner (NEEDS_REAUTHENTICATION): how a car gets there,
what a call to it gets, and how it comes back.

    owners = OwnerActions(uow=uow, clock=clock)
    await owners.required(vehicle_id, issue.action)   # Smartcar: the owner must act
    await owners.answered(vehicle_id)                 # a probe was answered: they did

Smartcar's CONNECTED_SERVICES_ACCOUNT errors (HTTP 400) say the owner must do something in
their connected-services (manufacturer) account, or reconnect, before the car answers again.
Its error pages list seven codes, and each needs the owner:

    ACCOUNT_ISSUE          log in to the account and finish a task (terms, activation)
    AUTHENTICATION_FAILED  re-authenticate through Connect (REAUTHENTICATE, with a URL)
    NO_VEHICLES            add the car to the account, then re-authenticate
    PERMISSION             the owner revoked Smartcar's access at the manufacturer
                           (REAUTHENTICATE; `revocation` says why this is not DISCONNECTED)
    SUBSCRIPTION           activate or upgrade the car's connected-services subscription
    VEHICLE_MISSING        re-add the car to the account
    VIRTUAL_KEY_REQUIRED   add Smartcar's virtual key (ACTION_REQUIRED, with a URL): commands

A code of that type the pages do not list is taken the same way. The Smartcar adapter says
which errors these are (`OwnerAccountIssue` from a call, `ReportedError.owner_action` from a
webhook), with what Smartcar asked for (`OwnerAction`: `TYPE:CODE`, resolution type and
URL, documentation page, message for the owner, whether only commands are concerned).

Entering. Such an error on any call (a read, a command, a poll) or a webhook VEHICLE_ERROR in
state ERROR makes an ACTIVE or ERROR car NEEDS_REAUTHENTICATION; a car already waiting takes
the newer error. Its tokens are kept: the connection stands at Smartcar, and the owner's
action (Smartcar's re-authentication flow returns no new code) makes them work again.
EXPIRED, DISCONNECTED and NOT_CONNECTED cars are left as they are.

While it waits, nothing is sent for the car but the probes below and Disconnect's deletion
(`Upstream.call(awaiting_owner=True)`). Reads are answered from what the gateway holds, each
value with its age, UNAVAILABLE with the reason REAUTHENTICATION_REQUIRED; with nothing
held, and for every command, the call fails FAILED_PRECONDITION `ReauthenticationRequired`
carrying the resolution (ErrorInfo metadata and a Help link: `status.awaiting_owner`).
StartRental refuses the car (`rentals.ensure_rentable`). The scheduler does not poll it.

Leaving, back to ACTIVE:

- a successful Connect (a reconnect) of the car;
- a webhook VEHICLE_ERROR saying the same `TYPE:CODE` is RESOLVED;
- a probe answered: every `SchedulerPolicy.owner_probe_interval` the scheduler asks Smartcar
  for one field of a waiting car, at poll priority and within its share of the budget
  (`probe_due`); an answer means the owner acted. An error that concerns commands alone
  (a virtual key: reads still work) is never probed, since a read says nothing about it:
  only a reconnect or Smartcar's RESOLVED event ends it.

Disconnect ends the wait too: DISCONNECTED, the connection deleted at Smartcar.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from gateway.core.model import ConnectionStatus, OwnerAction, Vehicle
from gateway.core.ports import Clock, UnitOfWorkFactory
from gateway.core.status import save, with_status

MAX_TEXT = 2000
"""Longest text kept of what Smartcar asked (an error label, a message); a URL any longer,
or not http(s), is not kept at all (a cut link would lead nowhere)."""
REAUTHENTICATION_REQUIRED = "REAUTHENTICATION_REQUIRED"
"""The reason of a reading held for a car that waits for its owner."""
OWNER_ACTED = "Smartcar answered a probe: the owner's action is done"
WAITS_FROM = frozenset(
    {ConnectionStatus.ACTIVE, ConnectionStatus.ERROR, ConnectionStatus.NEEDS_REAUTHENTICATION}
)
"""The statuses a car can be made to wait for its owner from: those of a connection served."""


def waiting(vehicle: Vehicle, action: OwnerAction, *, now: datetime) -> Vehicle | None:
    """Return the vehicle waiting for its owner to do what `action` says; None when its
    status does not take it (never connected, expired, disconnected)."""
    if vehicle.status not in WAITS_FROM:
        return None
    action = kept(action)
    previous = vehicle.owner_action
    if previous is not None and previous.error == action.error:
        action = dataclasses.replace(action, probed_at=previous.probed_at)
    reason = (
        f"Smartcar: {action.error}: the owner must act in their connected-services account "
        "or reconnect the car"
    )
    updated = with_status(vehicle, ConnectionStatus.NEEDS_REAUTHENTICATION, reason=reason, now=now)
    return dataclasses.replace(updated, owner_action=action)


def kept(action: OwnerAction) -> OwnerAction:
    """Return what Smartcar asked, as the gateway keeps and shows it: texts cut to
    `MAX_TEXT`, links dropped unless they are http(s) URLs of at most that length."""
    return dataclasses.replace(
        action,
        error=_cut(action.error) or "UNKNOWN",
        resolution_type=_cut(action.resolution_type),
        resolution_url=_link(action.resolution_url),
        doc_url=_link(action.doc_url),
        user_message=_cut(action.user_message),
    )


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 1] + "…"


def _link(url: str | None) -> str | None:
    if url is None or len(url) > MAX_TEXT:
        return None
    scheme = url.split(":", 1)[0].lower()
    return url if scheme in ("https", "http") and "://" in url else None


def resumed(vehicle: Vehicle, *, reason: str, now: datetime) -> Vehicle:
    """Return a waiting vehicle ACTIVE again (what the owner had to do is dropped)."""
    return dataclasses.replace(
        with_status(vehicle, ConnectionStatus.ACTIVE, reason=reason, now=now), failure_count=0
    )


def resolves(vehicle: Vehicle, error: str) -> bool:
    """Tell whether Smartcar's `TYPE:CODE` being resolved ends this car's wait."""
    action = vehicle.owner_action
    return (
        vehicle.status is ConnectionStatus.NEEDS_REAUTHENTICATION
        and action is not None
        and action.error == error
    )


def probe_due(vehicle: Vehicle, *, interval: timedelta, now: datetime) -> bool:
    """Tell whether the scheduler should ask Smartcar now whether the owner acted: the car
    waits for an error a read can tell about, and was last asked (or began waiting) at
    least `interval` ago."""
    action = vehicle.owner_action
    if vehicle.status is not ConnectionStatus.NEEDS_REAUTHENTICATION or action is None:
        return False
    if action.commands_only:
        return False
    since = action.probed_at or vehicle.status_changed_at
    return since is None or since + interval <= now


class OwnerActions:
    """Keeps in storage which cars wait for their owner, as Smartcar's answers come."""

    def __init__(self, *, uow: UnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    async def required(self, vehicle_id: str, action: OwnerAction) -> None:
        """Smartcar said the owner must act: the car waits (when its status takes it)."""
        async with self._uow() as uow:
            current = await uow.vehicles.get(vehicle_id, for_update=True)
            updated = None if current is None else waiting(current, action, now=self._clock.now())
            if current is not None and updated is not None and updated != current:
                await save(uow, current, updated)
                await uow.commit()

    async def answered(self, vehicle_id: str) -> None:
        """A probe of a waiting car was answered: it is ACTIVE again, unless its error
        concerns commands alone (a read says nothing about those)."""
        async with self._uow() as uow:
            current = await uow.vehicles.get(vehicle_id, for_update=True)
            action = None if current is None else current.owner_action
            if current is None or action is None or action.commands_only:
                return
            if current.status is ConnectionStatus.NEEDS_REAUTHENTICATION:
                await save(
                    uow, current, resumed(current, reason=OWNER_ACTED, now=self._clock.now())
                )
                await uow.commit()

    async def probing(self, vehicle_id: str, *, interval: timedelta) -> bool:
        """Note that the car is being probed now, if a probe is still due (checked under its
        row lock, so two schedulers never both probe it); tell whether to probe."""
        now = self._clock.now()
        async with self._uow() as uow:
            current = await uow.vehicles.get(vehicle_id, for_update=True)
            if current is None or not probe_due(current, interval=interval, now=now):
                return False
            assert current.owner_action is not None
            action = dataclasses.replace(current.owner_action, probed_at=now)
            await uow.vehicles.update(dataclasses.replace(current, owner_action=action))
            await uow.commit()
        return True
