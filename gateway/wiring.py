"""The composition root's shared part: opening the gateway's storage, for the server
(`gateway.app`) and the command line (`gateway.cli`) alike, so both find the same database
the same way.

    async with open_storage(settings, migrate=True, keys=serving_keyring) as storage:
        storage.engine, storage.keyring, storage.cipher, storage.uow

`migrate=True` is the server's opening: it creates the database where the settings put it
(a SQLite file under VG_VAR_DIR unless VG_DATABASE_URL says otherwise) and upgrades it to
the newest schema; a location it cannot use is a SettingsError naming the variable that
chose it. `migrate=False` is the command line's: it opens only an existing database at the
newest schema and creates nothing, raising `storage.database.DatabaseMissing` otherwise.
Leaving the block disposes of the engine.

The keyring comes from `keys`, called once the database is open: the server's
(`serving_keyring`) is the configured one or the development key, made when missing, and
so made only where a database could be opened; the command line reads its own.

`configured_by` turns the failure to act on a configured value (a port taken, a directory
that cannot be made) into a SettingsError naming the variable: one line, no traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.settings import Settings, SettingsError
from storage.crypto import KeyConfigError, Keyring, TokenCipher, load_keyring
from storage.database import create_engine, open_existing, schema_revision
from storage.database import migrate as migrate_to_head
from storage.uow import SqlUnitOfWorkFactory, unit_of_work_factory


@dataclass(frozen=True, slots=True)
class OpenedStorage:
    """The gateway's database, open: its engine, the token keyring and its cipher, and
    units of work on the engine that encrypt tokens with that cipher."""

    engine: AsyncEngine
    keyring: Keyring
    cipher: TokenCipher
    uow: SqlUnitOfWorkFactory


@asynccontextmanager
async def open_storage(
    settings: Settings, *, migrate: bool, keys: Callable[[Settings], Keyring]
) -> AsyncIterator[OpenedStorage]:
    """Open the database the settings name (migrating it to the newest schema only when
    `migrate`), then take the keyring from `keys`; dispose of the engine on leaving."""
    url = settings.resolved_database_url
    engine = await (_create_and_migrate(settings) if migrate else open_existing(url))
    try:
        keyring = keys(settings)
        cipher = TokenCipher(keyring)
        yield OpenedStorage(
            engine=engine,
            keyring=keyring,
            cipher=cipher,
            uow=unit_of_work_factory(engine, cipher),
        )
    finally:
        await engine.dispose()


def serving_keyring(settings: Settings) -> Keyring:
    """Return the configured keyring, or the development key under the var directory
    (made when missing); an unusable one is a SettingsError naming its variable."""
    variable = "VG_TOKEN_KEYS" if settings.token_keys else "VG_VAR_DIR"
    try:
        with configured_by(variable, "read or create the development key"):
            return load_keyring(settings.token_keys, var_dir=settings.var_dir)
    except KeyConfigError as error:
        raise SettingsError(f"{variable}: {error}") from None


async def migrate_database(settings: Settings) -> str:
    """Create the database where the settings put it, upgrade it to the newest schema and
    close it; return the revision it is at (the `migrate-schema` command). An unusable
    location is a SettingsError naming the variable that chose it."""
    engine = await _create_and_migrate(settings)
    try:
        revision = await schema_revision(engine)
    finally:
        await engine.dispose()
    if revision is None:  # pragma: no cover - a migrated database always has a revision
        raise SettingsError("the database has no schema revision after migrating")
    return revision


async def _create_and_migrate(settings: Settings) -> AsyncEngine:
    """Open the database (creating a SQLite file under the var directory) and migrate it;
    an unusable location is a SettingsError naming the variable that chose it."""
    variable = "VG_DATABASE_URL" if settings.database_url else "VG_VAR_DIR"
    with configured_by(variable, "create the database's directory"):
        engine = create_engine(settings.resolved_database_url)
    try:
        await migrate_to_head(engine)
    except (OSError, OperationalError, InterfaceError) as error:
        await engine.dispose()
        # Never the URL itself: it may carry a password.
        cause = error.orig if isinstance(error, OperationalError | InterfaceError) else error
        raise SettingsError(
            f"{variable}: cannot open the database: {type(cause).__name__}: {_first_line(cause)}"
        ) from None
    except BaseException:
        await engine.dispose()
        raise
    return engine


@contextlib.contextmanager
def configured_by(variable: str, action: str) -> Iterator[None]:
    """Turn the failure to `action` with a configured value (a port taken, a directory
    that cannot be made) into a SettingsError naming `variable`: one line, no traceback."""
    try:
        yield
    except (OSError, RuntimeError) as error:  # grpc's bind failure is a RuntimeError
        detail = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise SettingsError(f"{variable}: cannot {action}: {_first_line(detail)}") from None


def _first_line(detail: object) -> str:
    """Return the first line of an error's text (`no detail` when it has none)."""
    return str(detail).strip().splitlines()[0] if str(detail).strip() else "no detail"
