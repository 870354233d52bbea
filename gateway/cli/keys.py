"""`vehicle-gateway keys`: token encryption keys — generate one, see which keys stored
tokens are under, re-encrypt them under the active key (see storage.keys for the rolling
procedure that rotates keys without downtime).

    vehicle-gateway keys generate --id k2026-12      # prints a new VG_TOKEN_KEYS entry
    vehicle-gateway keys status                      # {"active": …, "keys": {id: tokens}}
    vehicle-gateway keys rotate --batch-size 100     # re-encrypt under the active key

The stored tokens are the owners' token pairs and the API V3 application tokens. `status`
lists as `retirable` the configured keys no stored token uses any more: only those may be
dropped from VG_TOKEN_KEYS, and as `missing` the keys stored tokens need that VG_TOKEN_KEYS
lacks (then it exits 1, naming them: those connections are lost at their next use until
the key is back). It only reads: it migrates nothing and creates no database, no
development key. Exit status: 0 fine, 1 a needed key is missing, 2 bad configuration or no
database; `rotate` exits 1 when a stored token is under a key it lacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.settings import Settings, SettingsError
from storage.crypto import (
    KeyConfigError,
    Keyring,
    TokenDecryptionError,
    generate_key_entry,
    load_keyring,
)

if TYPE_CHECKING:
    from gateway.wiring import OpenedStorage

MISSING_KEY = 1
"""`keys status`'s exit status when stored tokens need a key VG_TOKEN_KEYS lacks."""


def register(subparsers: Any) -> None:
    """Add the `keys` sub-command and its actions."""
    parser = subparsers.add_parser("keys", help="token encryption keys: generate, status, rotate")
    actions = parser.add_subparsers(dest="action", required=True)
    generate = actions.add_parser("generate", help="print a new key entry for VG_TOKEN_KEYS")
    generate.add_argument("--id", default=f"k{datetime.now(UTC):%Y%m%d%H%M}", help="its key id")
    generate.set_defaults(handler=_generate)
    status = actions.add_parser("status", help="how many stored tokens each key holds")
    status.set_defaults(handler=_status)
    rotate = actions.add_parser("rotate", help="re-encrypt stored tokens under the active key")
    rotate.add_argument("--batch-size", type=int, default=100, help="rows per transaction")
    rotate.set_defaults(handler=_rotate)


def _generate(args: argparse.Namespace) -> int:
    try:
        entry = generate_key_entry(args.id)
        Keyring.from_config(entry)
    except KeyConfigError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    sys.stdout.write(entry + "\n")
    return 0


def _status(_: argparse.Namespace) -> int:
    return _run(_usage)


def _rotate(args: argparse.Namespace) -> int:
    async def rotate(storage: OpenedStorage) -> dict[str, Any]:
        from storage.keys import reencrypt

        report = await reencrypt(storage.engine, storage.cipher, batch_size=args.batch_size)
        usage = await _usage(storage)
        return {
            "reencrypted": report.reencrypted,
            "skipped": report.skipped,
            "batches": report.batches,
            **usage,
        }

    return _run(rotate)


async def _usage(storage: OpenedStorage) -> dict[str, Any]:
    from storage.keys import key_usage

    usage = await key_usage(storage.engine)
    keyring = storage.keyring
    unused = [k for k in keyring.key_ids if k != keyring.active_key_id and not usage.get(k)]
    missing = sorted(set(usage) - set(keyring.key_ids))
    return {"active": keyring.active_key_id, "keys": usage, "retirable": unused, "missing": missing}


def _run(action: Callable[[OpenedStorage], Awaitable[dict[str, Any]]]) -> int:
    """Run `action` on the existing database with the configured keys, print its report,
    and return the exit status."""
    # Imported here: the other sub-commands never load the storage wiring.
    from gateway.wiring import open_storage
    from storage.database import DatabaseMissing

    try:
        settings = Settings.from_env(os.environ)
        keyring = load_keyring(settings.token_keys, var_dir=settings.var_dir, create=False)
    except (SettingsError, KeyConfigError) as error:
        sys.stderr.write(f"invalid configuration: {error}\n")
        return 2

    async def on_storage() -> dict[str, Any]:
        # The keys are read first: a bad configuration is reported before a missing database.
        async with open_storage(settings, migrate=False, keys=lambda _: keyring) as storage:
            return await action(storage)

    try:
        result = asyncio.run(on_storage())
    except DatabaseMissing as missing:
        sys.stderr.write(f"vehicle-gateway keys: {missing}\n")
        return 2
    except TokenDecryptionError as undecryptable:  # rotate: a pair under a key we lack
        sys.stderr.write(f"vehicle-gateway keys: cannot re-encrypt: {undecryptable}\n")
        return MISSING_KEY
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    if result.get("missing"):
        needed = ", ".join(result["missing"])
        pairs = sum(result["keys"][key] for key in result["missing"])
        sys.stderr.write(
            f"VG_TOKEN_KEYS lacks key(s) {needed}, needed by {pairs} stored token(s)\n"
        )
        return MISSING_KEY
    return 0
