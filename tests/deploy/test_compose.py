"""deploy/compose.yaml, the laptop stack, checked as a file (no container engine runs
here, so it has not been started by the suite): the services and their order, two
gateway replicas configured exactly as the settings accept, Smartcar as the simulator,
PostgreSQL and Redis by URL, secrets as files holding local values only, Prometheus
scraping both replicas and loading deploy/monitoring's rules."""

from __future__ import annotations

import datetime
import importlib.util
import stat
import sys
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509

from gateway.cli import build_parser
from gateway.edge.grpc.access import load_policy, server_credentials
from gateway.settings import ENV_VARIABLES, Settings
from storage.crypto import Keyring
from tests.dockerfile import ROOT, exec_form
from tests.instants import START

DEPLOY = ROOT / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
GATEWAYS = ("gateway-1", "gateway-2")
SECRET_WORDS = ("SECRET", "TOKEN", "PASSWORD", "KEY")
SECRET_DIRECTORIES = ("/run/secrets/", "/etc/vehicle-gateway/dev/")
"""Where the containers find their secrets: compose's secret files, the generated volume."""


def _dev_secrets() -> ModuleType:
    """Import deploy/compose/dev_secrets.py (a script, not a package module)."""
    path = DEPLOY / "compose" / "dev_secrets.py"
    spec = importlib.util.spec_from_file_location("dev_secrets", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("dev_secrets", module)
    spec.loader.exec_module(module)
    return module


def _secret_files() -> dict[str, Path]:
    """Return each compose secret's file on this machine."""
    return {name: (DEPLOY / entry["file"]).resolve() for name, entry in COMPOSE["secrets"].items()}


def _as_here(service: dict[str, Any], dev: Path) -> dict[str, str]:
    """Return the service's environment with the container's file paths mapped to this
    machine's files (its secrets, and the dev-secrets volume made in `dev`)."""
    files = _secret_files()
    env = {}
    for name, value in service["environment"].items():
        value = str(value)
        if value.startswith("/run/secrets/"):
            value = str(files[value.removeprefix("/run/secrets/")])
        elif value.startswith("/etc/vehicle-gateway/dev/"):
            value = str(dev / value.removeprefix("/etc/vehicle-gateway/dev/"))
        env[name] = value
    return env


def test_the_stack_has_its_services() -> None:
    """PostgreSQL, Redis, the simulator, the two one-shot steps, two replicas, Prometheus."""
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "smartcar",
        "dev-secrets",
        "migrate",
        *GATEWAYS,
        "prometheus",
    }


