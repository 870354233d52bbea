"""Settings from the environment: defaults, SDK variable names, and named errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from gateway.core.model import SmartcarApi
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


def test_the_watch_stream_cap_is_configuration() -> None:
    """VG_WATCH_STREAMS_PER_CALLER sets the cap per caller; 20 when unset."""
    assert Settings.from_env({}).policies.watch.streams_per_caller == 20
    settings = Settings.from_env({"VG_WATCH_STREAMS_PER_CALLER": "3"})
    assert settings.policies.watch.streams_per_caller == 3


def test_rental_readings_are_configuration() -> None:
    """VG_RENTAL_READING_MAX_AGE_S, VG_RENTAL_READING_WAIT_S and
    VG_RENTAL_FINAL_READING_GIVE_UP_S set the rental reading policy; 60 s, 5 s and a day
    when unset; a wait of 0 means not waiting."""
    default = Settings.from_env({}).policies.rentals
    assert (default.max_age, default.wait, default.give_up_after) == (
        timedelta(seconds=60),
        timedelta(seconds=5),
        timedelta(days=1),
    )
    policy = Settings.from_env(
        {
            "VG_RENTAL_READING_MAX_AGE_S": "120",
            "VG_RENTAL_READING_WAIT_S": "0",
            "VG_RENTAL_FINAL_READING_GIVE_UP_S": "7200",
        }
    ).policies.rentals
    assert (policy.max_age, policy.wait, policy.give_up_after) == (
        timedelta(seconds=120),
        timedelta(0),
        timedelta(hours=2),
    )


def test_audit_retention_defaults_to_400_days_and_0_keeps_forever() -> None:
    """VG_AUDIT_RETENTION_DAYS: 400 days unless set; 0 keeps entries forever (None)."""
    assert Settings.from_env({}).policies.audit.retention == timedelta(days=400)
    assert Settings.from_env({}).audit_retention_interval_s == 3600
    kept = Settings.from_env({"VG_AUDIT_RETENTION_DAYS": "30"}).policies.audit.retention
    assert kept == timedelta(days=30)
    assert Settings.from_env({"VG_AUDIT_RETENTION_DAYS": "0"}).policies.audit.retention is None


def test_vehicle_events_are_configuration() -> None:
    """Events are kept 7 days (0: forever) and pruned hourly; fuel is low below 15 %,
    charge below 20 %, unless set; streams look for new rows every 0.5 s."""
    default = Settings.from_env({})
    assert default.policies.event_retention.retention == timedelta(days=7)
    assert default.event_retention_interval_s == 3600
    assert (
        default.policies.low_levels.low_fuel_percent,
        default.policies.low_levels.low_charge_percent,
    ) == (15, 20)
    assert default.policies.watch.poll_interval_s == 0.5
    tuned = Settings.from_env(
        {
            "VG_EVENT_RETENTION_DAYS": "0",
            "VG_LOW_FUEL_PERCENT": "10",
            "VG_LOW_CHARGE_PERCENT": "12.5",
            "VG_WATCH_POLL_INTERVAL_S": "0.1",
        }
    )
    assert tuned.policies.event_retention.retention is None
    assert (
        tuned.policies.low_levels.low_fuel_percent,
        tuned.policies.low_levels.low_charge_percent,
    ) == (10, 12.5)
    assert tuned.policies.watch.poll_interval_s == 0.1


def test_the_request_budget_is_configuration() -> None:
    """VG_MONTHLY_REQUEST_ALLOWANCE sets the fleet's allowance (500 unset); the reserve is
    10 % of each car's allowance, at least 20, unless VG_REQUEST_RESERVE says otherwise."""
    default = Settings.from_env({}).policies.budget
    assert (default.monthly_allowance, default.reserve_for(500)) == (500, 50)
    assert default.reserve_for(100) == 20  # the floor
    assert default.reserve_for(30) == 15  # never more than half a car's allowance
    budget = Settings.from_env({"VG_MONTHLY_REQUEST_ALLOWANCE": "1000"}).policies.budget
    assert (budget.monthly_allowance, budget.reserve_for(1000)) == (1000, 100)
    share = Settings.from_env({"VG_REQUEST_RESERVE": " 25% "}).policies.budget
    assert share.reserve_for(500) == 125
    fixed = Settings.from_env({"VG_REQUEST_RESERVE": "40"}).policies.budget
    assert (fixed.reserve_for(500), fixed.reserve_for(1000), fixed.reserve_for(60)) == (40, 40, 30)
    assert Settings.from_env({"VG_REQUEST_RESERVE": "0"}).policies.budget.reserve_for(500) == 0
    assert default.paced
    assert not Settings.from_env({"VG_REQUEST_PACING": "off"}).policies.budget.paced
    assert Settings.from_env({}).policies.telemetry.spacing.enabled
    spaced = Settings.from_env({"VG_READ_SPACING": "off"}).policies.telemetry.spacing
    assert not spaced.enabled


