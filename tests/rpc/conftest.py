"""The rpc tier runs every test twice: on SQLite (under the test's tmp_path) and on a
PostgreSQL database of its own (VG_DATABASE_URL, which `rig.gateway_settings` and the CLI
both read). A test marked `sqlite_only` checks something only a SQLite file has; one
marked `postgres_only` is a load test of behaviour the storage contract tests already hold
on both databases, run on the store several replicas share."""

from __future__ import annotations

import pytest

from tests.conftest import Postgres


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker."""
    config.addinivalue_line("markers", "sqlite_only: the test inspects the SQLite file itself")
    config.addinivalue_line(
        "markers", "postgres_only: a load test run on PostgreSQL, the replicas' shared store"
    )


@pytest.fixture(params=["sqlite", "postgres"], autouse=True)
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the test's gateways at SQLite or at a fresh PostgreSQL database."""
    monkeypatch.delenv("VG_DATABASE_URL", raising=False)
    if request.param == "sqlite":
        if request.node.get_closest_marker("postgres_only"):
            pytest.skip("a load test run on PostgreSQL, the replicas' shared store")
        return "sqlite"
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("inspects the SQLite file itself")
    postgres: Postgres = request.getfixturevalue("postgres")
    monkeypatch.setenv("VG_DATABASE_URL", postgres.new_database())
    return "postgres"
