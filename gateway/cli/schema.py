"""`vehicle-gateway migrate-schema`: upgrade the database to the newest schema, then exit.

    vehicle-gateway migrate-schema       # reads VG_DATABASE_URL(_FILE) / VG_VAR_DIR as serve does

`serve` migrates at start-up too; this command lets a deployment do it once, as its own
step before the replicas roll (deploy/kubernetes/migrate: a Job), so that a failing
migration stops the rollout with its own log instead of crash-looping every new replica.
On PostgreSQL the upgrade holds an advisory lock (`storage.database.migrate`), so this
command and replicas starting at the same moment never run it twice.

It writes one JSON line on stdout when done: `{"event": "schema_migrated", "database":
"<backend>", "revision": "<head>"}` (never the URL: it may carry a password). Exit
status: 0 migrated (or already at the newest schema), 2 bad configuration or a database it
cannot open or upgrade (the reason on stderr, in one line).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Any

from gateway.settings import Settings, SettingsError


def register(subparsers: Any) -> None:
    """Add the `migrate-schema` sub-command."""
    parser = subparsers.add_parser(
        "migrate-schema",
        help="upgrade the database to the newest schema and exit (serve does it at start too)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    del args
    from gateway.wiring import migrate_database

    try:
        settings = Settings.from_env(os.environ)
        revision = asyncio.run(migrate_database(settings))
    except SettingsError as error:
        sys.stderr.write(f"invalid configuration: {error}\n")
        return 2
    backend = settings.resolved_database_url.split("://", 1)[0].split("+", 1)[0]
    line = {"event": "schema_migrated", "database": backend, "revision": revision}
    sys.stdout.write(json.dumps(line) + "\n")
    return 0