def test_a_reserve_beyond_half_the_allowance_is_refused_naming_both() -> None:
    """A fixed reserve is checked against the allowance set beside it."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"VG_MONTHLY_REQUEST_ALLOWANCE": "100", "VG_REQUEST_RESERVE": "60"})
    message = str(refused.value)
    assert "VG_REQUEST_RESERVE" in message
    assert "VG_MONTHLY_REQUEST_ALLOWANCE" in message
    fine = {"VG_MONTHLY_REQUEST_ALLOWANCE": "1000", "VG_REQUEST_RESERVE": "300"}
    assert Settings.from_env(fine).policies.budget.reserve_for(1000) == 300


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


def test_keys_and_urls_may_come_from_files(tmp_path: Path) -> None:
    """VG_TOKEN_KEYS_FILE, VG_DATABASE_URL_FILE and VG_REDIS_URL_FILE read their values from
    files (trimmed), as a mounted Kubernetes Secret gives them; the repr shows none."""
    key = "k1:" + "A" * 43 + "="
    (tmp_path / "keys").write_text(key + "\n")
    (tmp_path / "db").write_text("postgresql+asyncpg://gw:pw-from-file@db/gateway\n")
    (tmp_path / "redis").write_text("redis://:pw-from-file@cache:6379/0")
    settings = Settings.from_env(
        {
            "VG_TOKEN_KEYS_FILE": str(tmp_path / "keys"),
            "VG_DATABASE_URL_FILE": str(tmp_path / "db"),
            "VG_REDIS_URL_FILE": str(tmp_path / "redis"),
        }
    )
    assert settings.token_keys == key
    assert settings.database_url == "postgresql+asyncpg://gw:pw-from-file@db/gateway"
    assert settings.redis_url == "redis://:pw-from-file@cache:6379/0"
    assert "from-file" not in repr(settings)
    assert key not in repr(settings)


@pytest.mark.parametrize("name", ["VG_TOKEN_KEYS", "VG_DATABASE_URL", "VG_REDIS_URL"])
def test_a_key_or_url_file_fails_as_the_smartcar_secret_files_do(tmp_path: Path, name: str) -> None:
    """Both the value and its file, an unreadable file, an empty one: one SettingsError
    naming the variable (and the path), never the content; a bad value from a file is
    judged as the variable itself is, without echoing it."""
    secret = tmp_path / "secret"
    secret.write_text("  \n")
    for env, message in (
        ({name: "x", f"{name}_FILE": str(secret)}, f"set {name} or {name}_FILE, not both"),
        ({f"{name}_FILE": str(tmp_path / "absent")}, f"{name}_FILE: cannot read"),
        ({f"{name}_FILE": str(secret)}, f"{name}_FILE: {secret} is empty"),
    ):
        with pytest.raises(SettingsError, match=message):
            Settings.from_env(env)
    secret.write_text("mysql://user:hunter2@db/x")
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({f"{name}_FILE": str(secret)})
    assert name in str(refused.value)
    assert "hunter2" not in str(refused.value)


def test_the_health_port_is_loopback_unless_exposed() -> None:
    """VG_HEALTH_EXPOSE is off by default; on lets the health port bind another address
    (checked at start-up, tests/rpc/test_operations.py)."""
    assert Settings.from_env({}).health_expose is False
    assert Settings.from_env({"VG_HEALTH_EXPOSE": "on"}).health_expose is True
    assert Settings.from_env({"VG_HEALTH_EXPOSE": "off"}).health_expose is False


def test_required_permissions_default_to_what_the_rental_flow_needs() -> None:
    """Unset, Connect marks the rental flow's permissions required (not fuel nor battery,
    which depend on the car); a list replaces them, `none` marks none."""
    default = Settings.from_env({}).policies.connect.required_permissions
    assert default == {
        "read_vehicle_info",
        "read_vin",
        "read_location",
        "read_odometer",
        "read_security",
        "control_security",
    }
    chosen = Settings.from_env({"VG_REQUIRED_PERMISSIONS": " control_security , read_fuel"})
    assert chosen.policies.connect.required_permissions == {"control_security", "read_fuel"}
    none = Settings.from_env({"VG_REQUIRED_PERMISSIONS": "none"})
    assert none.policies.connect.required_permissions == frozenset()


def test_v3_is_the_default_api_and_v2_may_be_chosen() -> None:
    """VG_SMARTCAR_API: v3 unless set; v2 selects the deprecated API."""
    assert Settings.from_env({}).smartcar_api == "v3"
    assert Settings.from_env({"VG_SMARTCAR_API": "v2"}).smartcar_api == "v2"
    assert Settings.from_env({}).v3_read_billing == "request"
    assert Settings.from_env({"VG_V3_READ_BILLING": "signal"}).v3_read_billing == "signal"
    assert Settings.from_env({}).policies.connect.api is SmartcarApi.V3
    assert Settings.from_env({"VG_SMARTCAR_API": "v2"}).policies.connect.api is SmartcarApi.V2


def test_the_v3_origins_are_carried_as_given() -> None:
    """The three V3 origins reach the settings under the SDK's and the fixed names."""
    env = {
        "SMARTCAR_VEHICLE_API_V3_ORIGIN": "http://127.0.0.1:9000",
        "SMARTCAR_IAM_ORIGIN": "http://127.0.0.1:9001",
        "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": "http://127.0.0.1:9002",
    }
    assert Settings.from_env(env).smartcar == env


