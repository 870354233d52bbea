"""The `vehicle-gateway` command line: sub-commands for the service and its simulator.

    serve       gateway.cli.serve        run the gateway (gateway.app wires it)
    simulator   clients.simulator.cli    run the Smartcar simulator alone
    audit       gateway.cli.audit        list the audit trail, reading the database only
    keys        gateway.cli.keys         token encryption keys: generate, status, rotate
    migrate-v3  gateway.cli.migrate      move v2 connections to Smartcar API V3
    migrate-schema gateway.cli.schema    upgrade the database to the newest schema, then exit

The commands that reach the database open it as the server does, through
`gateway.wiring.open_storage`; only `serve` and `migrate-schema` migrate it.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="vehicle-gateway",
        description="The `vehicle-gateway` command line: sub-commands for the service and "
        "its simulator.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    from clients.simulator.cli import register as register_simulator
    from gateway.cli.audit import register as register_audit
    from gateway.cli.keys import register as register_keys
    from gateway.cli.migrate import register as register_migrate
    from gateway.cli.schema import register as register_schema
    from gateway.cli.serve import register as register_serve

    register_serve(sub)
    register_simulator(sub)
    register_audit(sub)
    register_keys(sub)
    register_migrate(sub)
    register_schema(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    return int(handler(args))
