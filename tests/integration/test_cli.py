"""The command line against bad configuration and real SQLite files: one line and exit
status 2 for a bad setting (never a traceback), no database created where none exists, and
`keys status` that reads only and fails when a needed key is missing."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text

from gateway.app import running_gateway
from gateway.cli import main
from gateway.edge.clock import ManualClock
from gateway.settings import Settings, SettingsError
from storage.crypto import Keyring, TokenCipher
from storage.database import alembic_config, create_engine, migrate
from storage.uow import unit_of_work_factory
from tests.integration.storage.builders import grant

ROOT = Path(__file__).resolve().parents[2]
OLD = "old:" + base64.urlsafe_b64encode(b"o" * 32).decode().rstrip("=")
NEW = "new:" + base64.urlsafe_b64encode(b"n" * 32).decode().rstrip("=")
START = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def run_cli(
    arguments: list[str], cwd: Path, **environment: str
) -> subprocess.CompletedProcess[str]:
    """Run `vehicle-gateway` in a fresh process with only `environment` set."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *arguments],
        cwd=cwd,
        env={**env, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VG_TOKEN_KEYS", "k1:not-a-key"),
        ("VG_VAR_DIR", "{tmp}/a-file/var"),
        ("VG_SMARTCAR_API", "v4"),
        ("VG_MONTHLY_REQUEST_ALLOWANCE", "0"),
        ("VG_REQUEST_RESERVE", "60%"),
    ],
)
def test_serve_with_a_bad_setting_exits_2_with_one_line_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    """Bad configuration, found reading the settings (a malformed key) or starting (a var
    directory that cannot be made): exit status 2, exactly one error line naming the
    variable, no traceback."""
    (tmp_path / "a-file").write_text("not a directory")
    finished = run_cli(["serve"], tmp_path, **{variable: value.format(tmp=tmp_path)})
    output = finished.stdout + finished.stderr
    assert finished.returncode == 2, output
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "invalid configuration" in line]
    assert len(errors) == 1, output
    assert variable in errors[0]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VG_DATABASE_URL", "postgresql+asyncpg://gw:hunter2@127.0.0.1:1/gateway"),
        ("VG_VAR_DIR", "{tmp}/a-file/var"),
        ("VG_ACCESS_POLICY", "{tmp}/no-such-policy.toml"),
        ("SMARTCAR_API_ORIGIN", "http://127.0.0.1:1"),
    ],
)
async def test_a_setting_unusable_at_start_up_is_a_settings_error_naming_it(
    tmp_path: Path, variable: str, value: str
) -> None:
    """Values that are well-formed but unusable (no database there, a file where the var
    directory goes, no policy file, Smartcar without credentials) stop the start with a
    SettingsError naming the variable (which `serve` reports in one line, exit 2), never
    repeating a password."""
    (tmp_path / "a-file").write_text("not a directory")
    environment = {"VG_VAR_DIR": str(tmp_path / "var"), "VG_LISTEN": "127.0.0.1:0"}
    settings = Settings.from_env({**environment, variable: value.format(tmp=tmp_path)})
    with pytest.raises(SettingsError) as refused:
        async with running_gateway(settings, clock=ManualClock(START)):
            pass
    assert variable in str(refused.value)
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize(
    "command", [["keys", "status"], ["keys", "rotate"], ["audit"], ["migrate-v3", "--dry-run"]]
)
def test_the_other_commands_refuse_a_malformed_key_in_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """A malformed VG_TOKEN_KEYS: `keys` and `audit` exit 2 with one line naming it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VG_TOKEN_KEYS", "garbage")
    assert main(command) == 2
    assert capsys.readouterr().err.splitlines() == [
        "invalid configuration: VG_TOKEN_KEYS: key entry 1 is not KEY_ID:BASE64URL_KEY"
    ]


@pytest.mark.parametrize("command", [["audit"], ["keys", "status"], ["keys", "rotate"]])
def test_outside_the_project_nothing_is_created(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
) -> None:
    """Run where no gateway database is, the CLI says so in one line, exits non-zero, and
    leaves the directory as it found it (no ./var, no database, no key)."""
    monkeypatch.chdir(tmp_path)
    for name in ("VG_VAR_DIR", "VG_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VG_TOKEN_KEYS", OLD)
    assert main(command) == 2
    error = capsys.readouterr().err
    assert error.splitlines() == [
        f"vehicle-gateway {command[0]}: no gateway database at var/gateway.db"
    ]
    assert list(tmp_path.iterdir()) == []


async def store_a_pair_under(database: Path, key: str, *, revision: str = "head") -> None:
    """Create the database at `revision` and, at head, store one token pair under `key`."""
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        await migrate(engine, revision)
        if revision == "head":
            cipher = TokenCipher(Keyring.from_config(key))
            async with unit_of_work_factory(engine, cipher)() as uow:
                await uow.grants.add(grant("g1"))
                await uow.commit()
    finally:
        await engine.dispose()


async def revision_of(database: Path) -> str:
    """Return the Alembic revision the database is at."""
    engine = create_engine(f"sqlite+aiosqlite:///{database}")
    try:
        async with engine.connect() as connection:
            version = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return str(version.scalar_one())
    finally:
        await engine.dispose()


def test_keys_status_fails_naming_a_key_the_stored_pairs_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pair stored under `old`, VG_TOKEN_KEYS holding only `new`: `keys status` exits 1,
    names `old` on stderr and lists it as missing in its report; with both keys, 0."""
    asyncio.run(store_a_pair_under(tmp_path / "var" / "gateway.db", OLD))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VG_TOKEN_KEYS", NEW)
    assert main(["keys", "status"]) == 1
    report = capsys.readouterr()
    assert json.loads(report.out)["missing"] == ["old"]
    assert report.err.splitlines() == [
        "VG_TOKEN_KEYS lacks key(s) old, needed by 1 stored token(s)"
    ]
    monkeypatch.setenv("VG_TOKEN_KEYS", f"{NEW},{OLD}")
    assert main(["keys", "status"]) == 0