def test_more_client_secrets_come_after_the_first_and_stay_hidden(tmp_path: Path) -> None:
    """VG_SMARTCAR_CLIENT_SECRETS adds secrets in order, trimmed; the file variant takes
    commas or lines; neither shows in the settings' repr."""
    settings = Settings.from_env(
        {"SMARTCAR_CLIENT_SECRET": "cs-first", "VG_SMARTCAR_CLIENT_SECRETS": " cs-2 , cs-3 "}
    )
    assert [s.reveal() for s in settings.additional_client_secrets] == ["cs-2", "cs-3"]
    assert "cs-" not in repr(settings)
    (tmp_path / "secrets").write_text("cs-file-2\ncs-file-3\n")
    from_file = Settings.from_env({"VG_SMARTCAR_CLIENT_SECRETS_FILE": str(tmp_path / "secrets")})
    assert [s.reveal() for s in from_file.additional_client_secrets] == ["cs-file-2", "cs-file-3"]
    assert Settings.from_env({}).additional_client_secrets == ()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"SMARTCAR_CLIENT_SECRET": "cs-a", "VG_SMARTCAR_CLIENT_SECRETS": "cs-b,cs-a"},
            "repeats",
        ),
        (
            {"SMARTCAR_CLIENT_SECRET": "cs-a", "VG_SMARTCAR_CLIENT_SECRETS": "cs-b,cs-c,cs-d"},
            "at most 3",
        ),
        (
            {"VG_SMARTCAR_CLIENT_SECRETS": "cs-b", "VG_SMARTCAR_CLIENT_SECRETS_FILE": "f"},
            "not both",
        ),
    ],
)
def test_client_secrets_that_cannot_all_be_valid_are_refused(
    env: dict[str, str], message: str
) -> None:
    """A secret listed twice (or SMARTCAR_CLIENT_SECRET again), more than Smartcar's three,
    or both the list and its file: SettingsError, no secret in it."""
    with pytest.raises(SettingsError, match=message) as refused:
        Settings.from_env(env)
    assert "cs-" not in str(refused.value)


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


