"""`vehicle-gateway migrate-v3`: move the fleet's v2 connections to Smartcar API V3 while
the gateway serves (see `gateway.core.migration` for what moves and how).

    vehicle-gateway migrate-v3 --dry-run                  # what would move; writes nothing
    vehicle-gateway migrate-v3 --batch-size 100           # move every car that can move
    vehicle-gateway migrate-v3 --after car-0420 --limit 500   # resume after a stop, in parts

It reads the gateway's configuration (the same VG_* and SMARTCAR_* variables as `serve`),
opens the existing database without migrating it, and asks Smartcar with the application
token (granted and stored exactly as the servers do, so it shares theirs). Each vehicle's
result is a JSON line on stdout (`vehicle_id`, `outcome`, `reason`); the last line is the
report: counts per outcome and `last_vehicle_id`, to pass as `--after` to resume. Exit
status: 0 done (whatever was skipped), 1 some vehicle failed (run again: moved cars are
skipped), 2 bad configuration or no database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from gateway.settings import Settings, SettingsError
from storage.crypto import KeyConfigError, load_keyring

if TYPE_CHECKING:
    from gateway.core.migration import MigrationReport
    from gateway.core.ports import Clock

SOME_FAILED = 1
"""The exit status when a vehicle could not be checked or moved."""


def register(subparsers: Any) -> None:
    """Add the `migrate-v3` sub-command."""
    parser = subparsers.add_parser(
        "migrate-v3",
        help="move v2 connections to Smartcar API V3 (resumable; --dry-run writes nothing)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dry-run", action="store_true", help="check every car, move none")
    parser.add_argument("--batch-size", type=_positive, default=100, help="vehicles per read")
    parser.add_argument("--after", default=None, help="start after this vehicle id (resume)")
    parser.add_argument("--limit", type=_positive, default=None, help="examine at most N cars")
    parser.set_defaults(handler=_run)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _run(args: argparse.Namespace) -> int:
    from storage.database import DatabaseMissing

    try:
        settings = Settings.from_env(os.environ)
        load_keyring(settings.token_keys, var_dir=settings.var_dir, create=False)
    except (SettingsError, KeyConfigError) as error:
        sys.stderr.write(f"invalid configuration: {error}\n")
        return 2
    try:
        report = asyncio.run(
            migrate_fleet(
                settings,
                dry_run=args.dry_run,
                batch_size=args.batch_size,
                after_id=args.after,
                limit=args.limit,
                out=sys.stdout,
            )
        )
    except SettingsError as error:
        sys.stderr.write(f"invalid configuration: {error}\n")
        return 2
    except DatabaseMissing as missing:
        sys.stderr.write(f"vehicle-gateway migrate-v3: {missing}\n")
        return 2
    return SOME_FAILED if report.counts()["failed"] else 0


async def migrate_fleet(
    settings: Settings,
    *,
    dry_run: bool,
    batch_size: int = 100,
    after_id: str | None = None,
    limit: int | None = None,
    out: TextIO | None = None,
    clock: Clock | None = None,
) -> MigrationReport:
    """Run one migration over the configured database and Smartcar; write each vehicle's
    result and the report to `out` as JSON lines when given."""
    # Imported here: the other sub-commands never load the gateway's wiring.
    import httpx

    from gateway.app import api_v3, configured_upstream, webhook_subscriptions
    from gateway.core.migration import FleetMigration, VehicleOutcome
    from gateway.edge.clock import SystemClock
    from gateway.wiring import open_storage

    clock = clock or SystemClock()
    upstream = configured_upstream(settings)
    keyring = load_keyring(settings.token_keys, var_dir=settings.var_dir, create=False)
    async with (
        open_storage(settings, migrate=False, keys=lambda _: keyring) as storage,
        httpx.AsyncClient(timeout=settings.read_timeout_s) as http,
    ):
        tokens, v3 = api_v3(settings, upstream, http, storage.uow, clock)
        migration = FleetMigration(
            uow=storage.uow,
            smartcar=v3,
            application=tokens,
            clock=clock,
            subscriptions=webhook_subscriptions(settings, upstream, http),
        )

        async def progress(result: VehicleOutcome) -> None:
            if out is not None:
                line = {"vehicle_id": result.vehicle_id, "outcome": result.outcome.value}
                out.write(json.dumps({**line, "reason": result.reason}) + "\n")

        report = await migration.run(
            batch_size=batch_size,
            dry_run=dry_run,
            after_id=after_id,
            limit=limit,
            progress=progress,
        )
    if out is not None:
        summary = {"dry_run": dry_run, **report.counts(), "last_vehicle_id": report.last_vehicle_id}
        out.write(json.dumps({"report": summary}) + "\n")
    return report
