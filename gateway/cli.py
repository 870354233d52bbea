"""The `vehicle-gateway` command line: sub-commands for the service and its simulator."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every sub-command registered."""
    parser = argparse.ArgumentParser(prog="vehicle-gateway", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    from clients.simulator.cli import register as register_simulator
    from gateway.audit_cli import register as register_audit
    from gateway.keys_cli import register as register_keys
    from gateway.serve import register as register_serve

    register_serve(sub)
    register_simulator(sub)
    register_audit(sub)
    register_keys(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command named on the command line and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = args.handler
    return int(handler(args))


if __name__ == "__main__":
    sys.exit(main())
