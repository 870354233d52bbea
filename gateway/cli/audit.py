"""`vehicle-gateway audit`: list the audit trail (actions on cars), newest first.

Reads the gateway's database (VG_DATABASE_URL / VG_VAR_DIR, as `serve` does), creating
nothing: without a database there (or one never migrated) it says so in one line and exits 2.
It prints one JSON object per line: id, at, caller, method, vehicle_id, request_id, outcome,
duration_ms, reason. Filters combine; `--before-id` pages back from an entry.

    vehicle-gateway audit --vehicle car-1 --since 2026-11-01T00:00:00Z --limit 50
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from datetime import UTC, datetime
from typing import Any

from gateway.core.audit import AUDITED_METHODS, MAX_PAGE, AuditTrail
from gateway.core.model import AuditEntry, AuditQuery
from gateway.edge.clock import SystemClock
from gateway.settings import Settings, SettingsError
from storage.crypto import Keyring


def register(subparsers: Any) -> None:
    """Add the `audit` sub-command."""
    parser = subparsers.add_parser(
        "audit", help="list the audit trail of actions on cars (JSON lines, newest first)"
    )
    parser.add_argument("--vehicle", help="only this fleet vehicle id")
    parser.add_argument("--caller", help="only this caller (its name in the access policy)")
    parser.add_argument("--method", choices=sorted(AUDITED_METHODS), help="only this RPC")
    parser.add_argument("--since", type=_moment, help="only entries at or after (ISO 8601)")
    parser.add_argument("--before-id", type=int, help="only entries older than this id")
    parser.add_argument("--limit", type=int, default=100, help=f"at most (≤ {MAX_PAGE})")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the matching entries; 2 on a configuration error."""
    try:
        settings = Settings.from_env(os.environ)
    except SettingsError as error:
        sys.stderr.write(f"invalid configuration: {error}\n")
        return 2
    query = AuditQuery(
        vehicle_id=args.vehicle,
        caller=args.caller,
        method=args.method,
        since=args.since,
        before_id=args.before_id,
        limit=args.limit,
    )
    from storage.database import DatabaseMissing  # here: other sub-commands never load it

    try:
        entries = asyncio.run(_find(settings, query))
    except DatabaseMissing as missing:
        sys.stderr.write(f"vehicle-gateway audit: {missing}\n")
        return 2
    for entry in entries:
        sys.stdout.write(json.dumps(_as_json(entry)) + "\n")
    return 0


async def _find(settings: Settings, query: AuditQuery) -> list[AuditEntry]:
    from gateway.wiring import open_storage

    async with open_storage(settings, migrate=False, keys=_throwaway_keyring) as storage:
        trail = AuditTrail(uow=storage.uow, clock=SystemClock())
        return await trail.find(query)


def _throwaway_keyring(_: Settings) -> Keyring:
    """The audit trail holds no tokens: a throwaway key, so that reading it never needs
    (nor creates) the token keys."""
    return Keyring({"audit-cli": secrets.token_bytes(32)}, active="audit-cli")


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


def _as_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "caller": entry.caller,
        "method": entry.method,
        "vehicle_id": entry.vehicle_id,
        "request_id": entry.request_id,
        "outcome": entry.outcome,
        "duration_ms": entry.duration_ms,
        "reason": entry.reason,
    }
