"""checkov over deploy/: no failed check, and any check skipped says why in the manifest.

checkov runs once for the module (it takes seconds), from its own tool environment:
`make test` builds .tools/checkov from requirements/checkov.txt (it pins an older
`packaging` than the project's, so it cannot live in .venv) and runs this module as its own
target (`make deploycheck`), beside the rest of the suite. Missing, this fails: a
security scan that silently does not run is worse than none. `--skip-download` keeps it
offline (no guideline links, nothing asked of any server)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.dockerfile import ROOT

CHECKOV = ROOT / ".tools" / "checkov" / "bin" / "checkov"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """Return checkov's JSON report of deploy/ (Kubernetes manifests and secrets)."""
    if not CHECKOV.exists():
        pytest.fail(f"checkov is missing at {CHECKOV}: run `make checkov` (make test does)")
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(ROOT / "deploy"),
            "--framework",
            "kubernetes",
            "secrets",
            "--skip-download",
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    return {r["check_type"]: r for r in reports}


def test_the_kubernetes_manifests_fail_no_check(report: dict[str, Any]) -> None:
    """Every check run on every resource passes (or is skipped with a reason, below)."""
    kubernetes = report["kubernetes"]
    failed = [
        (c["check_id"], c["file_path"], c["resource"])
        for c in kubernetes["results"]["failed_checks"]
    ]
    assert failed == []
    assert kubernetes["summary"]["parsing_errors"] == 0
    assert kubernetes["summary"]["passed"] > 100
    checked = {c["file_path"] for c in kubernetes["results"]["passed_checks"]}
    assert {
        "/kubernetes/base/deployment.yaml",
        "/kubernetes/migrate/job.yaml",
    } <= checked


def test_every_skipped_check_says_why(report: dict[str, Any]) -> None:
    """A skip is a `checkov.io/skipN: CKV_…=reason` annotation with a reason."""
    for kind in report.values():
        for check in kind["results"]["skipped_checks"]:
            assert check.get("suppress_comment") not in (None, "", "No comment provided"), check


def test_no_secret_is_written_into_deploy(report: dict[str, Any]) -> None:
    """The secrets scan finds nothing: the compose file's local values are not key-shaped,
    and the manifests carry file paths, never values."""
    secrets = report.get("secrets")
    failed = [] if secrets is None else secrets["results"]["failed_checks"]
    assert failed == []
