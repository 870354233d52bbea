"""Settings from the environment: defaults, SDK variable names, and named errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.settings import Settings, SettingsError


def test_no_configuration_means_the_embedded_defaults() -> None:
    """An empty environment: 127.0.0.1:50051, embedded simulator, SQLite under ./var."""
    settings = Settings.from_env({})
    assert settings.listen == "127.0.0.1:50051"
    assert settings.embedded_simulator
    assert settings.resolved_database_url == "sqlite+aiosqlite:///var/gateway.db"
    assert settings.policies.rate_limits.application.capacity == 120


def test_the_sdk_origin_variable_points_the_gateway_elsewhere() -> None:
    """SMARTCAR_API_ORIGIN turns the embedded simulator off; other knobs parse."""
    settings = Settings.from_env(
        {
            "SMARTCAR_API_ORIGIN": "http://127.0.0.1:9000",
            "SMARTCAR_CLIENT_SECRET": "very-secret",
            "VG_DEFAULT_MAX_AGE_S": "30",
            "VG_VEHICLE_READS": "10/6",
        }
    )
    assert not settings.embedded_simulator
    assert settings.policies.telemetry.default_max_age == timedelta(seconds=30)
    assert settings.policies.rate_limits.vehicle_reads.capacity == 10
    assert "very-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VG_READ_TIMEOUT_S", "0"),
        ("VG_READ_TIMEOUT_S", "soon"),
        ("VG_APP_REQUESTS", "120"),
        ("VG_SMARTCAR_MODE", "turbo"),
        ("VG_SIMULATOR_PORT", "1.5"),
        ("VG_SHUTDOWN_GRACE_S", "-1"),
        ("VG_WATCH_STREAMS_PER_CALLER", "0"),
        ("VG_WATCH_STREAMS_PER_CALLER", "2.5"),
        ("VG_AUDIT_RETENTION_DAYS", "30.5"),
        ("VG_AUDIT_RETENTION_DAYS", "-1"),
        ("VG_AUDIT_RETENTION_DAYS", "99999"),
    ],
)
def test_bad_values_name_their_variable(name: str, value: str) -> None:
    """Every invalid setting fails at start-up with the variable's name."""
    with pytest.raises(SettingsError, match=name):
        Settings.from_env({name: value})


def test_the_watch_stream_cap_is_configuration() -> None:
    """VG_WATCH_STREAMS_PER_CALLER sets the cap per caller; 20 when unset."""
    assert Settings.from_env({}).policies.watch.streams_per_caller == 20
    settings = Settings.from_env({"VG_WATCH_STREAMS_PER_CALLER": "3"})
    assert settings.policies.watch.streams_per_caller == 3


def test_audit_retention_defaults_to_400_days_and_0_keeps_forever() -> None:
    """VG_AUDIT_RETENTION_DAYS: 400 days unless set; 0 keeps entries forever (None)."""
    assert Settings.from_env({}).policies.audit.retention == timedelta(days=400)
    assert Settings.from_env({}).audit_retention_interval_s == 3600
    kept = Settings.from_env({"VG_AUDIT_RETENTION_DAYS": "30"}).policies.audit.retention
    assert kept == timedelta(days=30)
    assert Settings.from_env({"VG_AUDIT_RETENTION_DAYS": "0"}).policies.audit.retention is None


def test_the_poll_plan_is_configuration() -> None:
    """VG_POLL_PLAN_IDLE replaces the idle plan; the rental plan keeps its default."""
    from gateway.core.model import TelemetryField

    settings = Settings.from_env({"VG_POLL_PLAN_IDLE": "odometer=3600, lock_status=600"})
    plan = settings.policies.scheduler.plan
    assert plan.idle == {
        TelemetryField.ODOMETER: timedelta(hours=1),
        TelemetryField.LOCK_STATUS: timedelta(minutes=10),
    }
    assert plan.rental[TelemetryField.LOCATION] == timedelta(minutes=15)


@pytest.mark.parametrize("value", ["odometer", "speed=60", "odometer=-5", "odometer=soon"])
def test_a_bad_poll_plan_names_its_variable(value: str) -> None:
    """An unknown field, a missing or non-positive interval fails at start-up."""
    with pytest.raises(SettingsError, match="VG_POLL_PLAN_RENTAL"):
        Settings.from_env({"VG_POLL_PLAN_RENTAL": value})


def test_secrets_given_directly_are_kept() -> None:
    """SMARTCAR_CLIENT_SECRET and SMARTCAR_MANAGEMENT_TOKEN set directly reach the settings."""
    settings = Settings.from_env(
        {"SMARTCAR_CLIENT_SECRET": "direct-secret", "SMARTCAR_MANAGEMENT_TOKEN": "direct-token"}
    )
    assert settings.smartcar["SMARTCAR_CLIENT_SECRET"] == "direct-secret"
    assert settings.smartcar["SMARTCAR_MANAGEMENT_TOKEN"] == "direct-token"


def test_secrets_may_come_from_files(tmp_path: Path) -> None:
    """`<NAME>_FILE` reads the client secret and management token from a file (trimmed);
    the settings' repr shows neither."""
    (tmp_path / "secret").write_text("s3cret-from-file\n")
    (tmp_path / "token").write_text("mgmt-from-file")
    settings = Settings.from_env(
        {
            "SMARTCAR_CLIENT_SECRET_FILE": str(tmp_path / "secret"),
            "SMARTCAR_MANAGEMENT_TOKEN_FILE": str(tmp_path / "token"),
        }
    )
    assert settings.smartcar["SMARTCAR_CLIENT_SECRET"] == "s3cret-from-file"
    assert settings.smartcar["SMARTCAR_MANAGEMENT_TOKEN"] == "mgmt-from-file"
    assert "SMARTCAR_CLIENT_SECRET_FILE" not in settings.smartcar
    assert "from-file" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SMARTCAR_CLIENT_SECRET": "x", "SMARTCAR_CLIENT_SECRET_FILE": "f"}, "not both"),
        ({"SMARTCAR_MANAGEMENT_TOKEN_FILE": "/no/such/file"}, "cannot read /no/such/file"),
    ],
)
def test_a_secret_file_that_cannot_be_used_is_named(env: dict[str, str], message: str) -> None:
    """Both a value and a file, or an unreadable file: SettingsError naming the variable."""
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_tls_files_come_in_pairs() -> None:
    """A certificate without its key, or a client CA without TLS, is refused by name."""
    with pytest.raises(SettingsError, match="VG_TLS_CERT and VG_TLS_KEY"):
        Settings.from_env({"VG_TLS_CERT": "server.pem"})
    with pytest.raises(SettingsError, match="VG_TLS_CLIENT_CA needs"):
        Settings.from_env({"VG_TLS_CLIENT_CA": "ca.pem"})