def test_two_replicas_of_one_gateway_published_on_loopback() -> None:
    """Both replicas: the image built from the Dockerfile, the same settings, their own
    host port (on 127.0.0.1 only, as is every published port)."""
    first, second = (SERVICES[name] for name in GATEWAYS)
    assert first["build"] == second["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    assert first["environment"] == second["environment"]
    assert first["command"] == exec_form("CMD")
    published = [port for service in SERVICES.values() for port in service.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for port in published)
    assert len({p.split(":")[1] for p in published}) == len(published)


def test_the_order_secrets_migration_replicas() -> None:
    """PostgreSQL healthy → the migration; the migration done, the dev secrets made,
    Redis and the simulator healthy → the replicas."""
    assert SERVICES["migrate"]["command"] == ["vehicle-gateway", "migrate-schema"]
    assert build_parser().parse_args(["migrate-schema"]).command == "migrate-schema"
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in GATEWAYS:
        assert SERVICES[name]["depends_on"] == {
            "dev-secrets": {"condition": "service_completed_successfully"},
            "migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
            "smartcar": {"condition": "service_healthy"},
        }
    for name in ("postgres", "redis", "smartcar", *GATEWAYS):
        assert SERVICES[name]["healthcheck"]["test"][0] == "CMD", name
    assert SERVICES["gateway-1"]["healthcheck"]["test"][1:] == exec_form("HEALTHCHECK")


def test_smartcar_is_the_simulator() -> None:
    """Every Smartcar origin the gateway knows points at the simulator's one port."""
    command = SERVICES["smartcar"]["command"]
    args = build_parser().parse_args(command[1:])
    assert args.command == "simulator"
    env = SERVICES["gateway-1"]["environment"]
    origins = {k: v for k, v in env.items() if k.startswith("SMARTCAR_") and k.endswith("ORIGIN")}
    assert len(origins) == 7
    assert set(origins.values()) == {f"http://smartcar:{args.port}"}
    assert env["VG_SMARTCAR_MODE"] == "simulated"


def test_postgresql_and_redis_by_url(tmp_path: Path) -> None:
    """The database URL (a secret file) names the postgres service, its user, database and
    password file's value; Redis is the redis service."""
    env = _as_here(SERVICES["gateway-1"], tmp_path)
    url = urlsplit(Path(env["VG_DATABASE_URL_FILE"]).read_text().strip())
    postgres = SERVICES["postgres"]["environment"]
    password = _secret_files()["postgres-password"].read_text().strip()
    assert (url.hostname, url.username, url.password) == ("postgres", "gateway", password)
    assert url.path == f"/{postgres['POSTGRES_DB']}"
    assert postgres["POSTGRES_USER"] == "gateway"
    assert urlsplit(env["VG_REDIS_URL"]).hostname == "redis"
    assert SERVICES["migrate"]["environment"] == {
        "VG_DATABASE_URL_FILE": "/run/secrets/database-url"
    }


def test_the_gateways_environment_is_settings_the_gateway_accepts(tmp_path: Path) -> None:
    """Read as the gateway reads it (files in place): valid settings, secrets from files,
    TLS on, the access policy parses; every variable is one the gateway knows."""
    _dev_secrets().make(tmp_path, START)
    env = _as_here(SERVICES["gateway-1"], tmp_path)
    for name in env:
        assert name in ENV_VARIABLES or name.startswith("SMARTCAR_"), name
    settings = Settings.from_env(env)
    assert settings.smartcar["SMARTCAR_CLIENT_SECRET"] == "local-dev-simulator-secret"
    assert settings.token_keys is not None
    assert settings.tls_cert is not None
    assert settings.access_policy is not None
    assert settings.metrics_listen == "0.0.0.0:9464"
    load_policy(settings.access_policy)


def test_secrets_are_files_with_local_values_only() -> None:
    """No secret-looking variable holds a value (only `_FILE` paths); each secret file
    says it is a local development value; the generated ones live in a volume."""
    for name, service in SERVICES.items():
        for variable, value in (service.get("environment") or {}).items():
            if any(word in variable for word in SECRET_WORDS):
                assert str(value).startswith(SECRET_DIRECTORIES), (name, variable)
    for path in _secret_files().values():
        if path.suffix != ".toml":
            assert "local-dev" in path.read_text(), path
    assert SERVICES["gateway-1"]["environment"]["VG_TOKEN_KEYS_FILE"].startswith(
        "/etc/vehicle-gateway/dev/"
    )


@pytest.mark.parametrize("name", ["smartcar", "dev-secrets", "migrate", *GATEWAYS])
def test_the_image_runs_hardened(name: str) -> None:
    """As in the cluster: the image's user, read-only root, no capability, no escalation."""
    service = SERVICES[name]
    assert service["user"] == "10001:10001"
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert service["security_opt"] == ["no-new-privileges:true"]


def test_prometheus_scrapes_both_replicas_and_loads_the_rules() -> None:
    """Both replicas' metrics ports are targets; the rule files are deploy/monitoring's
    alert rules, and every file they name is one (not promtool's tests beside them)."""
    prometheus = SERVICES["prometheus"]
    mounts = {
        target: source
        for source, target, _ in (volume.split(":") for volume in prometheus["volumes"])
    }
    assert mounts["/etc/prometheus/rules"] == "./monitoring"
    config = yaml.safe_load((DEPLOY / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/alerts.yml"]
    for pattern in config["rule_files"]:
        named = sorted((DEPLOY / "monitoring").glob(pattern.removeprefix("/etc/prometheus/rules/")))
        assert named
        for path in named:
            assert set(yaml.safe_load(path.read_text())) == {"groups"}, path
    (job,) = config["scrape_configs"]
    port = SERVICES["gateway-1"]["environment"]["VG_METRICS_LISTEN"].rsplit(":", 1)[1]
    assert job["static_configs"] == [{"targets": [f"{g}:{port}" for g in GATEWAYS]}]


def test_dev_secrets_are_made_once_owner_only_and_usable(tmp_path: Path) -> None:
    """The certificate names both replicas and localhost and loads as the gRPC port's
    credentials; the key entry parses; files are 0600; a second run leaves them alone."""
    dev_secrets = _dev_secrets()
    assert dev_secrets.make(tmp_path, START) == ["tls.crt", "tls.key", "token-keys"]
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate((tmp_path / "tls.crt").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert set(names.value.get_values_for_type(x509.DNSName)) == {
        "localhost",
        *GATEWAYS,
    }
    assert certificate.not_valid_after_utc - START <= datetime.timedelta(days=90)
    server_credentials(certificate=tmp_path / "tls.crt", key=tmp_path / "tls.key", client_ca=None)
    Keyring.from_config((tmp_path / "token-keys").read_text().strip())
    before = (tmp_path / "token-keys").read_text()
    assert dev_secrets.make(tmp_path, START + datetime.timedelta(days=1)) == []
    assert (tmp_path / "token-keys").read_text() == before
