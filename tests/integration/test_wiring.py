"""Opening storage, as the server and the command line share it (gateway.wiring), on real
SQLite files: the server's opening creates and migrates, the command line's creates nothing."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError
from gateway.wiring import open_storage, serving_keyring
from storage.crypto import Keyring
from storage.database import DatabaseMissing
from tests.integration.storage.builders import grant

KEY = "k1:" + base64.urlsafe_b64encode(b"k" * 32).decode().rstrip("=")


def settings_in(var_dir: Path) -> Settings:
    """Settings that keep everything under `var_dir`, with one configured token key."""
    return Settings.from_env({"VG_VAR_DIR": str(var_dir), "VG_TOKEN_KEYS": KEY})


def configured(settings: Settings) -> Keyring:
    """The configured keyring, as the `keys` commands read it."""
    return Keyring.from_config(KEY)


async def test_the_command_line_reads_what_the_server_opening_created(tmp_path: Path) -> None:
    """The server's opening creates and migrates the database; a token pair stored through
    its units of work reads back through the command line's opening, under the same key."""
    settings = settings_in(tmp_path / "var")
    async with open_storage(settings, migrate=True, keys=serving_keyring) as storage:
        assert storage.keyring.active_key_id == "k1"
        async with storage.uow() as uow:
            await uow.grants.add(grant("g1"))
            await uow.commit()
    async with (
        open_storage(settings, migrate=False, keys=configured) as storage,
        storage.uow.reader() as uow,
    ):
        stored = await uow.grants.get("g1")
    assert stored == grant("g1")


def test_the_command_line_opening_creates_nothing(tmp_path: Path) -> None:
    """Without a database there, the read-only opening raises DatabaseMissing, creates no
    directory or file, and never asks for the keyring."""
    asked: list[Settings] = []

    def keys(settings: Settings) -> Keyring:
        asked.append(settings)
        return configured(settings)

    async def opening() -> None:
        async with open_storage(settings_in(tmp_path / "var"), migrate=False, keys=keys):
            pass

    with pytest.raises(DatabaseMissing, match="no gateway database"):
        asyncio.run(opening())
    assert list(tmp_path.iterdir()) == []
    assert asked == []


async def test_the_servers_opening_names_the_variable_of_an_unusable_location(
    tmp_path: Path,
) -> None:
    """A var directory that cannot be made is a SettingsError naming VG_VAR_DIR, before
    any key is read or made."""
    asked: list[Settings] = []

    def keys(settings: Settings) -> Keyring:
        asked.append(settings)
        return serving_keyring(settings)

    (tmp_path / "a-file").write_text("not a directory")
    settings = settings_in(tmp_path / "a-file" / "var")
    with pytest.raises(SettingsError, match="VG_VAR_DIR: cannot create the database's"):
        async with open_storage(settings, migrate=True, keys=keys):
            pass
    assert asked == []
