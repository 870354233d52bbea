"""The README documents what the service reads: every setting, and the two commands."""

from __future__ import annotations

from pathlib import Path

from gateway.settings import ENV_VARIABLES

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_every_setting_is_documented() -> None:
    """Each VG_* variable the settings read has a row in the README's configuration table."""
    missing = [name for name in ENV_VARIABLES if f"| `{name}` |" not in README]
    assert missing == []


def test_ci_runs_the_readmes_test_command() -> None:
    """.ci/run runs exactly the test command the README gives."""
    ci = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "make test" in README
    assert "exec make test" in ci