def test_keys_status_migrates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a database at an older schema, `keys status` says so and leaves it at that
    revision: it only reads (a serving replica, not a status check, migrates)."""
    database = tmp_path / "var" / "gateway.db"
    asyncio.run(store_a_pair_under(database, OLD, revision="0001"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VG_TOKEN_KEYS", OLD)
    assert main(["keys", "status"]) == 2
    assert "schema revision 0001" in capsys.readouterr().err
    assert asyncio.run(revision_of(database)) == "0001"


def test_migrate_v3_needs_smartcar_configured_not_the_embedded_simulator(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The embedded simulator lives inside `serve`: migrate-v3 without SMARTCAR_API_ORIGIN
    exits 2 with one line naming it, and creates nothing."""
    monkeypatch.chdir(tmp_path)
    for name in ("VG_VAR_DIR", "VG_DATABASE_URL", "SMARTCAR_API_ORIGIN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VG_TOKEN_KEYS", OLD)
    assert main(["migrate-v3", "--dry-run"]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("invalid configuration: SMARTCAR_API_ORIGIN is not set")
    assert list(tmp_path.iterdir()) == []


def test_migrate_v3_without_a_database_says_so_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pointed at Smartcar but run where no gateway database is: one line, exit 2."""
    monkeypatch.chdir(tmp_path)
    for name in ("VG_VAR_DIR", "VG_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    smartcar = {
        "SMARTCAR_API_ORIGIN": "http://127.0.0.1:1",
        "SMARTCAR_AUTH_ORIGIN": "http://127.0.0.1:1/oauth/token",
        "SMARTCAR_CONNECT_ORIGIN": "http://127.0.0.1:1",
        "SMARTCAR_VEHICLE_API_V3_ORIGIN": "http://127.0.0.1:1",
        "SMARTCAR_IAM_ORIGIN": "http://127.0.0.1:1",
        "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": "http://127.0.0.1:1",
        "SMARTCAR_CLIENT_ID": "client",
        "SMARTCAR_CLIENT_SECRET": "secret",
        "SMARTCAR_REDIRECT_URI": "https://fleet.invalid/callback",
        "VG_TOKEN_KEYS": OLD,
    }
    for name, value in smartcar.items():
        monkeypatch.setenv(name, value)
    assert main(["migrate-v3"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "vehicle-gateway migrate-v3: no gateway database at var/gateway.db"
    ]
    assert list(tmp_path.iterdir()) == []


def test_migrate_schema_creates_and_upgrades_the_database_then_exits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`migrate-schema` (deploy/kubernetes/migrate's Job) brings a database at an old
    revision to head, says so in one JSON line naming the backend, never the URL, and
    running it again is a no-op."""
    database = tmp_path / "var" / "gateway.db"
    asyncio.run(store_a_pair_under(database, OLD, revision="0001"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VG_DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    for _ in range(2):
        assert main(["migrate-schema"]) == 0
        line = json.loads(capsys.readouterr().out)
        assert line == {"event": "schema_migrated", "database": "sqlite", "revision": head}
    assert asyncio.run(revision_of(database)) == head


def test_migrate_schema_names_a_database_it_cannot_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database URL from a file it cannot read, or a database it cannot open: exit 2
    and one line naming the variable, never the password."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VG_DATABASE_URL_FILE", str(tmp_path / "absent"))
    assert main(["migrate-schema"]) == 2
    assert capsys.readouterr().err.startswith("invalid configuration: VG_DATABASE_URL_FILE:")
    monkeypatch.delenv("VG_DATABASE_URL_FILE")
    monkeypatch.setenv("VG_DATABASE_URL", "postgresql+asyncpg://gw:hunter2@127.0.0.1:1/gateway")
    assert main(["migrate-schema"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("invalid configuration: VG_DATABASE_URL: cannot open the database")
    assert "hunter2" not in error