BAD_VALUES: dict[str, list[str]] = {
    "VG_LISTEN": ["nonsense", "127.0.0.1:99999", "127.0.0.1:port", ":50051"],
    "VG_DATABASE_URL": ["not a url", "mysql://u:pw@db/gateway"],
    "VG_TOKEN_KEYS": ["garbage", "k1:not-base64!", "k1:" + "A" * 10, "k1:,k1:"],
    "VG_SMARTCAR_MODE": ["turbo"],
    "VG_SMARTCAR_API": ["v4", "3"],
    "VG_V3_READ_BILLING": ["signals", "call"],
    "VG_REQUIRED_PERMISSIONS": ["read_location,,read_odometer", "drop_tables", "read_speedometer"],
    "VG_SMARTCAR_WEBHOOK_ID": ["has space", "x" * 129, "näme"],
    "VG_SMARTCAR_CLIENT_SECRETS": ["cs-one,,cs-two", "cs-one,cs-one", "cs-1,cs-2,cs-3,cs-4"],
    "VG_SMARTCAR_CLIENT_SECRETS_FILE": ["/no/such/secrets-file"],
    "VG_TOKEN_KEYS_FILE": ["/no/such/keys-file"],
    "VG_DATABASE_URL_FILE": ["/no/such/url-file"],
    "VG_REDIS_URL_FILE": ["/no/such/url-file"],
    "VG_HEALTH_EXPOSE": ["yes", "ON!"],
    "VG_SIMULATOR_PORT": ["1.5", "70000", "-1"],
    "VG_SIMULATOR_COMMAND_LATENCY_S": ["soon", "nan"],
    "VG_READ_TIMEOUT_S": ["0", "soon"],
    "VG_COMMAND_TIMEOUT_S": ["0", "inf"],
    "VG_DEFAULT_MAX_AGE_S": ["-1"],
    "VG_CACHE_VEHICLES": ["0", "1.5", "many"],
    "VG_MONTHLY_REQUEST_ALLOWANCE": ["0", "-5", "500.5", "lots", "1000001"],
    "VG_REQUEST_RESERVE": ["ten", "-1", "10.5%", "51%", "%", "251", "1e2"],
    "VG_VEHICLE_READS": ["4", "0/15", "4/0"],
    "VG_VEHICLE_COMMANDS": ["x/y"],
    "VG_APP_REQUESTS": ["120"],
    "VG_REFRESH_MARGIN_S": ["1e400"],
    "VG_REFRESH_CLAIM_TTL_S": ["0"],
    "VG_SHUTDOWN_GRACE_S": ["-1"],
    "VG_RENEWAL_INTERVAL_S": ["hourly"],
    "VG_SCHEDULER_INTERVAL_S": ["-60"],
    "VG_SCHEDULER_CONCURRENCY": ["0", "2.5"],
    "VG_RENTAL_READING_MAX_AGE_S": ["-1", "a minute"],
    "VG_RENTAL_READING_WAIT_S": ["-0.5", "inf"],
    "VG_RENTAL_FINAL_READING_GIVE_UP_S": ["0", "nan"],
    "VG_POLL_PLAN_RENTAL": ["speed=60"],
    "VG_POLL_PLAN_IDLE": ["odometer=0"],
    "VG_WEBHOOK_LISTEN": ["abc", "127.0.0.1:http"],
    "VG_REDIS_URL": ["localhost:6379", "http://cache:6379/0"],
    "VG_REDIS_FAILURE": ["maybe"],
    "VG_METRICS_LISTEN": ["x:y", "127.0.0.1:65536"],
    "VG_TLS_CERT": ["server.pem"],  # without VG_TLS_KEY
    "VG_TLS_KEY": ["server.key"],  # without VG_TLS_CERT
    "VG_TLS_CLIENT_CA": ["ca.pem"],  # without TLS
    "VG_LOG_LEVEL": ["LOUD"],
    "VG_ACCESS_LOG": ["none", "ALL"],
    "VG_REQUEST_PACING": ["yes", "ON"],
    "VG_READ_SPACING": ["even", "OFF"],
    "SMARTCAR_API_ORIGIN": ["api.smartcar.com", "ftp://api"],
    "SMARTCAR_AUTH_ORIGIN": ["/oauth/token"],
    "SMARTCAR_IAM_ORIGIN": ["iam.smartcar.com", "https://iam.test/?client_secret=x"],
    "SMARTCAR_VEHICLE_API_V3_ORIGIN": ["vehicle.api.smartcar.com"],
    "SMARTCAR_MANAGEMENT_API_V3_ORIGIN": ["https://management.test/#v3"],
    "VG_WATCH_STREAMS_PER_CALLER": ["0", "2.5"],
    "VG_AUDIT_RETENTION_DAYS": ["30.5", "-1", "99999"],
    "VG_AUDIT_RETENTION_INTERVAL_S": ["-1", "hourly"],
    "VG_WATCH_POLL_INTERVAL_S": ["0", "-0.5", "often"],
    "VG_LOW_FUEL_PERCENT": ["-1", "101", "low"],
    "VG_LOW_CHARGE_PERCENT": ["100.5", "nan"],
    "VG_EVENT_RETENTION_DAYS": ["7.5", "-1", "99999"],
    "VG_EVENT_RETENTION_INTERVAL_S": ["-1", "daily"],
    "VG_HEALTH_LISTEN": ["abc", "127.0.0.1:65536"],  # not loopback: refused at start-up
    "OTEL_TRACES_EXPORTER": ["jaeger", "otlp,none", ","],
    "OTEL_SDK_DISABLED": ["yes", "1"],
    "OTEL_EXPORTER_OTLP_ENDPOINT": ["collector:4317", "ftp://collector"],
    "OTEL_EXPORTER_OTLP_PROTOCOL": ["http/protobuf"],
    "OTEL_RESOURCE_ATTRIBUTES": ["deployment.environment", "=prod"],
    "OTEL_TRACES_SAMPLER": ["ratio", "ALWAYS_ON"],
    "OTEL_TRACES_SAMPLER_ARG": ["1.5", "half"],
    "OTEL_PROPAGATORS": ["b3", "none,tracecontext"],
}
"""Bad values of every setting `Settings.from_env` can judge alone."""

