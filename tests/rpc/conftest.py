"""The rpc tier runs every test twice: on SQLite (under the test's tmp_path) and on a
PostgreSQL database of its own (VG_DATABASE_URL, which `rig.gateway_settings` and the CLI
both read). A test marked `sqlite_only` checks something only a SQLite file has; one
marked `postgres_only` is a load test of behaviour the storage contract tests already hold
on both databases, run on the store several replicas share; a module or test marked
`one_database` exercises the gRPC edge or a process's start (access, validation, probes,
metrics, the client library, the README's walkthrough), not storage, and runs once, on
SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Postgres, copy_of


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker."""
    config.addinivalue_line("markers", "sqlite_only: the test inspects the SQLite file itself")
    config.addinivalue_line(
        "markers", "postgres_only: a load test run on PostgreSQL, the replicas' shared store"
    )
    config.addinivalue_line(
        "markers", "one_database: exercises the edge, not storage: runs once, on SQLite"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out the database a `one_database` or `postgres_only` test does not run on."""
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        database = callspec.params.get("database") if callspec is not None else None
        one = item.get_closest_marker("one_database") is not None and database == "postgres"
        pg = item.get_closest_marker("postgres_only") is not None and database == "sqlite"
        (dropped if one or pg else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=["sqlite", "postgres"], autouse=True)
def database(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the test's gateways at SQLite (a migrated copy under the test's `var`
    directory, where `rig.gateway_settings` points VG_VAR_DIR) or at a fresh PostgreSQL
    database."""
    monkeypatch.delenv("VG_DATABASE_URL", raising=False)
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("migrated_sqlite")
        copy_of(template, request.getfixturevalue("tmp_path") / "var" / "gateway.db")
        return "sqlite"
    if request.node.get_closest_marker("sqlite_only"):
        pytest.skip("inspects the SQLite file itself")
    postgres: Postgres = request.getfixturevalue("postgres")
    monkeypatch.setenv("VG_DATABASE_URL", postgres.new_database())
    return "postgres"