CHECKED_WHEN_USED = {
    "VG_VAR_DIR": "any path is well-formed; one that cannot be made fails at start-up",
    "VG_ACCESS_POLICY": "a file: read and parsed at start-up, errors named there",
    "OTEL_SERVICE_NAME": "any name is well-formed",
}
"""Settings whose faults only show when they are used (tests/integration/test_cli.py)."""


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in BAD_VALUES.items() for value in values]
)
def test_every_bad_value_is_refused_naming_its_variable(name: str, value: str) -> None:
    """Each bad value is a SettingsError whose message names the variable (and, for
    values that may hold secrets, does not repeat the value)."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({name: value})
    assert name in str(refused.value)
    if name in ("VG_TOKEN_KEYS", "VG_DATABASE_URL", "VG_REDIS_URL", "VG_SMARTCAR_CLIENT_SECRETS"):
        assert value not in str(refused.value)


def test_every_documented_setting_has_bad_values_to_try() -> None:
    """Each variable in ENV_VARIABLES is either judged above or checked when used, so a
    new setting cannot skip validation unnoticed."""
    from gateway.settings import ENV_VARIABLES

    assert set(ENV_VARIABLES) - set(CHECKED_WHEN_USED) <= set(BAD_VALUES)


def test_a_database_url_with_a_password_is_never_echoed() -> None:
    """A URL naming an unsupported database is refused without repeating its password."""
    with pytest.raises(SettingsError) as refused:
        Settings.from_env({"VG_DATABASE_URL": "mysql://user:hunter2@db/gateway"})
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("value", ["localhost", "127.0.0.1:65536", ":50051", "host:port"])
def test_a_bad_listen_flag_is_named(value: str) -> None:
    """`serve --listen` is checked as VG_LISTEN is, and the error names the flag."""
    from gateway.settings import listen_address

    with pytest.raises(SettingsError, match="--listen"):
        listen_address("--listen", value)


def test_tracing_is_off_unless_an_exporter_is_named() -> None:
    """With no OTEL_* variable, or only an endpoint, tracing is off (unlike the SDK's own
    default); OTEL_TRACES_EXPORTER=otlp turns it on, and OTEL_SDK_DISABLED=true wins."""
    assert not Settings.from_env({}).tracing.enabled
    endpoint_only = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}
    assert not Settings.from_env(endpoint_only).tracing.enabled
    assert not Settings.from_env({"OTEL_TRACES_EXPORTER": "none"}).tracing.enabled
    on = Settings.from_env({"OTEL_TRACES_EXPORTER": "otlp,console", **endpoint_only}).tracing
    assert (on.enabled, on.exporters, on.otlp_endpoint) == (
        True,
        ("otlp", "console"),
        "http://collector:4317",
    )
    disabled = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "TRUE"}
    assert not Settings.from_env(disabled).tracing.enabled


def test_tracing_reads_the_standard_variables() -> None:
    """Service name, resource attributes (percent-decoded), sampler and its ratio,
    propagators, and the traces endpoint over the general one."""
    tracing = Settings.from_env(
        {
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4317",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces:4317",
            "OTEL_SERVICE_NAME": "gateway-eu",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=fleet%20ops",
            "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
            "OTEL_TRACES_SAMPLER_ARG": "0.25",
            "OTEL_PROPAGATORS": "tracecontext",
        }
    ).tracing
    assert tracing.otlp_endpoint == "https://traces:4317"
    assert tracing.service_name == "gateway-eu"
    assert tracing.resource_attributes == {"deployment.environment": "prod", "team": "fleet ops"}
    assert (tracing.sampler, tracing.sampler_arg) == ("parentbased_traceidratio", 0.25)
    assert tracing.propagators == ("tracecontext",)


def test_every_sampler_the_settings_accept_is_known_to_the_tracer() -> None:
    """Each OTEL_TRACES_SAMPLER value the settings accept makes a sampler."""
    from gateway.edge.tracing import sampler
    from gateway.settings import TRACES_SAMPLERS

    assert all(sampler(name, 0.5) is not None for name in TRACES_SAMPLERS)
